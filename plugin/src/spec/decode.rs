//! Deserializing one document into a typed value, with the error placed at its file, line,
//! column and field.
//!
//! Each part of an error comes from where it is typed: the field from `serde_path_to_error`'s
//! path, the message from the error of a value deserializer (which carries nothing else), the
//! line and column from serde_yaml's [`serde_yaml::Location`]. serde_yaml's own message folds the
//! path and the position into its text, so it is not taken apart.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::{Path, Segment};

use crate::input::{self, Document, SpecError};

/// Deserializes one document. From the value the line-recording parse already built, when there
/// is one and it fits `T` (no second parse of the text); else with serde_yaml, which reads the
/// text and knows where an error is.
pub(super) fn from_document<T: DeserializeOwned>(document: &Document) -> Result<T, SpecError> {
    if let Some(Ok(parsed)) = document.value.as_ref().map(T::deserialize) {
        return Ok(parsed);
    }
    let yaml_error = match serde_yaml::from_str::<T>(&document.text) {
        Ok(parsed) => return Ok(parsed),
        Err(error) => error,
    };
    let location = yaml_error.location();
    // The same document again, as a value, tracking the path: the field and a plain message.
    let value = match &document.value {
        Some(value) => Cow::Borrowed(value),
        None => match serde_yaml::from_str::<Value>(&document.text) {
            Ok(value) => Cow::Owned(value),
            Err(_) => return Err(as_written(document, &yaml_error)),
        },
    };
    let error = match serde_path_to_error::deserialize::<_, T>(value.as_ref()) {
        Ok(_) => return Err(as_written(document, &yaml_error)),
        Err(error) => error,
    };
    let pointer = pointer(error.path());
    let message = plain_type_names(&error.inner().to_string());
    let field = (!pointer.is_empty()).then(|| input::dotted(&pointer));
    Err(match (location, field) {
        (Some(at), field) => {
            let mut spec_error = document.error_at(at.line(), at.column(), message);
            spec_error.field = field;
            spec_error
        }
        (None, Some(_)) => document.field_error(&pointer, message),
        (None, None) => SpecError::new(&document.file, message).at(document.content_line, 1),
    })
}

/// serde_yaml's error as it stands, at its position: for the rare document that only serde_yaml
/// reads (a YAML feature the value parse leaves to it) and that it rejects, or when the two
/// readings disagree.
fn as_written(document: &Document, error: &serde_yaml::Error) -> SpecError {
    let text = error.to_string();
    match error.location() {
        Some(at) => {
            // The position is printed in front already; drop serde_yaml's relative copy.
            let suffix = format!(" at line {} column {}", at.line(), at.column());
            let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
            document.error_at(at.line(), at.column(), message)
        }
        None => SpecError::new(&document.file, text).at(document.content_line, 1),
    }
}

/// The path as a JSON pointer (`/spec/ports/0/port`), the key the field lines are stored by.
fn pointer(path: &Path) -> String {
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"))
            }
            Segment::Unknown => pointer.push('?'),
        }
    }
    pointer
}

/// serde names Rust's integer types in "expected i32"; the user wrote YAML, where it is an integer.
fn plain_type_names(message: &str) -> String {
    let mut message = message.to_string();
    for integer in ["i64", "i32", "u32", "u64", "u16", "u8"] {
        message = message.replace(&format!("expected {integer}"), "expected an integer");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::split_documents;
    use crate::spec::RedisCluster;

    fn decode(text: &str) -> SpecError {
        let document = &split_documents("f.yaml", text).unwrap()[0];
        from_document::<RedisCluster>(document).unwrap_err()
    }

    const HEAD: &str =
        "apiVersion: kubectl-redis.io/v1alpha1\nkind: RedisCluster\nmetadata:\n  name: r\nspec:\n";

    #[test]
    fn a_failed_check_names_the_field_it_was_written_on() {
        let error = decode(&format!("{HEAD}  masters: 2\n"));
        assert_eq!(error.field.as_deref(), Some("spec.masters"));
        assert_eq!(error.line, Some(6));
        assert!(error.message.contains("at least 3 masters"), "{error}");
        assert!(!error.message.contains("line"), "{error}");
    }

    #[test]
    fn a_wrong_type_is_named_in_yaml_words_at_the_value() {
        let error = decode(&format!(
            "{HEAD}  storage:\n    hostPathVolumes:\n      nodes: [a, 7]\n  replicasPerMaster: x\n"
        ));
        assert_eq!(error.field.as_deref(), Some("spec.replicasPerMaster"));
        assert_eq!((error.line, error.column), (Some(9), Some(22)));
        assert!(error.message.contains("expected an integer"), "{error}");
    }

    #[test]
    fn an_unknown_field_is_the_field() {
        let error = decode(&format!("{HEAD}  storage:\n    sise: 1Gi\n"));
        assert_eq!(error.field.as_deref(), Some("spec.storage.sise"));
        assert!(error.message.starts_with("unknown field `sise`"), "{error}");
    }

    #[test]
    fn pointers_escape_and_index() {
        let value: Value = serde_json::json!({"a/b": [0, {"c": "x"}]});
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code, reason = "only the error is looked at")]
        struct Deep {
            #[serde(rename = "a/b")]
            list: (u8, std::collections::BTreeMap<String, u8>),
        }
        let error = serde_path_to_error::deserialize::<_, Deep>(&value).unwrap_err();
        assert_eq!(pointer(error.path()), "/a~1b/1/c");
    }
}
