//! How commands reach a pod's Redis: direct TCP to the pod IP, a port-forward through the API
//! server, or `redis-cli` exec'd inside the pod.
//!
//! The first two produce byte streams and share one RESP client with a connection per pod; exec
//! runs one `redis-cli` per command (parity with the seed, slow, fine for formation).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{AttachParams, Portforwarder};
use kube::Api;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::resp::{Reply, RespConn, RespStream, MAX_BULK_LEN};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One command: its arguments as byte strings (keys may be binary).
pub type Cmd = Vec<Vec<u8>>;

/// Build a command from anything string-like: `cmd(["CLUSTER", "NODES"])`.
pub fn cmd<I, A>(args: I) -> Cmd
where
    I: IntoIterator<Item = A>,
    A: AsRef<[u8]>,
{
    args.into_iter().map(|a| a.as_ref().to_vec()).collect()
}

/// Where a pod's Redis is: the pod name (for port-forward and exec) and its current IP (for
/// direct connections and for the addresses nodes give each other in `CLUSTER MEET`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodAddr {
    pub name: String,
    pub ip: String,
    pub port: u16,
}

impl std::fmt::Display for PodAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}:{})", self.name, self.ip, self.port)
    }
}

/// Sends commands to pods. Error replies come back as [`Reply::Error`]; `Err` means the pod could
/// not be reached or the connection broke.
pub trait RedisTransport: Send + Sync {
    /// Run `cmds` in order on `pod` and return one reply per command.
    fn pipeline<'a>(
        &'a self,
        pod: &'a PodAddr,
        cmds: &'a [Cmd],
    ) -> BoxFuture<'a, Result<Vec<Reply>>>;

    /// A short name for messages: "direct", "port-forward", "exec".
    fn kind(&self) -> &'static str;
}

/// Call one command; an error reply becomes an `Err` naming the pod and the command.
pub async fn call(t: &dyn RedisTransport, pod: &PodAddr, c: Cmd) -> Result<Reply> {
    let cmds = [c];
    let mut replies = t.pipeline(pod, &cmds).await?;
    let reply = replies
        .pop()
        .ok_or_else(|| anyhow!("{}: no reply", pod.name))?;
    match reply {
        Reply::Error(e) => Err(anyhow!("{}: {} failed: {e}", pod.name, show_cmd(&cmds[0]))),
        r => Ok(r),
    }
}

/// The first words of a command, for error messages (never the whole ADDSLOTS list).
pub(super) fn show_cmd(c: &Cmd) -> String {
    let mut s: Vec<String> = c
        .iter()
        .take(4)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if c.len() > 4 {
        s.push(format!("…(+{} args)", c.len() - 4));
    }
    s.join(" ")
}

/// Opens a byte stream to a pod's Redis port.
pub trait Connector: Send + Sync {
    fn connect<'a>(&'a self, pod: &'a PodAddr) -> BoxFuture<'a, Result<Box<dyn RespStream>>>;
    fn kind(&self) -> &'static str;
}

/// A RESP transport over a [`Connector`], one cached connection per pod address. Every
/// exchange has a deadline; a connection that timed out or broke is dropped and reopened next time.
pub struct StreamTransport<C> {
    connector: C,
    timeout: Duration,
    conns: Mutex<HashMap<PodAddr, Arc<tokio::sync::Mutex<Option<RespConn>>>>>,
}

impl<C: Connector> StreamTransport<C> {
    pub fn new(connector: C, timeout: Duration) -> Self {
        StreamTransport {
            connector,
            timeout,
            conns: Mutex::new(HashMap::new()),
        }
    }

    async fn run(&self, pod: &PodAddr, cmds: &[Cmd]) -> Result<Vec<Reply>> {
        let slot = {
            let mut map = self.conns.lock().expect("connection map poisoned");
            map.entry(pod.clone()).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if guard.is_none() {
            let stream = tokio::time::timeout(self.timeout, self.connector.connect(pod))
                .await
                .map_err(|_| {
                    anyhow!(
                        "{pod}: {} connect timed out after {:?}",
                        self.connector.kind(),
                        self.timeout
                    )
                })?
                .with_context(|| format!("{pod}: {} connect failed", self.connector.kind()))?;
            *guard = Some(RespConn::new(stream));
        }
        let conn = guard.as_mut().expect("connection just set");
        // MIGRATE of a large batch may take longer than a plain command; scale the deadline.
        let deadline = self.timeout + Duration::from_millis(cmds.len() as u64);
        match tokio::time::timeout(deadline, conn.pipeline(cmds)).await {
            Ok(Ok(replies)) => Ok(replies),
            Ok(Err(e)) => {
                *guard = None;
                Err(anyhow!("{pod}: {e}"))
            }
            Err(_) => {
                *guard = None;
                Err(anyhow!(
                    "{pod}: no reply to {} within {:?}",
                    show_cmd(&cmds[0]),
                    deadline
                ))
            }
        }
    }
}

impl<C: Connector> RedisTransport for StreamTransport<C> {
    fn pipeline<'a>(
        &'a self,
        pod: &'a PodAddr,
        cmds: &'a [Cmd],
    ) -> BoxFuture<'a, Result<Vec<Reply>>> {
        Box::pin(self.run(pod, cmds))
    }
    fn kind(&self) -> &'static str {
        self.connector.kind()
    }
}

