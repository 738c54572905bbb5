//! The fast reader against serde_yaml (values) and positions.rs's LineRecorder (lines): on the
//! project's YAML, on a table of tricky cases, and on generated texts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::super::record;
use super::{read, read_with_lines};

/// Fewer generated texts in debug builds (CI's `cargo test`), where serde_yaml is slow.
const CASES_DIVISOR: usize = if cfg!(debug_assertions) { 10 } else { 1 };

/// The documents of a stream as `input` splits them: (first line, text).
fn split_documents(text: &str) -> Vec<(usize, String)> {
    crate::input::files::split("f.yaml", text)
        .unwrap_or_default()
        .into_iter()
        .map(|document| (document.first_line, document.text.to_string()))
        .collect()
}

/// Reads `text` with the fast reader; where it gives a value, asserts that serde_yaml reads the
/// same and that the lines are the LineRecorder's. Returns whether it gave a value.
fn check(text: &str) -> bool {
    let Some(value) = read(text) else {
        assert!(
            read_with_lines(text, &mut |_, _| {}).is_none(),
            "read_with_lines gave a value where read declined: {text:?}"
        );
        return false;
    };
    let expected = serde_yaml::from_str::<Value>(text);
    assert!(
        matches!(&expected, Ok(v) if *v == value),
        "fast value differs from serde_yaml for {text:?}\nfast: {value:?}\nserde_yaml: {expected:?}"
    );
    let mut lines = BTreeMap::new();
    let with_lines = read_with_lines(text, &mut |pointer, line| {
        assert!(
            lines.insert(pointer.to_string(), line).is_none(),
            "{pointer} reported twice for {text:?}"
        );
    });
    assert_eq!(with_lines.as_ref(), Some(&value), "{text:?}");
    let recorder = record(text, 0, true)
        .unwrap_or_else(|e| panic!("yaml-rust2 refuses {text:?} that serde_yaml reads: {e}"));
    assert_eq!(lines, recorder.lines, "lines differ for {text:?}");
    true
}

/// Whether positions.rs's ValueBuilder builds the document's value.
fn oracle_builds(text: &str) -> bool {
    record(text, 0, false).is_ok_and(|recorder| recorder.value.finish().is_some())
}

#[derive(Default, Debug)]
struct Tally {
    documents: usize,
    fast: usize,
    oracle: usize,
    /// Documents whose value the ValueBuilder builds and the fast reader declines.
    missed: Vec<String>,
}

impl Tally {
    fn add(&mut self, origin: &str, text: &str) {
        let fast = check(text);
        let oracle = oracle_builds(text);
        self.documents += 1;
        self.fast += usize::from(fast);
        self.oracle += usize::from(oracle);
        if oracle && !fast {
            self.missed.push(origin.to_string());
        }
    }

    fn report(&self, name: &str) {
        println!(
            "{name}: {} documents, fast path {} ({:.2}%), oracle ValueBuilder {}; declined where \
             the oracle builds: {:?}",
            self.documents,
            self.fast,
            100.0 * self.fast as f64 / self.documents.max(1) as f64,
            self.oracle,
            self.missed
        );
    }
}

fn yaml_files(root: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            yaml_files(&path, found);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            found.push(path);
        }
    }
}

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tally_files(dirs: &[&str]) -> Tally {
    let mut files = Vec::new();
    for dir in dirs {
        yaml_files(&root().join(dir), &mut files);
    }
    files.sort();
    let mut tally = Tally::default();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (first_line, document) in split_documents(&text) {
            tally.add(&format!("{}:{first_line}", file.display()), &document);
        }
    }
    tally
}

/// The four objects `plugin/benches/check-bench.sh` writes into its synthetic bundles, as it
/// writes them: all must take the fast path, or the bench measures the slow one.
#[test]
fn reads_the_bench_s_synthetic_objects() {
    let bundle = "---\napiVersion: v1\nkind: PersistentVolume\nmetadata: {name: redis-0-pv}\nspec:\n  \
        storageClassName: manual\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  \
        hostPath: {path: /data/redis-0, type: DirectoryOrCreate}\n---\napiVersion: v1\nkind: \
        ConfigMap\nmetadata: {name: redis-0-config}\ndata:\n  redis.conf: |\n    appendonly yes\n    \
        dir /data\n---\napiVersion: v1\nkind: Service\nmetadata: {name: redis-0}\nspec:\n  selector: \
        {app: redis-0}\n  ports: [{name: client, port: 6379, targetPort: 6379}]\n---\napiVersion: \
        apps/v1\nkind: StatefulSet\nmetadata: {name: redis-0}\nspec:\n  replicas: 1\n  serviceName: \
        redis-0\n  selector: {matchLabels: {app: redis-0}}\n  template:\n    metadata: {labels: {app: \
        redis-0}}\n    spec:\n      containers:\n      - name: redis\n        image: redis:7.0.15\n        \
        command: [redis-server, /conf/redis.conf]\n        ports: [{name: client, containerPort: 6379}]\n";
    let mut tally = Tally::default();
    for (first_line, document) in split_documents(bundle) {
        tally.add(&format!("bench:{first_line}"), &document);
    }
    tally.report("bench objects");
    assert_eq!((tally.documents, tally.fast), (4, 4));
}

