//! One pass over a document with a YAML parser that keeps positions: the document's JSON value
//! where it is certain to be serde_yaml's, and the line of every field, by JSON pointer, when
//! something asks for a line ([`FieldLines`]).
//!
//! The pass is [`fast`]'s reader where the document keeps to the YAML manifests are written in
//! (nearly always), else yaml-rust2's parser. Every YAML library measured read about 15 MB/s
//! per core, and parsing was the largest part of checking a large bundle.

mod fast;

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{Document, SpecError};

/// The lines of a document's fields, by JSON pointer, recorded on first use: most documents of
/// a large bundle are never asked for a line (only errors, findings and waivers are), and the
/// pointer of every field was most of a bundle's memory and a fifth of its parse.
#[derive(Debug, Default)]
pub struct FieldLines {
    /// The document's text and how far into its file it starts; None when the lines were
    /// recorded when it was parsed.
    source: Option<(Arc<str>, usize)>,
    lines: OnceLock<BTreeMap<String, usize>>,
}

impl FieldLines {
    fn recorded(lines: BTreeMap<String, usize>) -> FieldLines {
        FieldLines {
            source: None,
            lines: OnceLock::from(lines),
        }
    }

    fn deferred(text: Arc<str>, line_offset: usize) -> FieldLines {
        FieldLines {
            source: Some((text, line_offset)),
            lines: OnceLock::new(),
        }
    }

    /// The line (in the file) where the field at `pointer` is written.
    pub fn get(&self, pointer: &str) -> Option<usize> {
        self.lines().get(pointer).copied()
    }

    fn lines(&self) -> &BTreeMap<String, usize> {
        self.lines.get_or_init(|| match &self.source {
            // The text parsed once already, so it parses again.
            Some((text, line_offset)) => recorded_lines(text, *line_offset),
            None => BTreeMap::new(),
        })
    }
}

/// The lines of a document's fields, for a document whose value was built (so no key repeats).
fn recorded_lines(text: &str, line_offset: usize) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    let mut record_line = |pointer: &str, line: usize| {
        lines.insert(pointer.to_string(), line + line_offset);
    };
    if fast::read_with_lines(text, &mut record_line).is_some() {
        return lines;
    }
    record(text, line_offset, true)
        .map(|recorder| recorder.lines)
        .unwrap_or_default()
}

/// Parses a document: its JSON value where it can be built ([`fast`]'s reader, else
/// [`ValueBuilder`]), and its field lines, deferred when the value was built (then no key
/// repeats). When it was not, the lines are recorded now, since only they tell a key written
/// twice in one mapping, which is an error.
pub(super) fn parse(document: &Document) -> Result<(FieldLines, Option<Value>), SpecError> {
    let line_offset = document.first_line - 1;
    if let Some(value) = fast::read(&document.text) {
        let lines = FieldLines::deferred(document.text.clone(), line_offset);
        return Ok((lines, Some(value)));
    }
    let built = record(&document.text, line_offset, false).map_err(|e| syntax(document, e))?;
    if let Some(value) = built.value.finish() {
        return Ok((
            FieldLines::deferred(document.text.clone(), line_offset),
            Some(value),
        ));
    }
    let recorder = record(&document.text, line_offset, true).map_err(|e| syntax(document, e))?;
    if let Some(duplicate) = recorder.duplicate {
        return Err(SpecError::new(
            &document.file,
            format!(
                "duplicate key: `{}` is already written at line {} in this mapping; write each \
                 key once",
                duplicate.key, duplicate.first_line
            ),
        )
        .at(duplicate.line, duplicate.column)
        .field(super::dotted(&duplicate.pointer)));
    }
    Ok((FieldLines::recorded(recorder.lines), None))
}

/// One pass of the parser over `text`: the value (see [`ValueBuilder`]), and with `lines` the
/// line of every field and the first key written twice.
fn record(
    text: &str,
    line_offset: usize,
    lines: bool,
) -> Result<LineRecorder, yaml_rust2::ScanError> {
    let mut recorder = LineRecorder {
        // Positions are relative to the document; errors and findings want the file's lines.
        line_offset,
        record_lines: lines,
        lines: BTreeMap::new(),
        duplicate: None,
        stack: Vec::new(),
        value: ValueBuilder {
            backslashes: text.contains('\\'),
            ..ValueBuilder::default()
        },
    };
    Parser::new_from_str(text).load(&mut recorder, false)?;
    Ok(recorder)
}