/// TCP straight to `ip:port` (in-cluster, or the local test cluster).
pub struct DirectConnector;

impl Connector for DirectConnector {
    fn connect<'a>(&'a self, pod: &'a PodAddr) -> BoxFuture<'a, Result<Box<dyn RespStream>>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect((pod.ip.as_str(), pod.port)).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as Box<dyn RespStream>)
        })
    }
    fn kind(&self) -> &'static str {
        "direct"
    }
}

/// The direct transport: `--via direct`.
pub fn direct(timeout: Duration) -> StreamTransport<DirectConnector> {
    StreamTransport::new(DirectConnector, timeout)
}

/// A port-forward through the API server (`kubectl port-forward`'s websocket protocol).
pub struct PortForwardConnector {
    pub pods: Api<Pod>,
}

/// Keeps the forwarder alive as long as its stream.
struct ForwardedStream<S> {
    stream: S,
    _forwarder: Portforwarder,
}

impl<S: AsyncRead + Unpin> AsyncRead for ForwardedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ForwardedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The API server refused to open a stream into a pod: a missing permission, which no wait
/// cures (a pod still starting is a different error).
#[derive(Debug, thiserror::Error)]
#[error(
    "RBAC forbids `{subresource}` on pod {pod} (403 Forbidden): your user needs `create` and \
     `get` on `{subresource}` in the pod's namespace (`kubectl redis render --rbac` prints a Role \
     with them), or pick another --via"
)]
pub(crate) struct StreamForbidden {
    /// `pods/portforward` or `pods/exec`.
    pub subresource: &'static str,
    pub pod: String,
}

/// A typed [`StreamForbidden`] for the 403 of a stream's upgrade, any other error as it is.
fn forbidden_as_typed(error: kube::Error, subresource: &'static str, pod: &str) -> anyhow::Error {
    use kube::client::UpgradeConnectionError::ProtocolSwitch;
    match &error {
        kube::Error::UpgradeConnection(ProtocolSwitch(code)) if code.as_u16() == 403 => {
            StreamForbidden {
                subresource,
                pod: pod.to_string(),
            }
            .into()
        }
        _ => error.into(),
    }
}

impl Connector for PortForwardConnector {
    fn connect<'a>(&'a self, pod: &'a PodAddr) -> BoxFuture<'a, Result<Box<dyn RespStream>>> {
        Box::pin(async move {
            let mut forwarder = self
                .pods
                .portforward(&pod.name, &[pod.port])
                .await
                .map_err(|e| forbidden_as_typed(e, "pods/portforward", &pod.name))?;
            let stream = forwarder.take_stream(pod.port).ok_or_else(|| {
                anyhow!(
                    "port-forward to {} gave no stream for port {}",
                    pod.name,
                    pod.port
                )
            })?;
            Ok(Box::new(ForwardedStream {
                stream,
                _forwarder: forwarder,
            }) as Box<dyn RespStream>)
        })
    }
    fn kind(&self) -> &'static str {
        "port-forward"
    }
}

/// The port-forward transport (default from a laptop).
pub fn port_forward(pods: Api<Pod>, timeout: Duration) -> StreamTransport<PortForwardConnector> {
    StreamTransport::new(PortForwardConnector { pods }, timeout)
}

/// `redis-cli` exec'd in the pod's container, one process per command (`--via exec`).
///
/// redis-cli prints replies in raw form when its stdout is not a terminal: strings as they are,
/// integers as digits, array elements one per line, errors as the error text (on stdout before
/// Redis 6, on stderr after). Binary keys with newlines cannot round-trip through this; use the
/// other transports for slot migration of such keys.
pub struct ExecTransport {
    pub pods: Api<Pod>,
    pub container: Option<String>,
    pub timeout: Duration,
}

const ERROR_PREFIXES: &[&str] = &[
    "ERR",
    "WRONGTYPE",
    "MOVED",
    "ASK",
    "CLUSTERDOWN",
    "BUSYKEY",
    "NOAUTH",
    "LOADING",
    "READONLY",
    "MISCONF",
    "NOSCRIPT",
    "BUSY",
    "EXECABORT",
    "TRYAGAIN",
    "CROSSSLOT",
    "IOERR",
    "NOREPLICAS",
    "MASTERDOWN",
    "NOPERM",
    "(error)",
];

