//! `pods/exec` and `pods/portforward` over websockets, in the channel protocols of the
//! Kubernetes API (`v4.channel.k8s.io`, `v5.channel.k8s.io`): every binary frame starts with
//! a channel byte. exec: 0 stdin, 1 stdout, 2 stderr, 3 error (a Status JSON), 4 resize,
//! 255 close (v5 only). port-forward: port i uses channel 2i for data and 2i+1 for errors, and
//! the first frame on each carries the port number (u16, little endian).
//! kubectl's SPDY-over-websocket port-forward tunnel is handed to `spdy.rs`; plain SPDY upgrades
//! are not implemented.

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{header, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::api::{full, ApiState, Body};
use crate::resources::{ApiError, ApiResult};

fn offered_protocols(req: &Request<Incoming>) -> Vec<String> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .collect()
}

/// Validates the websocket upgrade and picks a subprotocol from `supported` (in our order).
fn upgrade_response(
    req: &Request<Incoming>,
    supported: &[&str],
) -> ApiResult<(Response<Body>, String)> {
    let is_ws = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return Err(ApiError::bad_request(
            "Upgrade request required: localcluster serves exec and port-forward over websockets only (no SPDY)",
        ));
    }
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?;
    let offered = offered_protocols(req);
    let proto = supported
        .iter()
        .find(|s| offered.iter().any(|o| o == *s))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "none of the requested websocket subprotocols {offered:?} is supported; supported: {supported:?}"
            ))
        })?;
    let resp = Response::builder()
        .status(101)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .header(header::SEC_WEBSOCKET_PROTOCOL, *proto)
        .body(full(Bytes::new()))
        .expect("valid response");
    Ok((resp, proto.to_string()))
}

/// Close with 1000: kubectl's stream readers treat a close without a code (1005) as an error.
fn normal_close() -> Message {
    use tokio_tungstenite::tungstenite::protocol::frame::{coding::CloseCode, CloseFrame};
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

fn q<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn flag(query: &[(String, String)], key: &str) -> bool {
    matches!(q(query, key), Some("true") | Some("1"))
}

pub async fn exec(
    state: &Arc<ApiState>,
    mut req: Request<Incoming>,
    ns: &str,
    name: &str,
    query: &[(String, String)],
) -> ApiResult<Response<Body>> {
    state
        .store
        .get(crate::resources::by_plural("pods"), ns, name)?;
    let mut argv: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if argv.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let sb = state.kubelet.sandbox(ns, name, q(query, "container"))?;
    // A pod here has no network namespace of its own, so its "localhost" is the host's.
    // redis-cli without -h would miss the pod's server; point it at the pod's address.
    if argv[0] == "redis-cli" || argv[0].ends_with("/redis-cli") {
        let has_host = argv
            .iter()
            .any(|a| a == "-h" || a == "-u" || a.starts_with("redis://"));
        if !has_host {
            argv.splice(1..1, ["-h".to_string(), sb.ip.clone()]);
        }
    }
    let (resp, proto) = upgrade_response(&req, &["v5.channel.k8s.io", "v4.channel.k8s.io"])?;
    let want_stdin = flag(query, "stdin");
    let want_stdout = q(query, "stdout").is_none_or(|v| v == "true" || v == "1");
    let want_stderr = flag(query, "stderr") && !flag(query, "tty");
    let mut cmd = state.kubelet.sandbox_command(&sb, &argv);
    cmd.stdin(if want_stdin {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    });
    cmd.stdout(std::process::Stdio::piped());
    cmd.stderr(std::process::Stdio::piped());
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (mut sink, mut incoming) = ws.split();
        let (tx, mut rx) = mpsc::channel::<Message>(64);
        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                let close = matches!(m, Message::Close(_));
                if sink.send(m).await.is_err() || close {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let status = |v: serde_json::Value| {
            Message::Binary(Bytes::from([&[3u8][..], v.to_string().as_bytes()].concat()))
        };
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = tx
                    .send(status(
                        json!({"metadata": {}, "status": "Failure", "reason": "InternalError",
                        "message": format!("starting the command in the pod: {e}")}),
                    ))
                    .await;
                let _ = tx.send(normal_close()).await;
                let _ = writer.await;
                return;
            }
        };
        let mut stdin = child.stdin.take();
        let pump = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                    ch: u8,
                    on: bool,
                    tx: mpsc::Sender<Message>| {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if on {
                                let mut m = Vec::with_capacity(n + 1);
                                m.push(ch);
                                m.extend_from_slice(&buf[..n]);
                                if tx.send(Message::Binary(m.into())).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }
            })
        };
        let out = pump(
            Box::new(child.stdout.take().expect("piped")),
            1,
            want_stdout,
            tx.clone(),
        );
        let err = pump(
            Box::new(child.stderr.take().expect("piped")),
            2,
            want_stderr,
            tx.clone(),
        );
        let reader = async {
            while let Some(Ok(m)) = incoming.next().await {
                match m {
                    Message::Binary(b) if !b.is_empty() => match b[0] {
                        0 => {
                            if let Some(s) = stdin.as_mut() {
                                if s.write_all(&b[1..]).await.is_err() {
                                    stdin = None;
                                }
                            }
                        }
                        // v5 close signal for stdin.
                        255 if b.get(1) == Some(&0) => stdin = None,
                        _ => {}
                    },
                    Message::Close(_) => return false,
                    _ => {}
                }
            }
            false
        };
        // The client may go away before the command ends: then the command is killed.
        let exit = tokio::select! {
            s = child.wait() => s.ok(),
            _ = reader => { let _ = child.start_kill(); child.wait().await.ok() }
        };
        let _ = out.await;
        let _ = err.await;
        let code = exit.and_then(|s| s.code()).unwrap_or(-1);
        let st = if code == 0 {
            json!({"metadata": {}, "status": "Success"})
        } else {
            json!({"metadata": {}, "status": "Failure",
                "message": format!("command terminated with non-zero exit code: error executing command {argv:?}, exit code {code}"),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
        };
        let _ = tx.send(status(st)).await;
        let _ = tx.send(normal_close()).await;
        drop(tx);
        let _ = writer.await;
        let _ = proto;
    });
    Ok(resp)
}

