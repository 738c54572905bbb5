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
            let mut out = String::new();
            for object in objects {
                out.push_str("---\n");
                out.push_str(&serde_yaml::to_string(object)?);
            }
            out
        }
        RenderFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            format!("{}\n", serde_json::to_string_pretty(&list)?)
        }
    })
}