#[test]
fn reads_the_specs_and_fixtures() {
    let specs = tally_files(&["specs"]);
    specs.report("specs");
    let fixtures = tally_files(&["plugin/tests/fixtures"]);
    fixtures.report("fixtures");
    assert!(specs.missed.is_empty() && fixtures.missed.is_empty());
    assert!(specs.documents + fixtures.documents > 20);
}

/// The YAML blocks of the seed documents (markdown-like text with fenced code).
#[test]
fn reads_the_seeds() {
    let mut tally = Tally::default();
    let mut files: Vec<_> = std::fs::read_dir(root().join("../shared/seeds"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let mut block: Option<String> = None;
        for line in text.lines() {
            match &mut block {
                None if line.trim_start().starts_with("```") => block = Some(String::new()),
                None => {}
                Some(yaml) if line.trim_start().starts_with("```") => {
                    for (first_line, document) in split_documents(yaml) {
                        tally.add(&format!("{}:block:{first_line}", file.display()), &document);
                    }
                    block = None;
                }
                Some(yaml) => {
                    yaml.push_str(line);
                    yaml.push('\n');
                }
            }
        }
    }
    tally.report("seeds");
    assert!(tally.documents > 0, "no YAML found in ../shared/seeds");
    assert!(tally.missed.is_empty());
}

/// Texts that the fast reader reads (and that equal serde_yaml's reading: `check`).
const READ: &[&str] = &[
    "a: 1\nb: -2\nc: 0\nd: 6379\n",
    "x: 1Gi\ny: 500m\nz: 0.5Gi\nimage: redis:5.0.1-alpine\ns: inf\nv: v1\n",
    "n: ~\nm: null\ne:\nt: true\nf: False\nyes: yes\n",
    "on: yes\noff: no\ny: n\n",
    "a:b\n",
    "s: 'it''s'\nd: \"double\"\nq: ''\nl: |\n  line\n  two\nf: >-\n  a\n  b\n",
    "list: [1, two, {three: 3}]\nnested:\n- - a\n  - b\n- {}\n- []\n",
    "# comment\nkind: ConfigMap # trailing\ndata: {redis.conf: \"port 6379\"}\n",
    "- a\n- b\n",
    "scalar\n",
    "'quoted root'\n",
    "[a, b]\n",
    "k: ü\nü: k\nemoji: 😀 🚀\n\"😀\": x\n",
    "k: {}\nl: []\n",
    "key:    value   # c\nother: value#notcomment\n",
    "url: http://example.com:8080/a?b=c#frag\n",
    "-\n",
    "- \n- x\n-\n",
    "- - a\n  - b\n- - - c\n",
    "items:\n# between\n- a\n\n  # indented comment\n- b\n",
    "k:\n- a\n- b\nnext: 1\n",
    "- name: x\n  image: y\n- name: z\n",
    "-   name: x\n    image: y\n",
    "a:\n  b:\n    c: d\n  e: f\ng: h\n",
    "keep: |+\n  a\n\n\n",
    "strip: |-\n  a\n\n\n",
    "clip: |\n  a\n\n\n",
    "fold: >\n  a\n  b\n\n  c\n",
    "fold: >+\n  a\n\n",
    "more: >\n  a\n    b\n  c\n",
    "lit: |\n  a\n  # not a comment\n    b\nafter: 1\n",
    "lit: |\n\n  a\nb: 2\n",
    "lit: |\n    a\n  # a real comment\nb: 2\n",
    "- |\n  a\n- >-\n  b\n  c\n- |+\n\n",
    "lit: |\n  no newline at end",
    "empty: |\nnext: x\n",
    "empty: |+\n\nnext: x\n",
    "c: |  # comment\n  x\n",
    "- a\n-",
    "a: 1\nb:",
    "k: 'a # b'\nl: \"c: d\"\n",
    "a b: c d\n",
    "k: [\"a\", 'b', c d, -e]\n",
    "k: {a: [1, {b: c}], 'd': \"e\"}\n",
    "k: x[0],y{1}\n",
    "k: -1\nl: -x\nm: ?x\nn: :x\n",
    "a/b: 1\nc~d: 2\n",
    "  indented: root\n  second: 2\n",
    "key : value\n",
    "k:\n  value on its own line\n",
    "k:\n  |\n    block on its own line\n",
    "k: -0\nl: 123456789012345678\n",
    "k: '1'\n'2': x\n",
    // An empty last item at the end of a text without a final line break: yaml-rust2 marks it on
    // the next line unless the line (in characters) ends left of the sequence.
    "k:\n   -\n#ü",
    "k:\n   -\n#üü",
    "k:\n   -\n   ",
];

/// Texts that the fast reader leaves to serde_yaml (whether it reads them or not).
const DECLINED: &[&str] = &[
    "a: b: c\n",
    "- a\nb: 1\n",
    "a:\n    b: 1\n  c: 2\n",
    "a: 1\n b: 2\n",
    "a:\tb\n",
    "\ta: 1\n",
    "key: 'unterminated\n",
    "k: \"unterminated\n",
    "k: [a, b\n",
    "k: [a,\n  b]\n",
    "k: {a: 1\n",
    ": x\n",
    "a: 1\na: 2\n",
    "1: x\n",
    "true: x\n",
    "null: x\n",
    "~: x\n",
    "k: 012\n",
    "k: 1_000\n",
    "k: 0o7\n",
    "k: 0x1F\n",
    "k: .5\n",
    "k: 1.5\n",
    "k: -.inf\n",
    "k: .nan\n",
    "k: 1e5\n",
    "k: +1\n",
    "k: 12345678901234567890\n",
    "k: \"a\\tb\"\n",
    "k: &a x\n",
    "k: *a\n",
    "k: !t x\n",
    "? a\n: b\n",
    "<<: {a: 1}\n",
    "'<<': 1\n",
    "%YAML 1.2\n---\na: 1\n",
    "a: 1\r\n",
    "\u{feff}a: 1\n",
    "a: \u{85}\n",
    "k: |2\n  x\n",
    "k: |-1\n  x\n",
    "k: |x\n  x\n",
    "k: |# c\n  x\n",
    "k: a\n  b\n",
    "k: 'a\n  b'\n",
    "a\nb\n",
    "k: - a\n",
    "- a\n  - b\n",
    "k: [a, b] c\n",
    "k: 'a' b\n",
    "k: 'a'# c\n",
    "k: [a, ]\n",
    "k: {a: }\n",
    "k: {a}\n",
    "k: [a: b]\n",
    "k: {\"a\":b}\n",
    "[a]: b\n",
    "{a: b}: c\n",
    "k: a::\n",
    "k: -\n",
    "k: [-]\n",
    "k: [?a]\n",
    "...\n",
    "---\n",
    "k: |\n      a\n    b\n",
    "k: |\n\n      \n  a\n",
    "",
    "# only a comment\n",
];

#[test]
fn reads_the_table_or_declines() {
    for text in READ {
        assert!(check(text), "the fast reader declined {text:?}");
    }
    for text in DECLINED {
        assert!(!check(text), "the fast reader read {text:?}");
    }
}

#[test]
fn declines_keys_libyaml_may_refuse_as_too_long() {
    let key = "k".repeat(990);
    assert!(check(&format!("{key}: 1\n")));
    assert!(check(&format!("x: {{{key}: 1}}\n")));
    let key = "k".repeat(1100);
    assert!(!check(&format!("{key}: 1\n")));
    assert!(!check(&format!("'{key}': 1\n")));
    assert!(!check(&format!("x: {{{key}: 1}}\n")));
}

#[test]
fn declines_deep_nesting() {
    let flow = format!("{}{}\n", "[".repeat(150), "]".repeat(150));
    assert!(!check(&flow));
    let block: String = (0..150)
        .map(|depth| format!("{}- a:\n", "  ".repeat(depth)))
        .collect();
    assert!(!check(&block));
    let mappings: String = (0..150)
        .map(|depth| format!("{}k:\n", " ".repeat(depth)))
        .collect();
    assert!(!check(&mappings));
    let shallow = format!("{}{}\n", "[".repeat(99), "]".repeat(99));
    assert!(check(&shallow));
}

#[test]
fn reports_lines_in_document_order() {
    let text = "# c\nspec:\n  containers:\n  - name: redis\n    ports: [{p: 1}, 2]\n  - |\n    x\n";
    let mut lines = Vec::new();
    read_with_lines(text, &mut |pointer, line| {
        lines.push((pointer.to_string(), line))
    })
    .unwrap();
    let expected = [
        ("/spec", 2),
        ("/spec/containers", 3),
        ("/spec/containers/0", 4),
        ("/spec/containers/0/name", 4),
        ("/spec/containers/0/ports", 5),
        ("/spec/containers/0/ports/0", 5),
        ("/spec/containers/0/ports/0/p", 5),
        ("/spec/containers/0/ports/1", 5),
        ("/spec/containers/1", 7),
    ];
    let expected: Vec<_> = expected.iter().map(|(p, l)| (p.to_string(), *l)).collect();
    assert_eq!(lines, expected);
}

/// A small xorshift generator: the fuzz loop needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "a",
    "b",
    "name",
    "a b",
    "k8s.io/name",
    "a~b",
    "ü",
    "😀",
    "'q'",
    "\"d\"",
    "''",
    "'a''b'",
    "1",
    "true",
    "null",
    "~",
    "<<",
    "-x",
    "?x",
    ":x",
    "x#y",
    "a:b",
    "k ",
    "-",
    "[a]",
    "{a: 1}",
    "&x a",
    "!t a",
    "a:",
    "'1'",
    "\"\\n\"",
    "? a",
];

