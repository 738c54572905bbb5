//! Source positions: reading the user's files and remembering where each document and field
//! came from, so that every error and finding can point at a file, line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Spec files larger than this are refused before parsing: a desired-state spec is a few KiB,
/// and a runaway file must not make the tool eat memory.
pub const MAX_SPEC_BYTES: u64 = 8 * 1024 * 1024;

/// A position in an input file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// An input problem, always tied to a file and, where known, a line, a column and a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", self.position(), self.message)]
pub struct SpecError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The offending field as a dotted path (`spec.masters`), when there is one.
    pub field: Option<String>,
    pub message: String,
}

impl SpecError {
    pub fn new(file: &str, message: impl Into<String>) -> Self {
        SpecError {
            file: file.to_string(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    fn position(&self) -> String {
        let mut out = self.file.clone();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                out.push_str(&format!(":{column}"));
            }
        }
        out.push_str(": ");
        if let Some(field) = &self.field {
            out.push_str(&format!("field `{field}`: "));
        }
        out
    }
}

/// Where a rendered object came from: its document, and the line of each field the user wrote.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub file: String,
    /// 1-based line where the document's content starts.
    pub line: usize,
    /// Lines of the fields in the input document, keyed by JSON pointer (`/spec/image`). Shared
    /// with the document and every object rendered from it, not copied.
    pub field_lines: Arc<BTreeMap<String, usize>>,
    /// Maps a JSON-pointer prefix in the *rendered object* to the pointer of the input field it
    /// came from: identity for plain manifests, e.g. `/spec/template/spec/containers/0/image` →
    /// `/spec/image` for a RedisCluster document.
    pub field_map: Vec<(String, String)>,
}

impl Origin {
    /// The best line for a JSON pointer into the rendered object: the line of the input field it
    /// came from, else of its closest written ancestor, else the document's first line.
    pub fn line_of(&self, rendered_pointer: &str) -> usize {
        let input_pointer = self
            .field_map
            .iter()
            .filter(|(rendered, _)| is_pointer_prefix(rendered, rendered_pointer))
            .max_by_key(|(rendered, _)| rendered.len())
            .map(|(rendered, input)| format!("{input}{}", &rendered_pointer[rendered.len()..]))
            .unwrap_or_else(|| rendered_pointer.to_string());
        let mut pointer = input_pointer.as_str();
        loop {
            if let Some(line) = self.field_lines.get(pointer) {
                return *line;
            }
            match pointer.rfind('/') {
                Some(cut) => pointer = &pointer[..cut],
                None => return self.line,
            }
        }
    }
}

fn is_pointer_prefix(prefix: &str, pointer: &str) -> bool {
    pointer == prefix
        || (pointer.starts_with(prefix) && pointer.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// One YAML document of an input file.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: String,
    /// 1-based line of the document's first line in the file.
    pub first_line: usize,
    /// 1-based line of the document's first line that is not blank or a comment.
    pub content_line: usize,
    pub text: String,
    /// Lines (in the file) of the fields, keyed by JSON pointer.
    pub field_lines: Arc<BTreeMap<String, usize>>,
    /// The document's value, built by the parse that records the field lines, when it is
    /// certain to be the one serde_yaml would read (nearly always; see [`ValueBuilder`]), so
    /// that the spec loader need not parse the text again. None: parse the text.
    pub value: Option<Value>,
}

impl Document {
    /// An error at a line/column relative to this document's text.
    pub fn error_at(&self, line: usize, column: usize, message: impl Into<String>) -> SpecError {
        SpecError::new(&self.file, message).at(self.first_line + line - 1, column)
    }

    /// An error about a field, placed on the field's line (or its closest written ancestor's).
    pub fn field_error(&self, pointer: &str, message: impl Into<String>) -> SpecError {
        let origin = self.origin();
        SpecError::new(&self.file, message)
            .at(origin.line_of(pointer), 1)
            .field(dotted(pointer))
    }

    pub fn origin(&self) -> Origin {
        Origin {
            file: self.file.clone(),
            line: self.content_line,
            field_lines: self.field_lines.clone(),
            field_map: Vec::new(),
        }
    }
}

/// `/spec/containers/0/image` → `spec.containers[0].image`.
pub fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part.replace("~1", "/").replace("~0", "~"));
        }
    }
    out
}

