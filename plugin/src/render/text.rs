//! `render`'s output: a multi-document YAML stream or a `v1 List`.

use serde_json::Value;

/// How `render` prints objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderFormat {
    /// A multi-document YAML stream, as `kubectl apply -f` reads it.
    Yaml,
    /// A `v1 List`.
    Json,
}

/// Serializes objects as a multi-document YAML stream or a `v1 List`.
pub fn to_text(objects: &[Value], format: RenderFormat) -> anyhow::Result<String> {
    Ok(match format {
        RenderFormat::Yaml => {
            // One emitter for the stream: it separates the documents with `---` itself, and
            // setting one up per object was a fifth of a large render.
            let mut out = b"---\n".to_vec();
            let mut serializer = serde_yaml::Serializer::new(&mut out);
            for object in objects {
                serde::Serialize::serialize(object, &mut serializer)?;
            }
            drop(serializer);
            String::from_utf8(out).expect("serde_yaml writes UTF-8")
        }
        RenderFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            format!("{}\n", serde_json::to_string_pretty(&list)?)
        }
    })
}
