//! A minimal RESP2 client over any byte stream.
//!
//! Port-forward through the API server hands us an `AsyncRead + AsyncWrite` stream, not a socket,
//! so the client is written against the stream traits; the direct transport simply uses a
//! `TcpStream`. Only what cluster management needs: commands as argument lists, pipelining,
//! the five RESP2 reply types.

use std::fmt;
use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The error replies the cluster step acts on, told apart here, once, by the words Redis uses for
/// them (src/cluster.c, the same from 5.0 to 7.x); code branches on this, not on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedisError {
    /// `ERR This instance has cluster support disabled`: `cluster-enabled no`.
    ClusterSupportDisabled,
    /// `ERR Unknown node <id>` (FORGET, REPLICATE): gossip has not brought the id yet, or the
    /// node is already forgotten.
    UnknownNode,
    /// `ERR I can only replicate a master, not a replica.`: the node it was told to follow is
    /// still a replica in this node's view.
    ReplicateAReplica,
    /// `ERR The user can assign a config epoch only when the node does not know any other
    /// node.`: a MEET reached it first.
    KnowsOtherNodes,
    /// `ERR Please use SETSLOT only with masters.`: the node has become a replica already.
    SetslotOnReplica,
    /// `BUSYKEY Target key name already exists.` (MIGRATE without REPLACE).
    BusyKey,
    /// `NOAUTH Authentication required.`: the server has a password and was sent none.
    AuthRequired,
    /// `WRONGPASS ...` (6.0+), `ERR invalid password` (5.0), `NOPERM ...` (ACL): the password
    /// or the user's permissions are wrong.
    AuthRefused,
    /// `ERR unknown command ...`: a renamed or disabled command, or an older Redis.
    UnknownCommand,
    /// Any other error.
    Other,
}

impl RedisError {
    pub(crate) fn of(message: &str) -> RedisError {
        const KNOWN: [(&str, RedisError); 5] = [
            (
                "cluster support disabled",
                RedisError::ClusterSupportDisabled,
            ),
            ("Unknown node", RedisError::UnknownNode),
            ("only replicate a master", RedisError::ReplicateAReplica),
            ("does not know any other node", RedisError::KnowsOtherNodes),
            ("SETSLOT only with masters", RedisError::SetslotOnReplica),
        ];
        let prefixes = [
            ("BUSYKEY", RedisError::BusyKey),
            ("NOAUTH", RedisError::AuthRequired),
            ("WRONGPASS", RedisError::AuthRefused),
            ("NOPERM", RedisError::AuthRefused),
            ("ERR invalid password", RedisError::AuthRefused),
            ("ERR unknown command", RedisError::UnknownCommand),
        ];
        if let Some((_, kind)) = prefixes.iter().find(|(p, _)| message.starts_with(p)) {
            return *kind;
        }
        KNOWN
            .iter()
            .find(|(words, _)| message.contains(words))
            .map_or(RedisError::Other, |(_, kind)| *kind)
    }
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
}

impl Reply {
    /// The reply as text: bulk strings, status lines and integers.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            Reply::Bulk(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
            Reply::Status(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Elements of an array reply as raw byte strings (e.g. GETKEYSINSLOT).
    pub fn bulk_items(&self) -> Option<Vec<Vec<u8>>> {
        match self {
            Reply::Array(items) => items
                .iter()
                .map(|r| match r {
                    Reply::Bulk(b) => Some(b.clone()),
                    Reply::Status(s) => Some(s.clone().into_bytes()),
                    _ => None,
                })
                .collect(),
            Reply::Nil => Some(Vec::new()),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Nil => write!(f, "(nil)"),
            Reply::Status(s) => write!(f, "{s}"),
            Reply::Error(e) => write!(f, "(error) {e}"),
            Reply::Int(i) => write!(f, "(integer) {i}"),
            Reply::Bulk(b) => write!(f, "{}", String::from_utf8_lossy(b)),
            Reply::Array(a) => {
                for (i, r) in a.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{}) {r}", i + 1)?;
                }
                Ok(())
            }
        }
    }
}

