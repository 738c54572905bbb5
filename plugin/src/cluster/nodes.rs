//! Parsing what Redis reports about the cluster (`CLUSTER NODES`, `CLUSTER INFO`, `INFO`), slot
//! arithmetic and the key → slot hash.

use std::collections::BTreeMap;

use serde::Serialize;

pub(super) const SLOTS: u16 = 16384;

/// One line of `CLUSTER NODES`, as one node sees another (or itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLine {
    pub id: String,
    /// The address this node has for that node; empty when unknown (`:0`, noaddr).
    pub ip: String,
    pub port: u16,
    pub flags: Vec<String>,
    /// The master's id when this is a replica.
    pub master_id: Option<String>,
    pub config_epoch: u64,
    pub link_connected: bool,
    /// Owned slots as inclusive ranges (migrating/importing markers are left out).
    pub slots: Vec<(u16, u16)>,
    /// Open slots (only on the `myself` line): slot → node id it is migrating to.
    pub migrating: Vec<(u16, String)>,
    /// Open slots (only on the `myself` line): slot → node id it is importing from.
    pub importing: Vec<(u16, String)>,
}

impl NodeLine {
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    pub fn is_myself(&self) -> bool {
        self.has("myself")
    }
    pub fn is_master(&self) -> bool {
        self.has("master")
    }
    pub fn is_replica(&self) -> bool {
        self.has("slave") || self.has("replica")
    }
    pub fn in_handshake(&self) -> bool {
        self.has("handshake")
    }
    pub fn failing(&self) -> bool {
        self.has("fail") || self.has("fail?")
    }
    pub fn no_addr(&self) -> bool {
        self.has("noaddr") || self.ip.is_empty()
    }
    pub fn slot_count(&self) -> usize {
        self.slots.iter().map(|(a, b)| (*b - *a) as usize + 1).sum()
    }
}

/// Length of a Redis Cluster node id: 40 hex characters (`CLUSTER_NAMELEN`).
pub(super) const NODE_ID_LEN: usize = 40;

/// A `CLUSTER NODES` reply that is not what Redis writes. The observer records it as the pod's
/// error, so it is always reported with the node that sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodesError {
    #[error("malformed CLUSTER NODES line {line:?}: {reason}")]
    Line { line: String, reason: String },
    #[error("CLUSTER NODES has no single `myself` line")]
    NoSingleMyself,
}

