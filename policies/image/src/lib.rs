//! Rule 4: images are pinned (a tag other than `latest`, or a digest), optionally from an allowed
//! list, and a Redis Cluster runs Redis 5 or later (`redis-cli --cluster` and the 5.0 commands).

use kr_policy_sdk::k8s::{self, image_digest, image_repository, image_tag};
use kr_policy_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    /// Repository patterns (`*` matches any run of characters), e.g. `redis`, `registry.local/*`.
    /// Empty: any repository.
    allowed_images: Vec<String>,
    /// Lowest Redis major version for cluster mode.
    min_redis_major: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allowed_images: Vec::new(),
            min_redis_major: 5,
        }
    }
}

impl PolicySettings for Settings {
    fn validate(&self) -> Result<(), String> {
        if let Some(p) = self.allowed_images.iter().find(|p| p.trim().is_empty()) {
            return Err(format!("allowedImages has an empty pattern {p:?}"));
        }
        if self.min_redis_major < 3 {
            return Err("minRedisMajor must be at least 3 (Redis Cluster appeared in 3.0)".into());
        }
        Ok(())
    }
}

const PINNED: Rule = Rule::deny(
    "image-pinned",
    "Images are pinned: a tag other than latest, or a digest",
);
const ALLOWED: Rule = Rule::deny(
    "image-allowed",
    "Images come from the repositories allowed by the settings",
);
const VERSION: Rule = Rule::deny("image-version", "A Redis Cluster runs Redis 5 or later");

kr_policy!(
    name: "image",
    rules: [PINNED, ALLOWED, VERSION],
    kinds: [k8s::WORKLOAD_KINDS, k8s::CLUSTER_MODE_KINDS],
    settings: Settings,
    evaluate: evaluate,
);

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| {
                    text.is_char_boundary(head.len() + i) && glob(tail, &text[head.len() + i..])
                })
        }
    }
}

/// `redis` and `docker.io/library/redis` are the same repository.
fn normalized(repo: &str) -> String {
    let first = repo.split('/').next().unwrap_or("");
    let has_registry =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_registry, repo.contains('/')) {
        (true, _) => repo.to_string(),
        (false, true) => format!("docker.io/{repo}"),
        (false, false) => format!("docker.io/library/{repo}"),
    }
}

fn evaluate(input: &Input, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let cluster = input.cluster_mode();
    for w in input.workloads() {
        for c in w.containers() {
            let image = c.image();
            let path = c.pointer("/image");
            if image.is_empty() {
                out.push(PINNED.finding(
                    w.object,
                    c.pointer(""),
                    format!("container `{}` has no image", c.name()),
                ));
                continue;
            }
            match (image_tag(image), image_digest(image)) {
                (_, Some(_)) => {}
                (None, None) => out.push(PINNED.finding(
                    w.object,
                    path.clone(),
                    format!("image `{image}` has no tag, so it means `latest`; pin a version"),
                )),
                (Some("latest"), None) => out.push(PINNED.finding(
                    w.object,
                    path.clone(),
                    format!("image `{image}` uses `latest`; pin a version"),
                )),
                _ => {}
            }
            let repo = image_repository(image);
            if !s.allowed_images.is_empty()
                && !s
                    .allowed_images
                    .iter()
                    .any(|p| glob(p, repo) || glob(p, &normalized(repo)))
            {
                out.push(ALLOWED.finding(
                    w.object,
                    path.clone(),
                    format!(
                        "image `{image}` is not from an allowed repository ({})",
                        s.allowed_images.join(", ")
                    ),
                ));
            }
            if cluster
                && c.runs_redis()
                && image_repository(image)
                    .rsplit('/')
                    .next()
                    .is_some_and(|r| r.starts_with("redis"))
            {
                let major = image_tag(image)
                    .and_then(|t| t.split(['.', '-']).next())
                    .and_then(|m| m.parse::<u32>().ok());
                match major {
                    Some(m) if m < s.min_redis_major => out.push(VERSION.finding(
                        w.object,
                        path.clone(),
                        format!("image `{image}` is Redis {m}; a Redis Cluster needs Redis {} or later", s.min_redis_major),
                    )),
                    Some(_) => {}
                    None => out.push(
                        VERSION
                            .finding(w.object, path.clone(), format!("cannot tell the Redis version of `{image}` from its tag; a Redis Cluster needs Redis {} or later", s.min_redis_major))
                            .with_severity(Severity::Warn),
                    ),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("redis", "redis"));
        assert!(glob("registry.local/*", "registry.local/team/redis"));
        assert!(glob("*redis*", "docker.io/library/redis"));
        assert!(!glob("redis", "redis-stack"));
        assert_eq!(normalized("redis"), "docker.io/library/redis");
        assert_eq!(normalized("bitnami/redis"), "docker.io/bitnami/redis");
        assert_eq!(normalized("localhost:5000/redis"), "localhost:5000/redis");
    }
}