/// Encode one command as a RESP array of bulk strings.
pub(super) fn encode<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Redis's own `proto-max-bulk-len` default: no bulk string a Redis server sends is longer, so
/// a longer one is a broken or hostile peer.
pub(super) const MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// The bytes of one whole reply, framing included: one maximal bulk string and its header.
pub(super) const MAX_REPLY_LEN: usize = MAX_BULK_LEN + MAX_LINE_LEN;
/// Elements in one reply, nested ones included. The largest replies asked for are
/// `GETKEYSINSLOT` batches of 200 keys, so this is far beyond anything legitimate.
pub(super) const MAX_ELEMENTS: usize = 1024 * 1024;
/// A status, error, integer or length line. Redis's are a few dozen bytes.
pub(super) const MAX_LINE_LEN: usize = 64 * 1024;
/// Array nesting; cluster management replies nest at most twice.
pub(super) const MAX_DEPTH: usize = 8;

/// Why a reply could not be read. The transport prefixes the pod, so every error names the node.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("connection closed by the server")]
    Closed,
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    /// Bytes that are not RESP2.
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// A length beyond the limits above (or beyond what is left of them in this reply): refused
    /// before anything is allocated for it.
    #[error("reply too large: a {what} of {len} would pass the limit of {limit} for one reply")]
    TooLarge {
        what: &'static str,
        len: u64,
        limit: usize,
    },
}

/// What is left of one reply's allowance of bytes and elements.
struct Budget {
    bytes: usize,
    elements: usize,
}

/// Read one reply, within [`MAX_BULK_LEN`], [`MAX_REPLY_LEN`], [`MAX_ELEMENTS`],
/// [`MAX_LINE_LEN`] and [`MAX_DEPTH`]. Memory grows with the bytes the peer actually sends, never with the lengths it
/// announces.
pub async fn read_reply<R: AsyncRead + Unpin + Send>(
    r: &mut BufReader<R>,
) -> Result<Reply, RespError> {
    let mut budget = Budget {
        bytes: MAX_REPLY_LEN,
        elements: MAX_ELEMENTS,
    };
    read_value(r, &mut budget, 0).await
}

async fn read_value<R: AsyncRead + Unpin + Send>(
    r: &mut BufReader<R>,
    budget: &mut Budget,
    depth: usize,
) -> Result<Reply, RespError> {
    let line = read_line(r, budget).await?;
    let Some((&kind, body)) = line.split_first() else {
        return Err(RespError::Malformed("empty line".into()));
    };
    let body = String::from_utf8_lossy(body).into_owned();
    match kind {
        b'+' => Ok(Reply::Status(body)),
        b'-' => Ok(Reply::Error(body)),
        b':' => body
            .parse()
            .map(Reply::Int)
            .map_err(|_| RespError::Malformed(format!("bad integer {body:?}"))),
        b'$' => {
            let Some(len) = length(&body, "bulk string", budget.bytes, MAX_BULK_LEN)? else {
                return Ok(Reply::Nil);
            };
            budget.bytes -= len;
            let mut buf = Vec::new();
            let wanted = len as u64 + 2;
            let got = (&mut *r).take(wanted).read_to_end(&mut buf).await?;
            if (got as u64) < wanted {
                return Err(RespError::Closed);
            }
            if !buf.ends_with(b"\r\n") {
                return Err(RespError::Malformed(format!(
                    "bulk string of {len} bytes is not followed by CRLF"
                )));
            }
            buf.truncate(len);
            Ok(Reply::Bulk(buf))
        }
        b'*' => {
            let Some(len) = length(&body, "array", budget.elements, MAX_ELEMENTS)? else {
                return Ok(Reply::Nil);
            };
            if depth >= MAX_DEPTH {
                return Err(RespError::Malformed(format!(
                    "arrays nested deeper than {MAX_DEPTH}"
                )));
            }
            budget.elements -= len;
            let mut items = Vec::new();
            for _ in 0..len {
                items.push(Box::pin(read_value(r, budget, depth + 1)).await?);
            }
            Ok(Reply::Array(items))
        }
        other => Err(RespError::Malformed(format!(
            "unknown RESP type byte {:?}",
            other as char
        ))),
    }
}

