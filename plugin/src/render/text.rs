//! `render`'s output: a multi-document YAML stream or a `v1 List`.

use crate::object::PackedObject;

/// How `render` prints objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderFormat {
    /// A multi-document YAML stream, as `kubectl apply -f` reads it.
    Yaml,
    /// A `v1 List`.
    Json,
}

/// Objects one YAML emitter writes: few enough that a large bundle splits into many runs.
const YAML_RUN: usize = 16;

/// Serializes objects as a multi-document YAML stream or a `v1 List`.
pub fn to_text(objects: &[PackedObject], format: RenderFormat) -> anyhow::Result<String> {
    Ok(match format {
        RenderFormat::Yaml => {
            // Runs of objects are emitted in parallel, one emitter each: an emitter separates
            // its documents with `---` itself (setting one up per object was a fifth of a large
            // render), and the runs are joined with the same separator.
            let runs = crate::parallel::try_map(objects.chunks(YAML_RUN).collect(), yaml_stream)?;
            String::from_utf8(runs.concat()).expect("serde_yaml writes UTF-8")
        }
        RenderFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            format!("{}\n", serde_json::to_string_pretty(&list)?)
        }
    })
}

/// `---` and the objects as YAML documents, separated by `---`.
fn yaml_stream(objects: &[PackedObject]) -> Result<Vec<u8>, serde_yaml::Error> {
    let mut out = b"---\n".to_vec();
    let mut serializer = serde_yaml::Serializer::new(&mut out);
    for object in objects {
        serde::Serialize::serialize(object, &mut serializer)?;
    }
    drop(serializer);
    Ok(out)
}
