//! Echoes the bundle back as findings, one per object, so that a test sees every field of the
//! ABI cross the boundary both ways: the object's reference, a pointer, a message built from the
//! object and the settings, a severity chosen by the object, and a fix.

use kr_policy_sdk::prelude::*;
use kr_policy_sdk::quantity::parse_bytes;

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    /// Put into every finding's message and fix.
    tag: String,
}

impl PolicySettings for Settings {
    fn validate(&self) -> Result<(), String> {
        if self.tag.contains('\n') {
            return Err("tag: one line, please".into());
        }
        Ok(())
    }
}

const ECHO_WARN: Rule = Rule::warn("echo-warn", "Echoes an object (warn)");
const ECHO_DENY: Rule = Rule::deny("echo-deny", "Echoes an object annotated `echo: deny`");

kr_policy!(name: "abi-echo", rules: [ECHO_WARN, ECHO_DENY], settings: Settings, evaluate: evaluate);

fn evaluate(input: &Input, settings: &Settings) -> Vec<Finding> {
    input
        .objects
        .iter()
        .map(|&object| {
            let annotation = |key: &str| {
                object
                    .pointer(&format!("/metadata/annotations/{key}"))
                    .and_then(Value::as_str)
            };
            let rule = if annotation("echo") == Some("deny") {
                ECHO_DENY
            } else {
                ECHO_WARN
            };
            // The guest's reading of a quantity, for the test to compare with the host's.
            let size = annotation("size").map(|q| match parse_bytes(q) {
                Some(bytes) => bytes.to_string(),
                None => "invalid".to_string(),
            });
            let message = format!(
                "{} of {} objects, tag {:?}, size {}",
                ObjectRef::of_packed(object),
                input.objects.len(),
                settings.tag,
                size.as_deref().unwrap_or("-")
            );
            rule.finding(object, "/metadata/name", message).with_fix(vec![
                json!({"op": "add", "path": "/metadata/labels", "value": {"echo": settings.tag}}),
            ])
        })
        .collect()
}