/// Turn redis-cli's raw output back into a reply.
pub fn parse_cli_output(args: &Cmd, stdout: &str, stderr: &str) -> Reply {
    let out = stdout.strip_suffix('\n').unwrap_or(stdout);
    let err = stderr.trim();
    let first = out.lines().next().unwrap_or("");
    let is_err = |s: &str| {
        ERROR_PREFIXES
            .iter()
            .any(|p| s.starts_with(&format!("{p} ")) || s == *p)
    };
    if is_err(err) || (!err.is_empty() && out.is_empty()) {
        return Reply::Error(err.trim_start_matches("(error) ").to_string());
    }
    if is_err(first) && out.lines().count() == 1 {
        return Reply::Error(first.trim_start_matches("(error) ").to_string());
    }
    let name = args
        .iter()
        .take(2)
        .map(|a| String::from_utf8_lossy(a).to_uppercase())
        .collect::<Vec<_>>()
        .join(" ");
    if name == "CLUSTER GETKEYSINSLOT" || name.starts_with("KEYS") {
        return Reply::Array(
            out.lines()
                .filter(|l| !l.is_empty())
                .map(|l| Reply::Bulk(l.as_bytes().to_vec()))
                .collect(),
        );
    }
    if let Ok(i) = out.parse::<i64>() {
        return Reply::Int(i);
    }
    if out == "OK" || out == "PONG" || out == "NOKEY" {
        return Reply::Status(out.to_string());
    }
    Reply::Bulk(out.as_bytes().to_vec())
}

impl ExecTransport {
    async fn exec_one(&self, pod: &PodAddr, c: &Cmd) -> Result<Reply> {
        let mut argv: Vec<String> = vec!["redis-cli".into(), "-p".into(), pod.port.to_string()];
        argv.extend(c.iter().map(|a| String::from_utf8_lossy(a).into_owned()));
        let mut ap = AttachParams::default()
            .stdin(false)
            .stdout(true)
            .stderr(true);
        if let Some(container) = &self.container {
            ap = ap.container(container.clone());
        }
        let mut proc = self
            .pods
            .exec(&pod.name, argv, &ap)
            .await
            .map_err(|e| forbidden_as_typed(e, "pods/exec", &pod.name))
            .with_context(|| format!("{}: exec redis-cli failed", pod.name))?;
        let mut stdout = proc
            .stdout()
            .ok_or_else(|| anyhow!("{}: exec gave no stdout", pod.name))?;
        let mut stderr = proc
            .stderr()
            .ok_or_else(|| anyhow!("{}: exec gave no stderr", pod.name))?;
        let (mut o, mut e) = (Vec::new(), Vec::new());
        // The same bound as a RESP reply: a pod must not make us buffer without end.
        let cap = MAX_BULK_LEN as u64 + 1;
        let (mut stdout, mut stderr) = ((&mut stdout).take(cap), (&mut stderr).take(cap));
        let (ro, re) = tokio::join!(stdout.read_to_end(&mut o), stderr.read_to_end(&mut e));
        ro?;
        re?;
        if o.len().max(e.len()) > MAX_BULK_LEN {
            bail!(
                "{}: redis-cli printed more than {} MiB for {}",
                pod.name,
                MAX_BULK_LEN >> 20,
                show_cmd(c)
            );
        }
        proc.join()
            .await
            .with_context(|| format!("{}: exec redis-cli failed", pod.name))?;
        Ok(parse_cli_output(
            c,
            &String::from_utf8_lossy(&o),
            &String::from_utf8_lossy(&e),
        ))
    }
}

impl RedisTransport for ExecTransport {
    fn pipeline<'a>(
        &'a self,
        pod: &'a PodAddr,
        cmds: &'a [Cmd],
    ) -> BoxFuture<'a, Result<Vec<Reply>>> {
        Box::pin(async move {
            let mut replies = Vec::with_capacity(cmds.len());
            for c in cmds {
                let r = tokio::time::timeout(self.timeout, self.exec_one(pod, c))
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "{pod}: exec of {} timed out after {:?}",
                            show_cmd(c),
                            self.timeout
                        )
                    })??;
                replies.push(r);
            }
            Ok(replies)
        })
    }
    fn kind(&self) -> &'static str {
        "exec"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_output_maps_to_replies() {
        let nodes = cmd(["CLUSTER", "NODES"]);
        assert_eq!(
            parse_cli_output(&cmd(["DBSIZE"]), "42\n", ""),
            Reply::Int(42)
        );
        assert_eq!(
            parse_cli_output(&cmd(["CLUSTER", "MEET", "1.2.3.4", "6379"]), "OK\n", ""),
            Reply::Status("OK".into())
        );
        assert!(parse_cli_output(
            &nodes,
            "ERR This instance has cluster support disabled\n",
            ""
        )
        .is_error());
        assert!(parse_cli_output(&nodes, "", "(error) ERR unknown command\n").is_error());
        let text = "abc 1.2.3.4:6379@16379 myself,master - 0 0 1 connected 0-5460\n";
        assert_eq!(
            parse_cli_output(&nodes, text, ""),
            Reply::Bulk(text.trim_end().as_bytes().to_vec())
        );
        assert_eq!(
            parse_cli_output(&cmd(["CLUSTER", "GETKEYSINSLOT", "1", "10"]), "a\nb\n", ""),
            Reply::Array(vec![Reply::Bulk(b"a".to_vec()), Reply::Bulk(b"b".to_vec())])
        );
    }
}
