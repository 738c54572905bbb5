//! `render`'s output: a multi-document YAML stream or a `v1 List`.

use super::yaml::{write_documents, YAML_RUN};
use crate::object::PackedObject;

/// How `render` prints objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderFormat {
    /// A multi-document YAML stream, as `kubectl apply -f` reads it.
    Yaml,
    /// A `v1 List`.
    Json,
}

/// Objects per thread when writing YAML: whole runs of the writer's (its output depends on where
/// a run starts), many of them, so that a large bundle is written on all cores.
const YAML_CHUNK: usize = YAML_RUN * 64;

/// Serializes objects as a multi-document YAML stream or a `v1 List`.
pub fn to_text(objects: &[PackedObject], format: RenderFormat) -> anyhow::Result<String> {
    Ok(match format {
        RenderFormat::Yaml => {
            let chunks = crate::parallel::map(objects.chunks(YAML_CHUNK).collect(), |chunk| {
                let mut out = Vec::new();
                write_documents(chunk.iter().map(PackedObject::node), &mut out);
                out
            });
            String::from_utf8(chunks.concat()).expect("the YAML writer writes UTF-8")
        }
        RenderFormat::Json => format!("{}\n", serde_json::to_string_pretty(&List::of(objects))?),
    })
}

/// A `v1 List` of the objects, serialized from their packed form (no `Value` of the whole
/// bundle). The fields in the order serde_json's maps keep them, as a `json!` list printed.
#[derive(serde::Serialize)]
struct List<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    items: &'a [PackedObject],
    kind: &'static str,
}

impl<'a> List<'a> {
    fn of(items: &'a [PackedObject]) -> List<'a> {
        List {
            api_version: "v1",
            items,
            kind: "List",
        }
    }
}