/// Reads every spec file named on the command line: a file, a directory (its `.yaml`, `.yml`
/// and `.json` files, sorted), or `-` for standard input.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Document>, SpecError> {
    let mut documents = Vec::new();
    for path in paths {
        for file in expand(path)? {
            let name = file.display().to_string();
            let text = if file == Path::new("-") {
                read_limited(std::io::stdin().lock(), "<stdin>")?
            } else {
                let handle = std::fs::File::open(&file)
                    .map_err(|e| SpecError::new(&name, format!("cannot read: {e}")))?;
                read_limited(handle, &name)?
            };
            let name = if file == Path::new("-") {
                "<stdin>".to_string()
            } else {
                name
            };
            documents.extend(split_documents(&name, &text)?);
        }
    }
    Ok(documents)
}

fn expand(path: &Path) -> Result<Vec<PathBuf>, SpecError> {
    let name = path.display().to_string();
    if path == Path::new("-") || !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| SpecError::new(&name, format!("cannot read: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SpecError::new(
            &name,
            "the directory holds no .yaml, .yml or .json files",
        ));
    }
    Ok(files)
}

fn read_limited(reader: impl Read, name: &str) -> Result<String, SpecError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SpecError::new(name, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Err(SpecError::new(
            name,
            format!(
                "the file is larger than {} MiB; a spec is a few KiB of YAML, so this is not one",
                MAX_SPEC_BYTES / (1024 * 1024)
            ),
        ));
    }
    let binary_at = bytes
        .iter()
        .position(|b| *b == 0)
        .or_else(|| std::str::from_utf8(&bytes).err().map(|e| e.valid_up_to()));
    if let Some(offset) = binary_at {
        let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
        return Err(SpecError::new(
            name,
            format!("not a text file: byte {offset} is not UTF-8 text (is this a binary file?)"),
        )
        .at(line, 1));
    }
    Ok(String::from_utf8(bytes).expect("checked to be UTF-8 above"))
}

/// Splits a YAML stream at its `---` separators the way kubectl does, keeping each document's
/// first line so that errors can point into the file. Documents that hold only comments or
/// whitespace are skipped.
pub fn split_documents(file: &str, text: &str) -> Result<Vec<Document>, SpecError> {
    let mut documents = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        let separator = trimmed == "---" || trimmed.starts_with("--- ") || trimmed == "...";
        if separator {
            push_document(
                file,
                first_line,
                std::mem::take(&mut current),
                &mut documents,
            )?;
            first_line = index + 2;
        } else {
            current.push_str(line);
        }
    }
    push_document(file, first_line, current, &mut documents)?;
    if documents.is_empty() {
        return Err(SpecError::new(
            file,
            "the file holds no YAML documents (it is empty or only comments)",
        ));
    }
    Ok(documents)
}

fn push_document(
    file: &str,
    first_line: usize,
    text: String,
    documents: &mut Vec<Document>,
) -> Result<(), SpecError> {
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Ok(());
    }
    let leading = text
        .lines()
        .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        .count();
    let mut document = Document {
        file: file.to_string(),
        first_line,
        content_line: first_line + leading,
        text,
        field_lines: Arc::default(),
        value: None,
    };
    let (field_lines, value) = parse(&document)?;
    document.field_lines = Arc::new(field_lines);
    document.value = value;
    documents.push(document);
    Ok(())
}

