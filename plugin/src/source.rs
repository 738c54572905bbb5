//! Source positions: reading the user's files and remembering where each document and field
//! came from, so that every error and finding can point at a file, line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

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
    /// Lines of the fields in the input document, keyed by JSON pointer (`/spec/image`).
    pub field_lines: BTreeMap<String, usize>,
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
    pub field_lines: BTreeMap<String, usize>,
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
        field_lines: BTreeMap::new(),
    };
    document.field_lines = field_lines(&document)?;
    documents.push(document);
    Ok(())
}

/// Indexes every mapping key and sequence item of a document by JSON pointer → line, using a
/// YAML parser that keeps positions (serde_yaml does not expose them).
fn field_lines(document: &Document) -> Result<BTreeMap<String, usize>, SpecError> {
    let mut recorder = LineRecorder::default();
    let mut parser = Parser::new_from_str(&document.text);
    parser.load(&mut recorder, false).map_err(|e| {
        let marker = e.marker();
        document.error_at(
            marker.line(),
            marker.col() + 1,
            format!("invalid YAML: {}", e.info()),
        )
    })?;
    // Positions are relative to the document; errors and findings want the file's lines.
    Ok(recorder
        .lines
        .into_iter()
        .map(|(pointer, line)| (pointer, line + document.first_line - 1))
        .collect())
}

/// Tracks the path of the node being parsed; mappings alternate key and value events.
#[derive(Default)]
struct LineRecorder {
    lines: BTreeMap<String, usize>,
    stack: Vec<Frame>,
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
    /// Called for each value node: returns its pointer and advances the parent frame.
    fn enter_value(&mut self, scalar: Option<&str>, line: usize) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping {
                pointer,
                pending_key,
            }) => match pending_key.take() {
                Some(key) => Some(format!("{pointer}/{}", escape(&key))),
                None => {
                    // This node is a key: remember it, and record the key's own line.
                    let key = scalar.unwrap_or_default().to_string();
                    let child = format!("{pointer}/{}", escape(&key));
                    self.lines.entry(child).or_insert(line);
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
                self.lines.entry(child.clone()).or_insert(line);
                Some(child)
            }
        }
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl MarkedEventReceiver for LineRecorder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line();
        match event {
            Event::Scalar(value, ..) => {
                self.enter_value(Some(&value), line);
            }
            Event::Alias(_) => {
                self.enter_value(None, line);
            }
            Event::MappingStart(..) => {
                let pointer = self.enter_value(None, line).unwrap_or_default();
                self.stack.push(Frame::Mapping {
                    pointer,
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let pointer = self.enter_value(None, line).unwrap_or_default();
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