const SCALARS: &[&str] = &[
    "x",
    "hello world",
    "1",
    "-1",
    "0",
    "-0",
    "012",
    "1_000",
    "0o7",
    "0x1f",
    ".5",
    "1.5",
    "-.inf",
    ".NaN",
    "1e5",
    "+1",
    "123456789012345678",
    "1234567890123456789",
    "yes",
    "on",
    "~",
    "null",
    "Null",
    "TRUE",
    "false",
    "1Gi",
    "500m",
    "0.5Gi",
    "redis:7.0.15",
    "http://x:80/y",
    "'it''s'",
    "'a # b'",
    "''",
    "\"dq\"",
    "\"\"",
    "\"a\\tb\"",
    "\"a: b\"",
    "[a, b]",
    "{a: 1}",
    "[]",
    "{}",
    "[a, [b, {c: d}]]",
    "{a: [1, 2], b: {c: ~}}",
    "[\"x\", 'y', -z]",
    "a # c",
    "a#b",
    "- x",
    "a: b",
    "'unterminated",
    "[a, b",
    "{a: 1,}",
    "[a,]",
    "[a: b]",
    "{a}",
    "*x",
    "&x y",
    "!t y",
    "a::",
    "-",
    "x,y",
    "ü ü",
    "😀",
    "a  b",
    "'  '",
    "{\"a\": 1}",
    "[-]",
    "[?a]",
    "%x",
    "@x",
    "`x",
    "|x",
    ">x",
];