/// Indexes every mapping key and sequence item of a document by JSON pointer → line, using a
/// YAML parser that keeps positions (serde_yaml does not expose them), and builds the document's
/// JSON value in the same pass where it can ([`ValueBuilder`]).
fn parse(document: &Document) -> Result<(BTreeMap<String, usize>, Option<Value>), SpecError> {
    let mut recorder = LineRecorder {
        // Positions are relative to the document; errors and findings want the file's lines.
        line_offset: document.first_line - 1,
        lines: BTreeMap::new(),
        stack: Vec::new(),
        value: ValueBuilder {
            backslashes: document.text.contains('\\'),
            ..ValueBuilder::default()
        },
    };
    let mut parser = Parser::new_from_str(&document.text);
    parser.load(&mut recorder, false).map_err(|e| {
        let marker = e.marker();
        document.error_at(
            marker.line(),
            marker.col() + 1,
            format!("invalid YAML: {}", e.info()),
        )
    })?;
    Ok((recorder.lines, recorder.value.finish()))
}

/// Tracks the path of the node being parsed; mappings alternate key and value events.
struct LineRecorder {
    line_offset: usize,
    lines: BTreeMap<String, usize>,
    stack: Vec<Frame>,
    value: ValueBuilder,
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
        line: usize,
        container: bool,
    ) -> Option<String> {
        let line = line + self.line_offset;
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
                    self.lines
                        .entry(child_pointer(pointer, &key))
                        .or_insert(line);
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

impl MarkedEventReceiver for LineRecorder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line();
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                self.enter_value(Some(&value), line, false);
                self.value.scalar(value, style, anchor, tag.is_some());
            }
            Event::Alias(_) => {
                self.enter_value(None, line, false);
                self.value.fail();
            }
            Event::MappingStart(anchor, tag) => {
                let pointer = self.enter_value(None, line, true).unwrap_or_default();
                self.stack.push(Frame::Mapping {
                    pointer,
                    pending_key: None,
                });
                self.value
                    .start(Node::Mapping(Map::new(), None), anchor, tag.is_some());
            }
            Event::SequenceStart(anchor, tag) => {
                let pointer = self.enter_value(None, line, true).unwrap_or_default();
                self.stack.push(Frame::Sequence {
                    pointer,
                    next_index: 0,
                });
                self.value
                    .start(Node::Sequence(Vec::new()), anchor, tag.is_some());
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value.end();
            }
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
    use super::*;

    #[test]
    fn splits_documents_and_keeps_their_lines() {
        let text = "# leading comment\n---\na: 1\n---\n# only a comment\n---\nb:\n  c: [1, 2]\n";
        let docs = split_documents("f.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 3);
        assert_eq!(docs[1].first_line, 7);
        assert_eq!(docs[1].field_lines.get("/b/c"), Some(&8));
    }

    #[test]
    fn records_field_lines_by_pointer() {
        let text = "spec:\n  containers:\n  - name: redis\n    image: redis:5\n";
        let doc = &split_documents("f.yaml", text).unwrap()[0];
        assert_eq!(doc.field_lines.get("/spec"), Some(&1));
        assert_eq!(doc.field_lines.get("/spec/containers/0"), Some(&3));
        assert_eq!(doc.field_lines.get("/spec/containers/0/image"), Some(&4));
        let origin = doc.origin();
        assert_eq!(origin.line_of("/spec/containers/0/image"), 4);
        assert_eq!(origin.line_of("/spec/containers/0/ports/1"), 3);
        assert_eq!(origin.line_of("/status"), 1);
    }

    #[test]
    fn maps_rendered_pointers_to_input_fields() {
        let text = "kind: RedisCluster\nspec:\n  image: redis:5\n";
        let mut origin = split_documents("f.yaml", text).unwrap()[0].origin();
        origin.field_map.push((
            "/spec/template/spec/containers/0/image".into(),
            "/spec/image".into(),
        ));
        assert_eq!(origin.line_of("/spec/template/spec/containers/0/image"), 3);
    }

    /// The value the line-recording parse builds is serde_yaml's, or None.
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
            "d: 1\nd: 2\n",
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

    #[test]
    fn dotted_paths_read_like_kubectl_explain() {
        assert_eq!(
            dotted("/spec/containers/0/image"),
            "spec.containers[0].image"
        );
        assert_eq!(
            dotted("/metadata/annotations/a~1b"),
            "metadata.annotations.a/b"
        );
    }
}