/// One CRLF-terminated line without its CRLF, at most [`MAX_LINE_LEN`] bytes; its bytes count
/// against the reply's allowance too.
async fn read_line<R: AsyncRead + Unpin + Send>(
    r: &mut BufReader<R>,
    budget: &mut Budget,
) -> Result<Vec<u8>, RespError> {
    let mut line = Vec::new();
    let limit = MAX_LINE_LEN as u64 + 2;
    let n = (&mut *r).take(limit).read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(RespError::Closed);
    }
    budget.bytes = budget.bytes.checked_sub(n).ok_or(RespError::TooLarge {
        what: "reply",
        len: n as u64,
        limit: MAX_REPLY_LEN,
    })?;
    if !line.ends_with(b"\n") {
        return Err(if n as u64 == limit {
            RespError::TooLarge {
                what: "line",
                len: n as u64,
                limit: MAX_LINE_LEN,
            }
        } else {
            RespError::Closed
        });
    }
    if !line.ends_with(b"\r\n") {
        return Err(RespError::Malformed(format!(
            "line {:?} does not end with CRLF",
            String::from_utf8_lossy(&line)
        )));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

/// The length of a bulk string or array: `None` for RESP2's null (-1), an error for any other
/// negative, for more than `limit`, or for more than what is left of the reply's allowance.
fn length(
    body: &str,
    what: &'static str,
    left: usize,
    limit: usize,
) -> Result<Option<usize>, RespError> {
    let len: i64 = body
        .parse()
        .map_err(|_| RespError::Malformed(format!("bad {what} length {body:?}")))?;
    match len {
        -1 => Ok(None),
        len if len < 0 => Err(RespError::Malformed(format!("{what} length {len}"))),
        len => match usize::try_from(len) {
            Ok(len) if len <= left.min(limit) => Ok(Some(len)),
            _ => Err(RespError::TooLarge {
                what,
                len: len as u64,
                limit,
            }),
        },
    }
}

/// A byte stream a RESP connection can run over.
pub trait RespStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> RespStream for T {}

/// One connection: write a batch of commands, then read as many replies (pipelining).
pub(super) struct RespConn {
    stream: BufReader<Box<dyn RespStream>>,
}

impl RespConn {
    pub(super) fn new(stream: Box<dyn RespStream>) -> Self {
        RespConn {
            stream: BufReader::with_capacity(64 * 1024, stream),
        }
    }

    pub(super) async fn pipeline<A: AsRef<[u8]>>(
        &mut self,
        cmds: &[Vec<A>],
    ) -> Result<Vec<Reply>, RespError> {
        let mut out = Vec::new();
        for c in cmds {
            encode(c, &mut out);
        }
        let w = self.stream.get_mut();
        w.write_all(&out).await?;
        w.flush().await?;
        let mut replies = Vec::with_capacity(cmds.len());
        for _ in cmds {
            replies.push(read_reply(&mut self.stream).await?);
        }
        Ok(replies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_errors_the_cluster_step_acts_on_apart() {
        for (reply, kind) in [
            (
                "ERR This instance has cluster support disabled",
                RedisError::ClusterSupportDisabled,
            ),
            (
                "ERR Unknown node 07c37dfeb235213a872192d90877d0cd55635b91",
                RedisError::UnknownNode,
            ),
            (
                "ERR I can only replicate a master, not a replica.",
                RedisError::ReplicateAReplica,
            ),
            (
                "ERR The user can assign a config epoch only when the node does not know any \
                 other node.",
                RedisError::KnowsOtherNodes,
            ),
            (
                "ERR Please use SETSLOT only with masters.",
                RedisError::SetslotOnReplica,
            ),
            (
                "BUSYKEY Target key name already exists.",
                RedisError::BusyKey,
            ),
            ("NOAUTH Authentication required.", RedisError::AuthRequired),
            (
                "WRONGPASS invalid username-password pair or user is disabled.",
                RedisError::AuthRefused,
            ),
            ("ERR invalid password", RedisError::AuthRefused),
            (
                "NOPERM this user has no permissions to run the 'cluster|nodes' command",
                RedisError::AuthRefused,
            ),
            (
                "ERR unknown command `CLUSTER`, with args beginning with: `NODES`, ",
                RedisError::UnknownCommand,
            ),
            (
                "ERR unknown command 'CLUSTER', with args beginning with: 'NODES' ",
                RedisError::UnknownCommand,
            ),
            ("ERR Slot 5 is already busy", RedisError::Other),
        ] {
            assert_eq!(RedisError::of(reply), kind, "{reply}");
        }
    }

    #[tokio::test]
    async fn parses_every_reply_type() {
        let data: &[u8] = b"+OK\r\n-ERR bad\r\n:42\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n$0\r\n\r\n";
        let mut r = BufReader::new(data);
        assert_eq!(
            read_reply(&mut r).await.unwrap(),
            Reply::Status("OK".into())
        );
        assert_eq!(
            read_reply(&mut r).await.unwrap(),
            Reply::Error("ERR bad".into())
        );
        assert_eq!(read_reply(&mut r).await.unwrap(), Reply::Int(42));
        assert_eq!(
            read_reply(&mut r).await.unwrap(),
            Reply::Bulk(b"foo".to_vec())
        );
        assert_eq!(read_reply(&mut r).await.unwrap(), Reply::Nil);
        assert_eq!(
            read_reply(&mut r).await.unwrap(),
            Reply::Array(vec![
                Reply::Bulk(b"a".to_vec()),
                Reply::Array(vec![Reply::Int(1)])
            ])
        );
        assert_eq!(read_reply(&mut r).await.unwrap(), Reply::Bulk(Vec::new()));
        assert!(
            read_reply(&mut r).await.is_err(),
            "EOF must be an error, not a hang"
        );
    }

    async fn read(data: &[u8]) -> Result<Reply, RespError> {
        read_reply(&mut BufReader::new(data)).await
    }

    fn too_large(result: Result<Reply, RespError>, expected: &str) {
        match result {
            Err(RespError::TooLarge { what, .. }) => assert_eq!(what, expected),
            other => panic!("expected a too-large {expected}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn hostile_lengths_are_refused_before_allocating() {
        // A peer announcing more than Redis itself would send gets an error at once; nothing
        // is allocated for the announced length (an allocation of 2^63 bytes would abort).
        too_large(read(b"$9223372036854775807\r\n").await, "bulk string");
        too_large(read(b"$536870913\r\nabc").await, "bulk string");
        too_large(read(b"*9223372036854775807\r\n").await, "array");
        too_large(read(b"*1048577\r\n:1\r\n").await, "array");
        // The allowance is for the whole reply, nested arrays included.
        too_large(read(b"*2\r\n*1048576\r\n").await, "array");
        // Within the caps, an announced length is only a promise: a short stream is a closed
        // connection, read with memory for what arrived.
        assert!(matches!(
            read(b"$536870912\r\nabc").await,
            Err(RespError::Closed)
        ));
        assert!(matches!(
            read(b"*1048576\r\n:1\r\n").await,
            Err(RespError::Closed)
        ));
        // A line with no end.
        too_large(read(&vec![b'+'; MAX_LINE_LEN + 10]).await, "line");
        assert!(matches!(read(b"+OK").await, Err(RespError::Closed)));
    }

    #[tokio::test]
    async fn malformed_replies_are_typed_errors() {
        for bad in [
            &b"$-2\r\n"[..],
            b"*-7\r\n",
            b"$abc\r\n",
            b":12x\r\n",
            b"?what\r\n",
            b"\r\n",
            b"+OK\n",
            b"$3\r\nfooXY",
        ] {
            let result = read(bad).await;
            assert!(
                matches!(result, Err(RespError::Malformed(_))),
                "{:?}: {result:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
        let result = read(deep.as_bytes()).await;
        assert!(matches!(result, Err(RespError::Malformed(_))), "{result:?}");
        let nested = "*1\r\n".repeat(MAX_DEPTH) + ":1\r\n";
        assert!(
            read(nested.as_bytes()).await.is_ok(),
            "{MAX_DEPTH} levels are fine"
        );
    }

    #[test]
    fn lengths_count_against_what_is_left() {
        assert_eq!(length("-1", "array", 0, 0).unwrap(), None);
        assert_eq!(length("10", "array", 10, 10).unwrap(), Some(10));
        assert!(matches!(
            length("11", "bulk string", 10, MAX_BULK_LEN),
            Err(RespError::TooLarge { len: 11, .. })
        ));
        assert!(matches!(
            length("11", "bulk string", MAX_REPLY_LEN, 10),
            Err(RespError::TooLarge { len: 11, .. })
        ));
    }

    #[test]
    fn encodes_binary_safe() {
        let mut out = Vec::new();
        encode(&["SET", "k\r\n", ""], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n");
    }
}