const BLOCK_LINES: &[&str] = &[
    "text",
    "more text",
    "# not a comment",
    "  indented",
    "",
    " ",
    "    ",
    "- item",
    "key: v",
    "\"q\"",
    "'s'",
    "   deeper",
];

const HEADERS: &[&str] = &[
    "|", "|-", "|+", ">", ">-", ">+", "|2", "| # c", "|#c", ">1-", "|x",
];

struct Generator {
    rng: Rng,
    out: String,
}

impl Generator {
    fn line(&mut self, indent: usize, text: &str) {
        self.out.push_str(&" ".repeat(indent));
        self.out.push_str(text);
        self.trailing();
        self.out.push('\n');
    }

    fn trailing(&mut self) {
        if self.rng.chance(5) {
            self.out
                .push_str(self.rng.pick(&[" ", "  # c", " #", "#x", "   "]));
        }
    }

    fn noise(&mut self, indent: usize) {
        if self.rng.chance(8) {
            let text = self.rng.pick(&["", "# c", "  # indented", " "]);
            let indent = if self.rng.chance(50) { indent } else { 0 };
            self.line(indent, text);
        }
    }

    /// A node after `prefix` (a key and `:`, or `-`) written at `indent`.
    fn node(&mut self, indent: usize, prefix: &str, depth: usize) {
        let leaf = depth > 4 || self.rng.chance(40);
        let choice = if leaf {
            self.rng.below(3)
        } else {
            self.rng.below(7)
        };
        match choice {
            0 | 1 => {
                let scalar = self.rng.pick(SCALARS);
                self.line(indent, &format!("{prefix} {scalar}"));
            }
            2 => self.block_scalar(indent, prefix),
            3 => {
                self.line(indent, prefix);
                if self.rng.chance(80) {
                    let child = indent + 1 + self.rng.below(3);
                    self.mapping(child, depth + 1);
                }
            }
            4 => {
                self.line(indent, prefix);
                let child = if prefix != "-" && self.rng.chance(50) {
                    indent
                } else {
                    indent + 1 + self.rng.below(3)
                };
                self.sequence(child, depth + 1);
            }
            5 if prefix == "-" => {
                // A compact mapping or sequence after `- `.
                let spaces = 1 + self.rng.below(2);
                let child = indent + 1 + spaces;
                let start = self.out.len();
                if self.rng.chance(60) {
                    self.mapping(child, depth + 1);
                } else {
                    self.sequence(child, depth + 1);
                }
                let head = format!("{}-{}", " ".repeat(indent), " ".repeat(spaces));
                if self.out.len() >= start + child {
                    self.out.replace_range(start..start + child, &head);
                }
            }
            _ => {
                self.line(indent, prefix);
                let child = indent + 1 + self.rng.below(2);
                let scalar = self.rng.pick(SCALARS);
                self.line(child, scalar);
            }
        }
    }