/// Whether `id` is a node id as Redis makes them; anything else came from a broken peer.
pub(super) fn is_node_id(id: &str) -> bool {
    id.len() == NODE_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parse `CLUSTER NODES` (Redis 5 `ip:port@cport`, Redis 7 `ip:port@cport,hostname`).
pub fn parse_nodes(text: &str) -> Result<Vec<NodeLine>, NodesError> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let bad = |reason: String| NodesError::Line {
            // A peer's line can be anything; quote a bounded, char-safe prefix of it.
            line: line.chars().take(200).collect(),
            reason,
        };
        let id_or_bad = |what: &str, id: &str| {
            if is_node_id(id) {
                Ok(id.to_string())
            } else {
                Err(bad(format!(
                    "{what} {:?} is not a {NODE_ID_LEN}-character hex node id",
                    id.chars().take(60).collect::<String>()
                )))
            }
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            return Err(bad(format!("{} fields, at least 8 expected", f.len())));
        }
        let id = id_or_bad("node id", f[0])?;
        let master_id = match f[3] {
            "-" => None,
            master => Some(id_or_bad("master id", master)?),
        };
        let addr = f[1].split(',').next().unwrap_or("");
        let hostport = addr.split('@').next().unwrap_or("");
        let (ip, port) = match hostport.rsplit_once(':') {
            Some((ip, port)) => (ip.to_string(), port.parse().unwrap_or(0)),
            None => (String::new(), 0),
        };
        let slot = |s: &str| s.parse::<u16>().ok().filter(|s| *s < SLOTS);
        let mut slots = Vec::new();
        let (mut migrating, mut importing) = (Vec::new(), Vec::new());
        for s in &f[8..] {
            if let Some(open) = s.strip_prefix('[').and_then(|o| o.strip_suffix(']')) {
                let (list, (number, peer)) = match (open.split_once("->-"), open.split_once("-<-"))
                {
                    (Some(to), _) => (&mut migrating, to),
                    (None, Some(from)) => (&mut importing, from),
                    (None, None) => return Err(bad(format!("bad open slot {s:?}"))),
                };
                let number = slot(number).ok_or_else(|| bad(format!("bad open slot {s:?}")))?;
                list.push((number, id_or_bad("open slot peer", peer)?));
                continue;
            }
            let r = match s.split_once('-') {
                Some((a, b)) => slot(a).zip(slot(b)),
                None => slot(s).map(|a| (a, a)),
            };
            match r {
                Some((a, b)) if a <= b => slots.push((a, b)),
                _ => return Err(bad(format!("bad slot range {s:?}"))),
            }
        }
        out.push(NodeLine {
            id,
            ip,
            port,
            flags: f[2].split(',').map(str::to_string).collect(),
            master_id,
            config_epoch: f[6].parse().unwrap_or(0),
            link_connected: f[7] == "connected",
            slots,
            migrating,
            importing,
        });
    }
    if out.iter().filter(|n| n.is_myself()).count() != 1 {
        return Err(NodesError::NoSingleMyself);
    }
    Ok(out)
}

/// `key:value` lines of `CLUSTER INFO` and `INFO`, sections and comments skipped.
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The redis-cli split: `16384 / masters` per master, rounded the same way, so a cluster formed by
/// the plugin and one formed by `redis-cli --cluster create` have identical slot maps.
pub fn even_ranges(masters: usize) -> Vec<(u16, u16)> {
    let total = SLOTS as f64;
    let per = total / masters as f64;
    let mut first: i64 = 0;
    let mut cursor = 0.0f64;
    let mut out = Vec::with_capacity(masters);
    for i in 0..masters {
        let mut last = (cursor + per - 1.0).round() as i64;
        if last > SLOTS as i64 - 1 || i == masters - 1 {
            last = SLOTS as i64 - 1;
        }
        if last < first {
            last = first;
        }
        out.push((first as u16, last as u16));
        first = last + 1;
        cursor += per;
    }
    out
}

/// Compress a sorted list of slots into inclusive ranges.
pub(super) fn to_ranges(slots: impl IntoIterator<Item = u16>) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for s in slots {
        match out.last_mut() {
            Some((_, b)) if *b + 1 == s => *b = s,
            _ => out.push((s, s)),
        }
    }
    out
}

