//! `kubectl port-forward` (1.32): SPDY/3.1 tunnelled inside a websocket (subprotocol
//! `SPDY/3.1+portforward.k8s.io`; binary messages carry the raw SPDY byte stream). Only the
//! server side of the port-forward protocol is implemented: for every forwarded connection
//! kubectl opens an `error` and a `data` stream (headers `streamType`, `port`, `requestID`);
//! the data stream is relayed to the pod's port, and connection errors go to the error stream.
//! Flow control (WINDOW_UPDATE) and SETTINGS are ignored, as Go's spdystream does.

use std::collections::HashMap;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::spdy_dictionary::DICTIONARY;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const FLAG_FIN: u8 = 1;

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![0x80, 3, (kind >> 8) as u8, kind as u8, flags];
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

fn data(stream: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = (stream & 0x7fff_ffff).to_be_bytes().to_vec();
    f.push(flags);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

struct Headers {
    inflate: Decompress,
    deflate: Compress,
    deflate_primed: bool,
}

impl Headers {
    fn new() -> Self {
        Headers {
            inflate: Decompress::new(true),
            deflate: Compress::new(Compression::default(), true),
            deflate_primed: false,
        }
    }

    /// Decompresses one header block (the stream is continuous across frames).
    fn decode(&mut self, block: &[u8]) -> Result<HashMap<String, String>, String> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        let mut stalls = 0;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(4096);
            }
            let before = self.inflate.total_in();
            let res = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.inflate.total_in() - before) as usize;
            input = &input[used..];
            stalls = if used == 0 { stalls + 1 } else { 0 };
            if stalls > 8 {
                return Err("header block: decompressor made no progress".into());
            }
            match res {
                Ok(Status::Ok) | Ok(Status::BufError) if input.is_empty() => break,
                Ok(Status::StreamEnd) => break,
                Ok(_) => continue,
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| format!("header dictionary: {e}"))?;
                }
                Err(e) => return Err(format!("header block: {e}")),
            }
        }
        let mut h = HashMap::new();
        let rd = |b: &[u8], at: usize| -> Option<u32> {
            b.get(at..at + 4)
                .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
        };
        let n = rd(&out, 0).ok_or("short header block")? as usize;
        let mut at = 4;
        for _ in 0..n {
            let nl = rd(&out, at).ok_or("short header block")? as usize;
            let name = out.get(at + 4..at + 4 + nl).ok_or("short header block")?;
            at += 4 + nl;
            let vl = rd(&out, at).ok_or("short header block")? as usize;
            let value = out.get(at + 4..at + 4 + vl).ok_or("short header block")?;
            at += 4 + vl;
            h.insert(
                String::from_utf8_lossy(name).to_lowercase(),
                String::from_utf8_lossy(value).into_owned(),
            );
        }
        Ok(h)
    }

    /// An empty header block (zero pairs), compressed and sync-flushed.
    fn empty_block(&mut self) -> Vec<u8> {
        if !self.deflate_primed {
            let _ = self.deflate.set_dictionary(DICTIONARY);
            self.deflate_primed = true;
        }
        let mut out = Vec::with_capacity(64);
        let _ = self
            .deflate
            .compress_vec(&[0, 0, 0, 0], &mut out, FlushCompress::Sync);
        out
    }
}

