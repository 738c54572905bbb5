//! Input: reading the user's files ([`files`]) and remembering where each document and field
//! came from ([`positions`]), so that every error and finding can point at a file, line and
//! column.

mod files;
mod positions;

pub use files::{parse, read_inputs, split_documents};
pub use positions::FieldLines;

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

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
    pub field_lines: Arc<FieldLines>,
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
                return line;
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
    /// Shared with the field lines, which parse it again when a line is first asked for.
    pub text: Arc<str>,
    /// Lines (in the file) of the fields, keyed by JSON pointer.
    pub field_lines: Arc<FieldLines>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