pub(super) fn ranges_to_string(r: &[(u16, u16)]) -> String {
    if r.is_empty() {
        return "-".into();
    }
    r.iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// CRC16/XMODEM as Redis Cluster uses it.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of a key, honouring `{hash tags}`.
pub fn key_slot(key: &[u8]) -> u16 {
    let mut k = key;
    if let Some(open) = key.iter().position(|&c| c == b'{') {
        if let Some(close) = key[open + 1..].iter().position(|&c| c == b'}') {
            if close > 0 {
                k = &key[open + 1..open + 1 + close];
            }
        }
    }
    crc16(k) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_split_matches_redis_cli() {
        assert_eq!(
            even_ranges(3),
            vec![(0, 5460), (5461, 10922), (10923, 16383)]
        );
        assert_eq!(
            even_ranges(4),
            vec![(0, 4095), (4096, 8191), (8192, 12287), (12288, 16383)]
        );
        assert_eq!(even_ranges(1), vec![(0, 16383)]);
        for m in 1..=20 {
            let r = even_ranges(m);
            assert_eq!(r[0].0, 0);
            assert_eq!(r[m - 1].1, 16383);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
    }

    #[test]
    fn key_slots_match_redis() {
        // Values from CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        // CRC16/XMODEM check value.
        assert_eq!(key_slot(b"123456789"), 0x31C3);
    }

    #[test]
    fn parses_redis5_and_redis7_lines() {
        let text = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002,host2 master - 0 1426238316232 2 connected 5461-10922
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 7000 [5000->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
6ec23923021cf3ffec47632106199cb7f496ce01 :0@0 master,fail,noaddr - 1426238316232 1426238315000 5 disconnected
";
        let n = parse_nodes(text).unwrap();
        assert_eq!(n.len(), 4);
        assert_eq!(
            n[0].master_id.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert!(n[0].is_replica());
        assert_eq!(n[1].ip, "127.0.0.1");
        assert_eq!(n[1].port, 30002);
        assert_eq!(n[2].slots, vec![(0, 5460), (7000, 7000)]);
        assert_eq!(
            n[2].migrating,
            vec![(5000, "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1".to_string())]
        );
        assert_eq!(n[2].slot_count(), 5462);
        assert!(n[2].is_myself());
        assert!(n[3].no_addr() && n[3].failing() && !n[3].link_connected);
        assert!(parse_nodes("garbage").is_err());
    }

    const ME: &str = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca";

    fn reason(line: &str) -> String {
        match parse_nodes(line) {
            Err(NodesError::Line { reason, .. }) => reason,
            other => panic!("{line:?} must be a malformed line, got {other:?}"),
        }
    }

    #[test]
    fn node_ids_are_checked_not_sliced() {
        let mine = format!("{ME} 10.0.0.1:6379@16379 myself,master - 0 0 1 connected 0-16383");
        assert_eq!(parse_nodes(&mine).unwrap()[0].id, ME);
        // Short, long, multi-byte and non-hex ids from a broken peer: errors, never panics.
        for id in [
            "",
            "abc",
            "é",
            &"é".repeat(40),
            &format!("{ME}0"),
            &"g".repeat(40),
        ] {
            let line = format!("{id} 10.0.0.1:6379@16379 myself,master - 0 0 1 connected");
            let line = line.trim_start();
            assert!(parse_nodes(line).is_err(), "{line:?}");
        }
        let bad_master = format!("{ME} 10.0.0.1:6379@16379 myself,slave ééé 0 0 1 connected");
        assert!(reason(&bad_master).contains("master id"));
        let bad_peer = format!("{ME} 10.0.0.1:6379@16379 myself,master - 0 0 1 connected [5->-é]");
        assert!(reason(&bad_peer).contains("open slot peer"));
        assert_eq!(
            parse_nodes(&format!("{ME} :0@0 master - 0 0 1 connected")),
            Err(NodesError::NoSingleMyself)
        );
    }

    #[test]
    fn slots_outside_the_16384_are_errors() {
        for slots in [
            "16384",
            "0-16384",
            "5-3",
            "[16384->-{ME}]",
            "[1-<-]",
            "[1]",
            "x",
        ] {
            let slots = slots.replace("{ME}", ME);
            let line = format!("{ME} 10.0.0.1:6379@16379 myself,master - 0 0 1 connected {slots}");
            let reason = reason(&line);
            assert!(reason.contains("slot"), "{slots}: {reason}");
        }
    }

    #[test]
    fn a_huge_line_is_quoted_short() {
        let line = format!("{} x", "é".repeat(100_000));
        let message = parse_nodes(&line).unwrap_err().to_string();
        assert!(message.len() < 1_000, "{}", message.len());
    }

    #[test]
    fn ranges_roundtrip() {
        assert_eq!(
            to_ranges([1, 2, 3, 7, 9, 10]),
            vec![(1, 3), (7, 7), (9, 10)]
        );
        assert_eq!(ranges_to_string(&[(1, 3), (7, 7)]), "1-3,7");
    }
}