fn syntax(document: &Document, e: yaml_rust2::ScanError) -> SpecError {
    let marker = e.marker();
    document.error_at(
        marker.line(),
        marker.col() + 1,
        format!("invalid YAML: {}", e.info()),
    )
}

/// Tracks the path of the node being parsed; mappings alternate key and value events.
struct LineRecorder {
    line_offset: usize,
    /// Whether to record lines (and so find repeated keys); else only the value is built.
    record_lines: bool,
    lines: BTreeMap<String, usize>,
    /// The first key written twice in one mapping.
    duplicate: Option<Duplicate>,
    stack: Vec<Frame>,
    value: ValueBuilder,
}

struct Duplicate {
    key: String,
    pointer: String,
    first_line: usize,
    line: usize,
    column: usize,
}

enum Frame {
    Mapping {
        pointer: String,
        pending_key: Option<String>,
    },
    Sequence {
        pointer: String,
        next_index: usize,
    },
}

impl LineRecorder {
    /// Called for each node: advances the parent frame, records the line of a key or item, and
    /// returns the node's pointer when `container` (a mapping or sequence starts there) and the
    /// node is a value, not a key.
    fn enter_value(
        &mut self,
        scalar: Option<&str>,
        mark: Marker,
        container: bool,
    ) -> Option<String> {
        let line = mark.line() + self.line_offset;
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping {
                pointer,
                pending_key,
            }) => match pending_key.take() {
                Some(key) => container.then(|| child_pointer(pointer, &key)),
                None => {
                    // This node is a key: remember it, and record the key's own line.
                    let key = scalar.unwrap_or_default().to_string();
                    match self.lines.entry(child_pointer(pointer, &key)) {
                        Entry::Vacant(entry) => {
                            entry.insert(line);
                        }
                        // A complex key (no scalar) has no name to compare by.
                        Entry::Occupied(entry) if scalar.is_some() && self.duplicate.is_none() => {
                            self.duplicate = Some(Duplicate {
                                key: key.clone(),
                                pointer: entry.key().clone(),
                                first_line: *entry.get(),
                                line,
                                column: mark.col() + 1,
                            });
                        }
                        Entry::Occupied(_) => {}
                    }
                    *pending_key = Some(key);
                    None
                }
            },
            Some(Frame::Sequence {
                pointer,
                next_index,
            }) => {
                let child = format!("{pointer}/{next_index}");
                *next_index += 1;
                let pointer = container.then(|| child.clone());
                self.lines.entry(child).or_insert(line);
                pointer
            }
        }
    }
}

