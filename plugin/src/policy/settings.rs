//! `--policy-settings FILE`: a YAML or JSON mapping from policy name to that policy's settings.
//!
//! ```yaml
//! storage:
//!   size: 2Gi
//! image:
//!   allowedImages: ["redis", "registry.example.com/*"]
//! ```
//!
//! Each policy receives its own entry (an empty object when it has none) and validates it when it
//! loads; a key that names no loaded policy is an error, because it is most likely a typo.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

use super::{Policy, PolicyError, PolicyErrorKind};

#[derive(Debug, Clone, Default)]
pub struct PolicySettings {
    by_policy: BTreeMap<String, Value>,
    /// The file they came from, for messages.
    source: Option<String>,
}

impl PolicySettings {
    pub fn load(path: &Path) -> anyhow::Result<PolicySettings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read policy settings {}", path.display()))?;
        let value: Value = serde_yaml::from_str(&text)
            .with_context(|| format!("policy settings {} are not YAML or JSON", path.display()))?;
        let mut s = PolicySettings::from_value(value)
            .with_context(|| format!("policy settings {}", path.display()))?;
        s.source = Some(path.display().to_string());
        Ok(s)
    }

    pub fn from_value(value: Value) -> anyhow::Result<PolicySettings> {
        let by_policy = match value {
            Value::Null => BTreeMap::new(),
            Value::Object(map) => {
                for (k, v) in &map {
                    if !v.is_object() && !v.is_null() {
                        bail!("the settings of policy `{k}` must be a mapping, not {v}");
                    }
                }
                map.into_iter().collect()
            }
            other => bail!("must be a mapping from policy name to settings, not {other}"),
        };
        Ok(PolicySettings {
            by_policy,
            source: None,
        })
    }

    /// The settings object for one policy.
    pub fn for_policy(&self, name: &str) -> Value {
        match self.by_policy.get(name) {
            Some(Value::Null) | None => Value::Object(Default::default()),
            Some(v) => v.clone(),
        }
    }

    /// Every key names a loaded policy.
    pub fn check_known(&self, policies: &[Policy]) -> Result<(), PolicyError> {
        for key in self.by_policy.keys() {
            if !policies.iter().any(|p| p.name() == key) {
                let known: Vec<&str> = policies.iter().map(Policy::name).collect();
                return Err(PolicyError {
                    module: self.source.clone().unwrap_or_else(|| "(settings)".into()),
                    kind: PolicyErrorKind::Settings,
                    message: format!("has settings for `{key}`, but no loaded policy has that name (policies: {})", known.join(", ")),
                });
            }
        }
        Ok(())
    }
}
