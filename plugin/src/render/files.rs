//! The files the ConfigMap carries: redis.conf and update-node.sh.

use crate::spec::RedisCluster;

use super::CLIENT_PORT;

/// redis.conf for cluster mode; `spec.redisConfig` overrides a default in place or appends.
pub fn redis_conf(cluster: &RedisCluster) -> String {
    let defaults: [(&str, String); 9] = [
        ("port", CLIENT_PORT.to_string()),
        ("cluster-enabled", "yes".into()),
        ("cluster-config-file", "/data/nodes.conf".into()),
        ("cluster-node-timeout", "15000".into()),
        ("cluster-require-full-coverage", "no".into()),
        ("cluster-migration-barrier", "1".into()),
        ("appendonly", "yes".into()),
        ("protected-mode", "no".into()),
        ("dir", "/data".into()),
    ];
    let overrides = &cluster.spec.redis_config;
    let mut out = format!(
        "# Rendered by kubectl-redis for RedisCluster {}.\n",
        cluster.name()
    );
    for (key, default) in &defaults {
        let value = overrides
            .get(*key)
            .map(ToString::to_string)
            .unwrap_or_else(|| default.clone());
        out.push_str(&format!("{key} {value}\n"));
    }
    for (key, value) in overrides {
        if !defaults.iter().any(|(k, _)| k == key) {
            out.push_str(&format!("{key} {value}\n"));
        }
    }
    out
}

/// Runs before redis-server. A recreated pod gets a new IP, but nodes.conf on its volume still
/// holds the old one on the `myself` line; peers would keep gossiping to the dead address. The
/// script rewrites only the host part of that line's address field, keeping `:port@cport` (and
/// Redis 7's `,hostname`), then execs its arguments.
pub const UPDATE_NODE_SH: &str = r#"#!/bin/sh
# Rendered by kubectl-redis.
set -e
NODES_CONF="${NODES_CONF:-/data/nodes.conf}"
if [ -f "$NODES_CONF" ]; then
  if [ -z "$POD_IP" ]; then
    echo "update-node.sh: POD_IP is not set; cannot update $NODES_CONF" >&2
    exit 1
  fi
  awk -v ip="$POD_IP" '
    $3 ~ /(^|,)myself(,|$)/ {
      at = match($2, /:[0-9]+@[0-9]+/)
      if (at) $2 = ip substr($2, at)
    }
    { print }
  ' "$NODES_CONF" > "$NODES_CONF.tmp"
  mv "$NODES_CONF.tmp" "$NODES_CONF"
fi
exec "$@"
"#;
