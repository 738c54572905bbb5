//! Reading spec files: paths, directories and standard input, size-limited, split into YAML
//! documents the way kubectl splits them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::positions;
use super::{Document, SpecError, MAX_SPEC_BYTES};

/// Reads every spec file named on the command line: a file, a directory (its `.yaml`, `.yml`
/// and `.json` files, sorted), or `-` for standard input. The documents are split, not parsed:
/// [`parse`] each, so that a caller can parse and use one before the next.
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
            documents.extend(split(&name, &text)?);
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
    split(file, text)?.into_iter().map(parse).collect()
}

/// The documents of a stream, their positions not parsed yet.
pub(super) fn split(file: &str, text: &str) -> Result<Vec<Document>, SpecError> {
    let mut documents = Vec::new();
    // The current document starts at byte `start`, on line `first_line`; `at` is where the
    // line being looked at starts.
    let (mut start, mut first_line, mut at) = (0, 1, 0);
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        let separator = trimmed == "---" || trimmed.starts_with("--- ") || trimmed == "...";
        if separator {
            push_document(file, first_line, &text[start..at], &mut documents);
            start = at + line.len();
            first_line = index + 2;
        }
        at += line.len();
    }
    push_document(file, first_line, &text[start..], &mut documents);
    if documents.is_empty() {
        return Err(SpecError::new(
            file,
            "the file holds no YAML documents (it is empty or only comments)",
        ));
    }
    Ok(documents)
}

fn push_document(file: &str, first_line: usize, text: &str, documents: &mut Vec<Document>) {
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return;
    }
    let leading = text
        .lines()
        .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        .count();
    documents.push(Document {
        file: file.to_string(),
        first_line,
        content_line: first_line + leading,
        text: text.into(),
        field_lines: Arc::default(),
        value: None,
    });
}

/// Parses a document: its value where the parse that keeps positions can build it, and the lines
/// of its fields (recorded when first asked for, where the value was built).
pub fn parse(mut document: Document) -> Result<Document, SpecError> {
    let (field_lines, value) = positions::parse(&document)?;
    document.field_lines = Arc::new(field_lines);
    document.value = value;
    Ok(document)
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
        assert_eq!(docs[1].field_lines.get("/b/c"), Some(8));
    }
}