    fn block_scalar(&mut self, indent: usize, prefix: &str) {
        let header = self.rng.pick(HEADERS);
        self.line(indent, &format!("{prefix} {header}"));
        let content = indent + 1 + self.rng.below(3);
        for _ in 0..self.rng.below(5) {
            let text = self.rng.pick(BLOCK_LINES);
            let extra = if self.rng.chance(10) { 1 } else { 0 };
            let shift = if self.rng.chance(5) {
                content.saturating_sub(1)
            } else {
                content + extra
            };
            if text.is_empty() {
                self.out.push('\n');
            } else {
                self.line(shift, text);
            }
        }
    }

    fn mapping(&mut self, indent: usize, depth: usize) {
        for _ in 0..1 + self.rng.below(4) {
            self.noise(indent);
            let key = if self.rng.chance(70) {
                ["a", "b", "c", "name", "image", "spec"][self.rng.below(6)]
            } else {
                self.rng.pick(KEYS)
            };
            let colon = if self.rng.chance(3) { " :" } else { ":" };
            self.node(indent, &format!("{key}{colon}"), depth);
        }
    }

    fn sequence(&mut self, indent: usize, depth: usize) {
        for _ in 0..1 + self.rng.below(4) {
            self.noise(indent);
            if self.rng.chance(5) {
                self.line(indent, "-");
            } else {
                self.node(indent, "-", depth);
            }
        }
    }

    fn document(&mut self) -> String {
        self.out.clear();
        self.noise(0);
        match self.rng.below(10) {
            0 => {
                let scalar = self.rng.pick(SCALARS);
                self.line(0, scalar);
            }
            1 => self.block_scalar(0, ""),
            2 | 3 => self.sequence(0, 0),
            _ => {
                let indent = self.rng.below(2);
                self.mapping(indent, 0);
            }
        }
        self.noise(0);
        let mut text = std::mem::take(&mut self.out);
        self.mutate(&mut text);
        text
    }

    /// Breaks the text a little, one time in two: a character in or out, a line's indentation
    /// changed, a line repeated, a truncation.
    fn mutate(&mut self, text: &mut String) {
        if text.is_empty() || self.rng.chance(50) {
            return;
        }
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        let at = boundaries[self.rng.below(boundaries.len())];
        match self.rng.below(6) {
            0 => {
                let len = text[at..].chars().next().map_or(0, char::len_utf8);
                text.replace_range(at..at + len, "");
            }
            1 => {
                let insert = self.rng.pick(&[
                    " ", ":", "-", "#", "\n", "'", "\"", "[", "]", "{", "}", ",", "|", ">", "\t",
                    "a", "1", "\r", "?", "&", "\\", ": ", "- ", " #",
                ]);
                text.insert_str(at, insert);
            }
            2 => text.truncate(at),
            3 => {
                let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                if self.rng.chance(50) {
                    text.insert(start, ' ');
                } else if text[start..].starts_with(' ') {
                    text.remove(start);
                }
            }
            4 => {
                let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let end = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
                let line = text[start..end].to_string();
                text.insert_str(end, &line);
            }
            _ => {
                if text.ends_with('\n') {
                    text.pop();
                }
            }
        }
    }
}

#[test]
fn generated_texts_read_as_serde_yaml_reads_them() {
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000 / CASES_DIVISOR);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut generator = Generator {
        rng: Rng(seed),
        out: String::new(),
    };
    let mut fast = 0;
    for _ in 0..cases {
        let text = generator.document();
        fast += usize::from(check(&text));
    }
    println!("fuzz: {cases} texts, fast path {fast}");
    assert!(fast * 5 > cases, "too few generated texts read: {fast}");
}