/// Serves the SPDY session on an upgraded websocket until either side ends it.
pub async fn serve<S>(ws: WebSocketStream<TokioIo<S>>, pod_ip: String)
where
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sink, mut incoming) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.send(Message::Binary(frame.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut headers = Headers::new();
    let mut buf: Vec<u8> = Vec::new();
    // stream id -> pod connection (data streams)
    let mut conns: HashMap<u32, OwnedWriteHalf> = HashMap::new();
    // requestID -> error stream id
    let mut error_streams: HashMap<String, u32> = HashMap::new();
    'session: while let Some(Ok(msg)) = incoming.next().await {
        match msg {
            Message::Binary(b) => buf.extend_from_slice(&b),
            Message::Close(_) => break,
            _ => continue,
        }
        while buf.len() >= 8 {
            let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
            if buf.len() < 8 + len {
                break;
            }
            let frame: Vec<u8> = buf.drain(..8 + len).collect();
            let payload = &frame[8..];
            if frame[0] & 0x80 == 0 {
                // Data frame from kubectl: bytes for the pod.
                let id = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                let fin = frame[4] & FLAG_FIN != 0;
                if let Some(w) = conns.get_mut(&id) {
                    if !payload.is_empty() && w.write_all(payload).await.is_err() {
                        conns.remove(&id);
                    } else if fin {
                        let _ = w.shutdown().await;
                        conns.remove(&id);
                    }
                }
                continue;
            }
            let kind = u16::from_be_bytes([frame[2], frame[3]]);
            match kind {
                SYN_STREAM if payload.len() >= 10 => {
                    let id = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                        & 0x7fff_ffff;
                    let Ok(h) = headers.decode(&payload[10..]) else {
                        break 'session;
                    };
                    let mut reply = id.to_be_bytes().to_vec();
                    reply.extend(headers.empty_block());
                    let _ = tx.send(control(SYN_REPLY, 0, &reply)).await;
                    let request = h.get("requestid").cloned().unwrap_or_default();
                    let port: u16 = h.get("port").and_then(|p| p.parse().ok()).unwrap_or(0);
                    match h.get("streamtype").map(String::as_str) {
                        Some("error") => {
                            error_streams.insert(request, id);
                        }
                        Some("data") => {
                            let err_id = error_streams.get(&request).copied();
                            match tokio::net::TcpStream::connect((pod_ip.as_str(), port)).await {
                                Ok(s) => {
                                    let _ = s.set_nodelay(true);
                                    let (mut r, w) = s.into_split();
                                    conns.insert(id, w);
                                    let tx = tx.clone();
                                    tokio::spawn(async move {
                                        let mut chunk = vec![0u8; 32 * 1024];
                                        loop {
                                            match r.read(&mut chunk).await {
                                                Ok(0) | Err(_) => break,
                                                Ok(n) => {
                                                    if tx
                                                        .send(data(id, 0, &chunk[..n]))
                                                        .await
                                                        .is_err()
                                                    {
                                                        return;
                                                    }
                                                }
                                            }
                                        }
                                        let _ = tx.send(data(id, FLAG_FIN, &[])).await;
                                        if let Some(e) = err_id {
                                            let _ = tx.send(data(e, FLAG_FIN, &[])).await;
                                        }
                                    });
                                }
                                Err(e) => {
                                    let msg = format!(
                                        "error forwarding port {port} to pod: failed to connect to {pod_ip}:{port}: {e}"
                                    );
                                    if let Some(eid) = err_id {
                                        let _ = tx.send(data(eid, FLAG_FIN, msg.as_bytes())).await;
                                    }
                                    let _ = tx.send(data(id, FLAG_FIN, &[])).await;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                // Liveness pings are answered with the same frame.
                PING => {
                    let _ = tx.send(frame.clone()).await;
                }
                RST_STREAM if payload.len() >= 4 => {
                    let id = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                        & 0x7fff_ffff;
                    conns.remove(&id);
                }
                GOAWAY => break 'session,
                _ => {}
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_the_spdy3_one() {
        // 1423 bytes, Adler-32 0xe3c6a7c2 (the dictionary id in every SPDY/3 zlib header).
        assert_eq!(DICTIONARY.len(), 1423);
        let (mut a, mut b) = (1u32, 0u32);
        for &x in DICTIONARY {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn header_blocks_round_trip() {
        // A block compressed the way the client does it decodes back to its pairs.
        let mut client = Compress::new(Compression::best(), true);
        client.set_dictionary(DICTIONARY).unwrap();
        let mut raw = 2u32.to_be_bytes().to_vec();
        for (k, v) in [("streamtype", "data"), ("port", "6379")] {
            raw.extend((k.len() as u32).to_be_bytes());
            raw.extend(k.as_bytes());
            raw.extend((v.len() as u32).to_be_bytes());
            raw.extend(v.as_bytes());
        }
        let mut block = Vec::with_capacity(256);
        client
            .compress_vec(&raw, &mut block, FlushCompress::Sync)
            .unwrap();
        let mut server = Headers::new();
        let h = server.decode(&block).unwrap();
        assert_eq!(h["streamtype"], "data");
        assert_eq!(h["port"], "6379");
        // And our reply block decodes with the dictionary on the other side.
        let reply = server.empty_block();
        let mut d = Decompress::new(true);
        let mut out = Vec::with_capacity(64);
        if let Err(e) = d.decompress_vec(&reply, &mut out, FlushDecompress::Sync) {
            assert!(e.needs_dictionary().is_some());
            d.set_dictionary(DICTIONARY).unwrap();
            let used = d.total_in() as usize;
            d.decompress_vec(&reply[used..], &mut out, FlushDecompress::Sync)
                .unwrap();
        }
        assert_eq!(out, [0, 0, 0, 0]);
    }
}
