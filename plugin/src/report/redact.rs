//! Secret masking: secret values never reach a terminal or a CI log unless `--show-secrets`.

use serde_json::Value;

use crate::object::PackedObject;

/// What a masked value prints as.
pub(crate) const MASK: &str = "(sensitive value hidden; pass --show-secrets)";

/// redis.conf directives whose argument is a password.
const SECRET_DIRECTIVES: [&str; 2] = ["requirepass", "masterauth"];

/// Masks Secret data and password directives in ConfigMap files, in place. Returns how many
/// values were masked.
pub fn mask_secrets(object: &mut Value) -> usize {
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let mut masked = 0;
    for field in ["data", "stringData"] {
        let Some(entries) = object.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for value in entries.values_mut() {
            let Some(text) = value.as_str() else { continue };
            let replacement = if kind == "Secret" {
                Some(MASK.to_string())
            } else {
                mask_config_text(text)
            };
            if let Some(replacement) = replacement {
                *value = Value::String(replacement);
                masked += 1;
            }
        }
    }
    masked
}

/// [`mask_secrets`] on a packed object. Only an object that holds a value to mask is unpacked
/// and packed again: most of a large bundle's objects hold none.
pub fn mask_packed_secrets(object: &mut PackedObject) -> usize {
    let node = object.node();
    let secret = object.kind() == "Secret";
    let texts = ["data", "stringData"]
        .into_iter()
        .filter_map(|field| node.get(field)?.as_object())
        .flat_map(|entries| entries.values().filter_map(|value| value.as_str()));
    let mut texts = texts.peekable();
    let masks = match secret {
        true => texts.peek().is_some(),
        false => texts.any(|text| mask_config_text(text).is_some()),
    };
    drop(texts);
    if !masks {
        return 0;
    }
    let mut value = object.to_value();
    let masked = mask_secrets(&mut value);
    *object = PackedObject::from_value(&value).expect("a packed object packs again");
    masked
}

/// Masks the argument of password directives in a redis.conf-style text; `None` when the text
/// holds none.
pub(crate) fn mask_config_text(text: &str) -> Option<String> {
    let mut changed = false;
    let masked: Vec<String> = text
        .split('\n')
        .map(|line| {
            let trimmed = line.trim_start();
            let directive = trimmed.split_whitespace().next().unwrap_or_default();
            if SECRET_DIRECTIVES.contains(&directive.to_ascii_lowercase().as_str())
                && trimmed.split_whitespace().nth(1).is_some()
            {
                changed = true;
                let indent = &line[..line.len() - trimmed.len()];
                format!("{indent}{directive} {MASK}")
            } else {
                line.to_string()
            }
        })
        .collect();
    changed.then(|| masked.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_passwords_in_config_maps_and_all_secret_data() {
        let mut config = json!({"kind": "ConfigMap", "data": {
            "redis.conf": "port 6379\nrequirepass hunter2\n  MasterAuth hunter2\n",
            "other": "nothing secret"}});
        assert_eq!(mask_secrets(&mut config), 1);
        let text = config["data"]["redis.conf"].as_str().unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.starts_with("port 6379\nrequirepass (sensitive"));
        assert_eq!(config["data"]["other"], "nothing secret");

        let mut secret = json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}});
        assert_eq!(mask_secrets(&mut secret), 1);
        assert_eq!(secret["data"]["password"], MASK);
    }
}
