//! `write_documents` against the oracle: serde_yaml 0.9.34 serializing the same Nodes as `render`
//! did before this writer (runs of 16 documents, each run after `---\n`, one emitter per run).

use std::path::{Path, PathBuf};

use super::{write_documents, YAML_RUN};
use kr_policy_abi::packed::{self, Node};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Fewer random cases in debug builds (CI's `cargo test`), where the oracle is slow.
const CASES_DIVISOR: usize = if cfg!(debug_assertions) { 20 } else { 1 };

fn oracle(nodes: &[Node<'_>]) -> Vec<u8> {
    let mut all = Vec::new();
    for run in nodes.chunks(YAML_RUN) {
        let mut out = b"---\n".to_vec();
        let mut serializer = serde_yaml::Serializer::new(&mut out);
        for node in run {
            node.serialize(&mut serializer).unwrap();
        }
        drop(serializer);
        all.extend(out);
    }
    all
}

fn fast(nodes: &[Node<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    write_documents(nodes.iter().copied(), &mut out);
    out
}

fn pack(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    packed::encode(value, &mut bytes).unwrap();
    bytes
}

/// Compares the two writers on the nodes; on a difference, panics showing both.
fn check_nodes(nodes: &[Node<'_>], what: &str) {
    let expected = oracle(nodes);
    let actual = fast(nodes);
    if expected != actual {
        panic!(
            "{what}: output differs\n--- serde_yaml ---\n{}\n--- write_documents ---\n{}\n--- for ---\n{:?}",
            String::from_utf8_lossy(&expected).escape_debug(),
            String::from_utf8_lossy(&actual).escape_debug(),
            nodes
        );
    }
}

fn check_values(values: &[Value], what: &str) {
    let packed: Vec<Vec<u8>> = values.iter().map(pack).collect();
    let nodes: Vec<Node<'_>> = packed.iter().map(|b| Node::root(b).unwrap()).collect();
    check_nodes(&nodes, what);
}

/// Each value alone (first in a run), second in a run, and 17th (first of the second run).
fn check_everywhere(value: &Value, what: &str) {
    check_values(std::slice::from_ref(value), what);
    check_values(&[json!({"a": 1}), value.clone()], what);
    let mut seventeen = vec![json!("x"); 16];
    seventeen.push(value.clone());
    seventeen.push(value.clone());
    check_values(&seventeen, what);
}

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut values = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        match Value::deserialize(document) {
            Ok(value) => values.push(value),
            Err(_) => break,
        }
    }
    values
}

#[test]
fn corpus_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    yaml_files(&root.join("specs"), &mut files);
    yaml_files(&root.join("plugin/tests/fixtures"), &mut files);
    let mut total = 0;
    let mut all = Vec::new();
    for file in &files {
        let values = documents(file);
        let what = file.display().to_string();
        // The whole file as one stream, then each document alone.
        check_values(&values, &what);
        for value in &values {
            check_values(std::slice::from_ref(value), &what);
        }
        total += values.len();
        all.extend(values.into_iter().take(40));
    }
    check_values(&all, "several files in one stream");
    println!("corpus: {} files, {total} documents", files.len());
    assert!(total >= 100, "only {total} documents");
}

/// The strings of the brief, and more that libyaml treats specially.
fn tricky_strings() -> Vec<String> {
    let mut strings: Vec<String> = [
        "",
        " ",
        "a ",
        " a",
        "~",
        "null",
        "Null",
        "NULL",
        "nULL",
        "true",
        "True",
        "TRUE",
        "tRUE",
        "false",
        "False",
        "FALSE",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "Y",
        "N",
        "1",
        "-1",
        "+1",
        "1.5",
        "1e3",
        "1E3",
        "1e+3",
        "-1e-3",
        "0x1F",
        "0X1F",
        "0o7",
        "0b101",
        "-0x1F",
        "-0o7",
        "-0b1",
        "+0x1F",
        "0x-1",
        "0x+1",
        "0x",
        "0o",
        "007",
        "-007",
        "+007",
        "00",
        "0",
        "-0",
        "+0",
        "0.0",
        "-0.0",
        "00.5",
        ".5",
        "5.",
        "1_000",
        "1,000",
        "12:30",
        "12:30:00",
        ".inf",
        "-.Inf",
        "+.inf",
        ".INF",
        ".nan",
        ".NaN",
        "-.nan",
        "inf",
        "-inf",
        "nan",
        "NaN",
        "infinity",
        "Infinity",
        "1e400",
        "-1e400",
        "1e-400",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "340282366920938463463374607431768211455",
        "340282366920938463463374607431768211456",
        "-170141183460469231731687303715884105729",
        "++1",
        "+-1",
        "--1",
        "-",
        "--",
        "---",
        "----",
        "--- a",
        "...",
        "....",
        "... a",
        "- a",
        "-a",
        "a -",
        "?",
        "? a",
        "?a",
        "a?",
        "a ? b",
        ":",
        ": a",
        ":a",
        "a:",
        "a: b",
        "a:b",
        "a :b",
        "a #b",
        "#a",
        "a#b",
        "a# b",
        "&a",
        "*a",
        "!a",
        "|",
        "|a",
        ">",
        ">a",
        "%a",
        "@a",
        "`a",
        "'a'",
        "a'b",
        "'",
        "''",
        "\"a\"",
        "a\"b",
        "\"",
        "[a]",
        "a[b]",
        "]",
        "{a}",
        "a{b}",
        "}",
        "a,b",
        ",",
        "a, b",
        "a\nb",
        "a\n",
        "\n",
        "\n\n",
        "a\n\n",
        "a\n\n\n",
        "\na",
        "\n\na",
        " a\nb",
        "a \nb",
        "a\n b",
        "a\n\n b",
        "  a\n  b\n",
        "a\nb ",
        "a\nb\n ",
        "a\tb",
        "\t",
        "a\t",
        "\ta",
        "\t\n",
        "a\n\tb",
        "é",
        "日本",
        "日本\n語",
        "😀",
        "a😀b",
        "\u{7f}",
        "\u{80}",
        "\u{85}",
        "a\u{85}b",
        "\u{9f}",
        "\u{a0}",
        "a\u{a0}",
        "\u{a0}a",
        "\u{ad}",
        "\u{feff}",
        "a\u{feff}",
        "\u{fffd}",
        "\u{fffe}",
        "\u{ffff}",
        "\u{e000}",
        "\u{d7ff}",
        "\u{10ffff}",
        "\u{2028}",
        "a\u{2028}b",
        "a\u{2029}b",
        "a\u{2028}",
        "\u{2028}a",
        "a\u{2028}\u{2028}b",
        "a\n\u{2028}b",
        "a\u{2028}\nb",
        "a\u{2028}'b",
        "'\u{2028}'",
        "\u{0}",
        "a\u{0}b",
        "\u{1}",
        "\u{7}",
        "\u{8}",
        "\u{b}",
        "\u{c}",
        "\u{1b}",
        "\u{1f}",
        "\r",
        "a\r",
        "a\rb",
        "a\r\nb",
        "a\r\n",
        "\r\n",
        "\\",
        "a\\b",
        "a\\",
        "\\n",
        "a\"\n",
        "'\n'",
        "#\n",
        "key: value\nother: x\n",
        "- a\n- b\n",
        "a\u{85}\nb",
        "a\n\u{85}",
        "x\u{2029}\n",
        "0xAbC",
        "0xabcdef0123",
        "-0xFF",
        "-0XFF",
        "1E-5",
        "+.5",
        "-.5",
        ".5e3",
        "0b2",
        "0o8",
        "0xG",
        "1e",
        "e1",
        "1.2.3",
        "+Infinity",
        "-nan",
        ".NAN",
        "-.INF",
        "+.INF",
        "0x_1",
        "1__0",
        "0x1p3",
        "1.0e+05",
        "00x1",
        "0.",
        "-.",
        "+.",
        ".",
        "0e0",
        "-0e-0",
        "9",
        "09",
        "0_9",
        "0o_7",
        "-0o17",
        "-0b11",
        "+0b11",
        "0b-1",
        "0x+1",
        "-0x-1",
        "0xFFFFFFFFFFFFFFFFF",
        "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        "-0x8000000000000000",
        "-0x8000000000000001",
        "  ",
        "a  b",
        "a   ",
        "\n ",
        " \n",
        "\n \n",
        "a\n \nb",
        "a \n b",
        "a\n  \nb",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    strings.push("x".repeat(200));
    strings.push("word ".repeat(40).trim_end().to_string());
    strings.push("k".repeat(128));
    strings.push("k".repeat(129));
    strings.push("k".repeat(130));
    strings.push("é".repeat(64));
    strings.push("é".repeat(65));
    strings.push(format!("{}\n", "k".repeat(130)));
    strings.push(
        (0..12)
            .map(|i| format!("line {i} with trailing spaces   "))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    strings.push(
        (0..12)
            .map(|i| format!("line {i} {}", "long ".repeat(30)))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    strings.push("appendonly yes\ndir /data\n".to_string());
    strings.push("a".repeat(100) + " " + &"b".repeat(100));
    strings
}

fn tricky_numbers() -> Vec<Value> {
    vec![
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(i64::MAX as u64 + 1),
        json!(0),
        json!(-1),
        json!(0.0),
        json!(-0.0),
        json!(1.0),
        json!(0.1),
        json!(1e300),
        json!(1e-7),
        json!(123456789.123),
        json!(1e15),
        json!(1e16),
        json!(1e17),
        json!(1.5e16),
        json!(123456789012345680.0),
        json!(0.0001),
        json!(0.00001),
        json!(0.000012345),
        json!(-2.5e-300),
        json!(f64::MAX),
        json!(f64::MIN_POSITIVE),
        json!(5e-324),
        json!(9007199254740993.0),
        json!(true),
        json!(false),
        json!(null),
    ]
}

/// `value` at every position: top level, in a map, in a sequence, in sequences of sequences,
/// in a map in a sequence in a map, next to empty collections.
fn positions(value: &Value) -> Vec<Value> {
    vec![
        value.clone(),
        json!({ "k": value }),
        json!({ "a": {}, "k": value, "z": [] }),
        json!([value]),
        json!([value, value]),
        json!([[value, [value]], []]),
        json!({ "k": [value, { "n": value }] }),
        json!({ "k": { "n": { "m": [[value]] } } }),
        json!([{ "k": value, "l": [] }, {}]),
        json!([{ "k": [value] }]),
    ]
}

#[test]
fn tricky_values_and_keys() {
    let mut cases = 0;
    for s in tricky_strings() {
        for value in positions(&json!(s)) {
            check_everywhere(&value, &format!("value {s:?}"));
            cases += 1;
        }
        let mut map = Map::new();
        map.insert(s.clone(), json!("v"));
        let keyed = Value::Object(map);
        let nested_keys = [
            keyed.clone(),
            json!({ "k": keyed }),
            json!([keyed]),
            json!([[keyed]]),
            json!({ "k": [keyed] }),
            {
                let mut map = Map::new();
                map.insert(s.clone(), json!([1, { "a": s }]));
                map.insert("~".to_string(), json!({}));
                map.insert("zz".to_string(), json!({ "x": [] }));
                Value::Object(map)
            },
            {
                let mut map = Map::new();
                map.insert(s.clone(), json!({ "a": "b", "c": [] }));
                map.insert(format!("{s}2"), json!([]));
                map.insert(format!("{s}3"), json!({}));
                map.insert(format!("{s}4"), json!([[1], "x\ny"]));
                Value::Object(map)
            },
        ];
        for value in nested_keys {
            check_everywhere(&value, &format!("key {s:?}"));
            cases += 1;
        }
    }
    for number in tricky_numbers() {
        for value in positions(&number) {
            check_everywhere(&value, &format!("number {number}"));
            cases += 1;
        }
    }
    println!("tricky: {cases} cases");
}

#[test]
fn empty_collections_everywhere() {
    let empties = [json!({}), json!([])];
    for empty in &empties {
        for value in positions(empty) {
            check_everywhere(&value, "empty");
        }
        check_everywhere(&json!([[[empty]]]), "empty");
        check_everywhere(&json!({"a": [[empty, empty], {"b": empty}]}), "empty");
    }
    check_everywhere(&json!([[], {}, [[]], [{}], { "a": [] }]), "empty");
}

// ---------------------------------------------------------------------------------------------
// Random values
// ---------------------------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, in_n: usize) -> bool {
        self.below(in_n) == 0
    }
}

/// Characters libyaml cares about, and some it does not.
const SPECIAL_CHARS: &[char] = &[
    ' ',
    ' ',
    ' ',
    '\n',
    '\n',
    '\t',
    '\r',
    '-',
    '-',
    '.',
    ':',
    ':',
    '?',
    '#',
    ',',
    '[',
    ']',
    '{',
    '}',
    '&',
    '*',
    '!',
    '|',
    '>',
    '\'',
    '"',
    '%',
    '@',
    '`',
    '~',
    '\\',
    '0',
    '1',
    '0',
    'e',
    'x',
    'o',
    'b',
    '+',
    '_',
    'a',
    'n',
    'N',
    't',
    'f',
    'T',
    'F',
    '\u{0}',
    '\u{1}',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{2028}',
    '\u{2029}',
    '\u{feff}',
    '\u{fffe}',
    '\u{ffff}',
    'é',
    '日',
    '😀',
    '\u{10ffff}',
    '\u{e000}',
    '\u{1b}',
];

fn random_char(rng: &mut XorShift) -> char {
    match rng.below(4) {
        0 => {
            // Any scalar value.
            loop {
                if let Some(c) = char::from_u32((rng.next() % 0x11_0000) as u32) {
                    return c;
                }
            }
        }
        1 => char::from_u32((rng.next() % 0x800) as u32).unwrap_or('a'),
        _ => SPECIAL_CHARS[rng.below(SPECIAL_CHARS.len())],
    }
}

fn random_string(rng: &mut XorShift, fragments: &[String]) -> String {
    let mut s = String::new();
    let parts = rng.below(4);
    for _ in 0..parts {
        match rng.below(4) {
            0 => s.push_str(&fragments[rng.below(fragments.len())]),
            1 => {
                for _ in 0..rng.below(4) + 1 {
                    s.push(random_char(rng));
                }
            }
            2 => {
                // Number-like: what serde_yaml's number parsing looks at.
                const NUMERIC: &[u8] = b"0123456789+-.eExXobBaAfFiInN_";
                for _ in 0..rng.below(6) + 1 {
                    s.push(NUMERIC[rng.below(NUMERIC.len())] as char);
                }
            }
            _ => s.push_str(["a", "b", "name", " ", "  ", "\n", "1", "x y"][rng.below(8)]),
        }
    }
    if rng.chance(50) {
        s = s.repeat(rng.below(40) + 2);
    }
    s
}

fn random_number(rng: &mut XorShift) -> Value {
    match rng.below(6) {
        0 => json!(rng.next() as i64),
        1 => json!(rng.next()),
        2 => json!((rng.next() % 2000) as i64 - 1000),
        3 => loop {
            let f = f64::from_bits(rng.next());
            if f.is_finite() {
                break json!(f);
            }
        },
        4 => {
            let f = (rng.next() % 100_000) as f64 / [1.0, 10.0, 1000.0, 1e7, 1e-20][rng.below(5)];
            json!(if rng.chance(2) { -f } else { f })
        }
        _ => json!(10f64.powi(rng.below(40) as i32 - 20)),
    }
}

fn random_value(rng: &mut XorShift, fragments: &[String], depth: usize) -> Value {
    let leaf = depth >= 4 || rng.chance(3);
    if leaf {
        return match rng.below(8) {
            0 => random_number(rng),
            1 => json!(rng.chance(2)),
            2 => Value::Null,
            _ => json!(random_string(rng, fragments)),
        };
    }
    if rng.chance(2) {
        let n = rng.below(5);
        Value::Array(
            (0..n)
                .map(|_| random_value(rng, fragments, depth + 1))
                .collect(),
        )
    } else {
        let n = rng.below(5);
        let mut map = Map::new();
        for _ in 0..n {
            map.insert(
                random_string(rng, fragments),
                random_value(rng, fragments, depth + 1),
            );
        }
        Value::Object(map)
    }
}

#[test]
fn random_values() {
    let fragments = tricky_strings();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let cases = 100_000 / CASES_DIVISOR;
    let mut batch = Vec::new();
    for case in 0..cases {
        batch.push(random_value(&mut rng, &fragments, 0));
        // Streams of 1 to 40 documents, so runs of 16 split them too.
        if rng.chance(8) || batch.len() >= 40 || case + 1 == cases {
            check_values(&batch, &format!("random case {case}"));
            batch.clear();
        }
    }
    println!("random: {cases} values");
}

#[test]
fn random_scalars_at_top_level() {
    let fragments = tricky_strings();
    let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
    for case in 0..20_000 / CASES_DIVISOR {
        let value = if rng.chance(3) {
            random_number(&mut rng)
        } else {
            json!(random_string(&mut rng, &fragments))
        };
        check_everywhere(&value, &format!("scalar case {case}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes `encode` never makes: repeated and unsorted keys, damaged bytes, deep nesting
// ---------------------------------------------------------------------------------------------

#[test]
fn repeated_unsorted_and_non_utf8_keys() {
    let entries: &[(&[u8], Value)] = &[
        (b"b", json!(1)),
        (b"a", json!([1, 2])),
        (b"b", json!(3)),
        (&[0xff], json!(true)),
        (b"c", json!({})),
        (b"a", json!("again")),
        (b"", json!(null)),
    ];
    for take in 0..=entries.len() {
        for start in 0..take {
            let mut out = Vec::new();
            let mark = packed::begin_object(&mut out, (take - start) as u32);
            for (key, value) in &entries[start..take] {
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(key);
                packed::encode(value, &mut out).unwrap();
            }
            packed::end(&mut out, mark).unwrap();
            let node = Node::root(&out).unwrap();
            check_nodes(&[node], "odd keys");
            let inner = pack(&json!({"x": [1]}));
            let mut nested = Vec::new();
            let mark = packed::begin_array(&mut nested, 2);
            nested.extend_from_slice(&out);
            nested.extend_from_slice(&inner);
            packed::end(&mut nested, mark).unwrap();
            check_nodes(&[Node::root(&nested).unwrap()], "odd keys nested");
        }
    }
}

fn sample_document() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": { "name": "redis", "labels": { "app": "redis", "tier": "" },
                      "annotations": { "note": "a\nb\n", "n": "1.5", "x": "yes" } },
        "spec": { "replicas": 3, "ratio": 0.25, "ports": [6379, 16379], "empty": {}, "none": [],
                  "containers": [ { "name": "redis", "args": ["--port", "6379"], "env": [] } ] },
    })
}

#[test]
fn damaged_bytes() {
    let bytes = pack(&sample_document());
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    let mut checked = 0;
    for n in 0..bytes.len() {
        let mut patched = bytes[..n].to_vec();
        if n >= 9 {
            patched[5..9].copy_from_slice(&((n - 9) as u32).to_le_bytes());
        }
        if let Ok(node) = Node::root(&patched) {
            check_nodes(&[node, node], "truncated");
            checked += 1;
        }
    }
    for _ in 0..5000 / CASES_DIVISOR {
        let mut corrupted = bytes.clone();
        for _ in 0..rng.below(3) + 1 {
            let at = rng.below(corrupted.len());
            corrupted[at] = if rng.chance(3) {
                rng.below(10) as u8
            } else {
                rng.next() as u8
            };
        }
        if let Ok(node) = Node::root(&corrupted) {
            check_nodes(&[node], "corrupted");
            checked += 1;
        }
    }
    // Floats that are not finite, and strings that are not UTF-8.
    for raw in [
        [&[packed::F64][..], &f64::NAN.to_le_bytes()].concat(),
        [&[packed::F64][..], &f64::NEG_INFINITY.to_le_bytes()].concat(),
        vec![packed::STRING, 1, 0, 0, 0, 0xff],
        vec![packed::U64, 5, 0, 0, 0, 0, 0, 0, 0],
    ] {
        let node = Node::root(&raw).unwrap();
        check_nodes(&[node], "odd scalar");
        let mut array = Vec::new();
        let mark = packed::begin_array(&mut array, 1);
        array.extend_from_slice(&raw);
        packed::end(&mut array, mark).unwrap();
        check_nodes(&[Node::root(&array).unwrap()], "odd scalar in array");
    }
    println!("damaged: {checked} accepted");
    assert!(checked > 100);
}

#[test]
fn deep_nesting_becomes_null() {
    for depth in [254, 255, 256, 257, 300] {
        let mut value = json!({ "leaf": [1, { "x": "y" }] });
        for level in 0..depth {
            value = if level % 2 == 0 {
                json!([value])
            } else {
                json!({ "k": value })
            };
        }
        check_values(&[value], &format!("depth {depth}"));
    }
}

#[test]
fn no_documents() {
    assert!(fast(&[]).is_empty());
    assert!(oracle(&[]).is_empty());
}

/// Floats alone, against ryu directly: many more than the oracle could check in time.
#[test]
fn floats_like_ryu() {
    let mut rng = XorShift(0x5DEE_CE66_D1CE_4E5B);
    let check = |f: f64| {
        if !f.is_finite() {
            return;
        }
        let bytes = pack(&json!(f));
        let mut out = Vec::new();
        write_documents([Node::root(&bytes).unwrap()], &mut out);
        let expected = format!("---\n{}\n", ryu::Buffer::new().format_finite(f));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            expected,
            "{f:e} bits {:#x}",
            f.to_bits()
        );
    };
    for _ in 0..1_000_000 / CASES_DIVISOR {
        check(f64::from_bits(rng.next()));
    }
    // Few fractional bits, where ties between two shortest candidates happen.
    for _ in 0..1_000_000 / CASES_DIVISOR {
        let mantissa = rng.next() >> (11 + rng.below(40));
        let exponent = rng.below(80) as i32 - 40;
        check(mantissa as f64 * 2f64.powi(exponent));
        check(-(mantissa as f64) * 2f64.powi(exponent));
    }
    for i in 0..(100_000 / CASES_DIVISOR) as u64 {
        check(i as f64 / 8.0);
        check(i as f64 * 1e15 + 0.25);
        check(f64::from_bits(i));
        check(f64::from_bits(0x7FEF_FFFF_FFFF_FFFF - i));
    }
}
