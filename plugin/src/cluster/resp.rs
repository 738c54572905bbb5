//! A minimal RESP2 client over any byte stream.
//!
//! Port-forward through the API server hands us an `AsyncRead + AsyncWrite` stream, not a socket,
//! so the client is written against the stream traits; the direct transport simply uses a
//! `TcpStream`. Only what cluster management needs: commands as argument lists, pipelining,
//! the five RESP2 reply types.

use std::fmt;
use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

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
pub fn encode<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn proto(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Read one reply. Nested arrays are read iteratively-recursively via boxing.
pub async fn read_reply<R: AsyncRead + Unpin + Send>(r: &mut BufReader<R>) -> io::Result<Reply> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by server",
        ));
    }
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(proto(format!(
            "malformed RESP line {:?}",
            String::from_utf8_lossy(&line)
        )));
    }
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    match line[0] {
        b'+' => Ok(Reply::Status(body)),
        b'-' => Ok(Reply::Error(body)),
        b':' => body
            .parse()
            .map(Reply::Int)
            .map_err(|_| proto(format!("bad integer {body:?}"))),
        b'$' => {
            let len: i64 = body
                .parse()
                .map_err(|_| proto(format!("bad bulk length {body:?}")))?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            let mut buf = vec![0u8; len as usize + 2];
            r.read_exact(&mut buf).await?;
            buf.truncate(len as usize);
            Ok(Reply::Bulk(buf))
        }
        b'*' => {
            let len: i64 = body
                .parse()
                .map_err(|_| proto(format!("bad array length {body:?}")))?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            let mut items = Vec::with_capacity(len as usize);
            for _ in 0..len {
                items.push(Box::pin(read_reply(r)).await?);
            }
            Ok(Reply::Array(items))
        }
        other => Err(proto(format!("unknown RESP type byte {:?}", other as char))),
    }
}

/// A byte stream a RESP connection can run over.
pub trait RespStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> RespStream for T {}

/// One connection: write a batch of commands, then read as many replies (pipelining).
pub struct RespConn {
    stream: BufReader<Box<dyn RespStream>>,
}

impl RespConn {
    pub fn new(stream: Box<dyn RespStream>) -> Self {
        RespConn {
            stream: BufReader::with_capacity(64 * 1024, stream),
        }
    }

    pub async fn pipeline<A: AsRef<[u8]>>(&mut self, cmds: &[Vec<A>]) -> io::Result<Vec<Reply>> {
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

    #[test]
    fn encodes_binary_safe() {
        let mut out = Vec::new();
        encode(&["SET", "k\r\n", ""], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n");
    }
}