fn child_pointer(parent: &str, key: &str) -> String {
    let mut out = String::with_capacity(parent.len() + 1 + key.len());
    out.push_str(parent);
    out.push('/');
    if key.contains(['~', '/']) {
        out.push_str(&escape(key));
    } else {
        out.push_str(key);
    }
    out
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl LineRecorder {
    /// Follows the event's place in the document and records the lines of keys and items.
    fn track(&mut self, event: &Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => {
                self.enter_value(Some(value), mark, false);
            }
            Event::Alias(_) => {
                self.enter_value(None, mark, false);
            }
            Event::MappingStart(..) => {
                let pointer = self.enter_value(None, mark, true).unwrap_or_default();
                self.stack.push(Frame::Mapping {
                    pointer,
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let pointer = self.enter_value(None, mark, true).unwrap_or_default();
                self.stack.push(Frame::Sequence {
                    pointer,
                    next_index: 0,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl MarkedEventReceiver for LineRecorder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.record_lines {
            self.track(&event, mark);
        }
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                self.value.scalar(value, style, anchor, tag.is_some());
            }
            Event::Alias(_) => self.value.fail(),
            Event::MappingStart(anchor, tag) => {
                self.value
                    .start(Node::Mapping(Map::new(), None), anchor, tag.is_some());
            }
            Event::SequenceStart(anchor, tag) => {
                self.value
                    .start(Node::Sequence(Vec::new()), anchor, tag.is_some());
            }
            Event::MappingEnd | Event::SequenceEnd => self.value.end(),
            _ => {}
        }
    }
}

/// Builds a document's JSON value from the parser's events, the same value serde_yaml would
/// deserialize, or gives up on the document (and the spec loader then parses it with
/// serde_yaml) at anything whose reading it does not replicate exactly: anchors and aliases,
/// tags, keys that are not plain strings or repeat, `<<`, escapes in double-quoted scalars, deep
/// nesting, and plain scalars that serde_yaml could read as a number other than a decimal
/// integer (floats, hex and octal, leading zeros, `+`). Specs and manifests rarely need it.
#[derive(Default)]
struct ValueBuilder {
    stack: Vec<Node>,
    root: Option<Value>,
    failed: bool,
    /// The text has a backslash: a double-quoted scalar may hold escapes.
    backslashes: bool,
}

enum Node {
    /// The mapping so far and the key whose value comes next.
    Mapping(Map<String, Value>, Option<String>),
    Sequence(Vec<Value>),
}

impl ValueBuilder {
    fn fail(&mut self) {
        self.failed = true;
        self.stack.clear();
    }

    fn at_key(&self) -> bool {
        matches!(self.stack.last(), Some(Node::Mapping(_, None)))
    }

    fn scalar(&mut self, text: String, style: TScalarStyle, anchor: usize, tagged: bool) {
        if self.failed {
            return;
        }
        let escapes = style == TScalarStyle::DoubleQuoted && self.backslashes;
        if anchor != 0 || tagged || escapes {
            return self.fail();
        }
        let value = if style == TScalarStyle::Plain {
            match plain_scalar(text) {
                Some(value) => value,
                None => return self.fail(),
            }
        } else {
            Value::String(text)
        };
        if self.at_key() {
            let Some(Node::Mapping(map, key)) = self.stack.last_mut() else {
                unreachable!("at_key checked it")
            };
            match value {
                Value::String(k) if k != "<<" && !map.contains_key(&k) => *key = Some(k),
                _ => self.fail(),
            }
        } else {
            self.add(value);
        }
    }

    fn start(&mut self, node: Node, anchor: usize, tagged: bool) {
        if self.failed {
            return;
        }
        // serde_yaml refuses documents nested deeper than 128 levels; leave those to it.
        if anchor != 0 || tagged || self.at_key() || self.stack.len() >= 100 {
            return self.fail();
        }
        self.stack.push(node);
    }

    fn end(&mut self) {
        if self.failed {
            return;
        }
        match self.stack.pop() {
            Some(Node::Mapping(map, None)) => self.add(Value::Object(map)),
            Some(Node::Sequence(items)) => self.add(Value::Array(items)),
            _ => self.fail(),
        }
    }

    /// Adds a value to the node being built (after its key, in a mapping).
    fn add(&mut self, value: Value) {
        match self.stack.last_mut() {
            None if self.root.is_none() => self.root = Some(value),
            None => self.fail(),
            Some(Node::Sequence(items)) => items.push(value),
            Some(Node::Mapping(map, key)) => match key.take() {
                Some(key) => {
                    map.insert(key, value);
                }
                None => self.fail(),
            },
        }
    }

    fn finish(self) -> Option<Value> {
        if self.failed || !self.stack.is_empty() {
            return None;
        }
        self.root
    }
}

/// A plain scalar as serde_yaml (YAML 1.2 core schema) reads it, where that is certain; None
/// where it might be a number that is not a plain decimal integer.
fn plain_scalar(text: String) -> Option<Value> {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(&text);
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        // Numbers start with a digit or a dot, after their sign (`inf` and `nan` without the
        // dot are strings to serde_yaml).
        return Some(Value::String(text));
    }
    let decimal = !text.starts_with('+')
        && unsigned.len() <= 18
        && unsigned.bytes().all(|b| b.is_ascii_digit())
        && (unsigned == "0" || !unsigned.starts_with('0'));
    if decimal {
        return text.parse::<i64>().ok().map(Value::from);
    }
    // A character that no number (decimal, hex, octal, binary, float, `.inf`, `.nan`) has
    // makes it a string, as `1Gi`, `500m` and `0.5Gi` are.
    let maybe_number = unsigned.bytes().all(|b| {
        b.is_ascii_hexdigit()
            || matches!(
                b,
                b'x' | b'X' | b'o' | b'O' | b'.' | b'_' | b'+' | b'-' | b'i' | b'I' | b'n' | b'N'
            )
    });
    (!maybe_number).then_some(Value::String(text))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::split_documents;
    use super::*;

    #[test]
    fn records_field_lines_by_pointer() {
        let text = "spec:\n  containers:\n  - name: redis\n    image: redis:5\n";
        let doc = &split_documents("f.yaml", text).unwrap()[0];
        assert_eq!(doc.field_lines.get("/spec"), Some(1));
        assert_eq!(doc.field_lines.get("/spec/containers/0"), Some(3));
        assert_eq!(doc.field_lines.get("/spec/containers/0/image"), Some(4));
        let origin = doc.origin();
        assert_eq!(origin.line_of("/spec/containers/0/image"), 4);
        assert_eq!(origin.line_of("/spec/containers/0/ports/1"), 3);
        assert_eq!(origin.line_of("/status"), 1);
    }

    fn same_as_serde_yaml(text: &str) -> bool {
        let doc = &split_documents("f.yaml", text).unwrap()[0];
        let expected: Option<Value> = serde_yaml::from_str(&doc.text).ok();
        match &doc.value {
            Some(value) => {
                assert_eq!(Some(value), expected.as_ref(), "{text}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn builds_the_value_serde_yaml_reads() {
        for text in [
            "a: 1\nb: -2\nc: 0\nd: 6379\n",
            "x: 1Gi\ny: 500m\nz: 0.5Gi\nimage: redis:5.0.1-alpine\ns: inf\nv: v1\n",
            "n: ~\nm: null\ne:\nt: true\nf: False\nyes: yes\n",
            "s: 'it''s'\nd: \"double\"\nq: ''\nl: |\n  line\n  two\nf: >-\n  a\n  b\n",
            "list: [1, two, {three: 3}]\nnested:\n- - a\n  - b\n- {}\n- []\n",
            "# comment\nkind: ConfigMap # trailing\ndata: {redis.conf: \"port 6379\"}\n",
            "- a\n- b\n",
            "scalar\n",
        ] {
            assert!(
                same_as_serde_yaml(text),
                "the fast value was not built for {text:?}"
            );
        }
        // Readings it does not replicate: serde_yaml parses these.
        for text in [
            "f: 1.5\n",
            "h: 0x1F\n",
            "o: 007\n",
            "p: +1\n",
            "ip: 10.0.0.1\n",
            "e: 1e3\n",
            "i: .inf\n",
            "big: 12345678901234567890\n",
            "a: &x 1\nb: *x\n",
            "t: !!str 1\n",
            "q: \"a\\tb\"\n",
            "1: numeric key\n",
            "true: bool key\n",
            "? [complex]\n: key\n",
            "<<: {a: 1}\n",
        ] {
            assert!(
                !same_as_serde_yaml(text),
                "{text:?} should be left to serde_yaml"
            );
        }
    }

    #[test]
    fn a_key_written_twice_is_an_error_at_the_second() {
        let error = split_documents("f.yaml", "---\nd:\n  a: 1\n  b: 2\n  a: 3\n").unwrap_err();
        assert_eq!((error.line, error.column), (Some(5), Some(3)));
        assert_eq!(error.field.as_deref(), Some("d.a"));
        assert!(
            error.message.contains("already written at line 3"),
            "{error}"
        );
        // The same key in two mappings, or two items of a list, is fine.
        assert!(split_documents("f.yaml", "x: {a: 1}\ny: {a: 1}\nl: [{a: 1}, {a: 2}]\n").is_ok());
    }

    #[test]
    fn the_value_of_every_fixture_is_serde_yaml_s() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut todo = vec![root.join("specs"), root.join("plugin/tests/fixtures")];
        let mut checked = 0;
        while let Some(dir) = todo.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    todo.push(path);
                    continue;
                }
                if !matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                ) {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let Ok(docs) = split_documents(&path.display().to_string(), &text) else {
                    continue;
                };
                for doc in docs {
                    if let (Some(value), Ok(expected)) =
                        (&doc.value, serde_yaml::from_str::<Value>(&doc.text))
                    {
                        assert_eq!(value, &expected, "{}:{}", doc.file, doc.first_line);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 20, "only {checked} documents checked");
    }
}