pub async fn portforward(
    state: &Arc<ApiState>,
    mut req: Request<Incoming>,
    ns: &str,
    name: &str,
    query: &[(String, String)],
) -> ApiResult<Response<Body>> {
    state
        .store
        .get(crate::resources::by_plural("pods"), ns, name)?;
    // kubectl tunnels SPDY through the websocket (and else falls back to plain SPDY), naming
    // the ports in SPDY stream headers; neither is implemented, so say so plainly.
    if offered_protocols(&req)
        .iter()
        .any(|p| p == "SPDY/3.1+portforward.k8s.io")
    {
        let ip = state.kubelet.pod_ip(ns, name)?;
        let (resp, _) = upgrade_response(&req, &["SPDY/3.1+portforward.k8s.io"])?;
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                crate::spdy::serve(ws, ip).await;
            }
        });
        return Ok(resp);
    }
    let spdy = offered_protocols(&req)
        .iter()
        .any(|p| p.starts_with("SPDY/"))
        || req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("SPDY/"));
    if spdy {
        return Err(ApiError::bad_request(
            "localcluster does not implement plain SPDY upgrades; port-forward works over websockets (v4.channel.k8s.io with ?ports=N, or SPDY/3.1+portforward.k8s.io tunnelling as kubectl 1.30+ does by default)",
        ));
    }
    let mut ports: Vec<u16> = Vec::new();
    for (k, v) in query {
        if k == "ports" {
            for p in v.split(',') {
                ports.push(
                    p.trim()
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid port {p:?}")))?,
                );
            }
        }
    }
    if ports.is_empty() {
        return Err(ApiError::bad_request(
            "query parameter \"port\" is required",
        ));
    }
    let ip = state.kubelet.pod_ip(ns, name)?;
    let (resp, _proto) = upgrade_response(
        &req,
        &[
            "v4.channel.k8s.io",
            "v5.channel.k8s.io",
            "portforward.k8s.io",
        ],
    )?;
    let pod = name.to_string();
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (mut sink, mut incoming) = ws.split();
        let (tx, mut rx) = mpsc::channel::<Message>(64);
        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                let close = matches!(m, Message::Close(_));
                if sink.send(m).await.is_err() || close {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let data_ch = (2 * i) as u8;
            let err_ch = data_ch + 1;
            let le = port.to_le_bytes();
            let _ = tx
                .send(Message::Binary(vec![data_ch, le[0], le[1]].into()))
                .await;
            let _ = tx
                .send(Message::Binary(vec![err_ch, le[0], le[1]].into()))
                .await;
            match tokio::net::TcpStream::connect((ip.as_str(), *port)).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let (mut r, w) = s.into_split();
                    writers.push(Some(w));
                    let tx = tx.clone();
                    readers.push(tokio::spawn(async move {
                        let mut buf = vec![0u8; 32 * 1024];
                        loop {
                            match r.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    let mut m = Vec::with_capacity(n + 1);
                                    m.push(data_ch);
                                    m.extend_from_slice(&buf[..n]);
                                    if tx.send(Message::Binary(m.into())).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                    }));
                }
                Err(e) => {
                    writers.push(None);
                    let msg = format!("error forwarding port {port} to pod {pod}: {e}");
                    let mut m = vec![err_ch];
                    m.extend_from_slice(msg.as_bytes());
                    let _ = tx.send(Message::Binary(m.into())).await;
                }
            }
        }
        let all_done = futures::future::join_all(readers);
        let from_client = async {
            while let Some(Ok(m)) = incoming.next().await {
                match m {
                    Message::Binary(b) if !b.is_empty() => {
                        let idx = (b[0] / 2) as usize;
                        if b[0] % 2 == 0 {
                            if let Some(Some(w)) = writers.get_mut(idx) {
                                if w.write_all(&b[1..]).await.is_err() {
                                    writers[idx] = None;
                                }
                            }
                        }
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        };
        tokio::select! {
            _ = all_done => {}
            _ = from_client => {}
        }
        let _ = tx.send(normal_close()).await;
        drop(tx);
        let _ = writer.await;
    });
    Ok(resp)
}
