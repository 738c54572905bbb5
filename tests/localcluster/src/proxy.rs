//! A TLS proxy in front of the real kube-apiserver, where tests inject latency and errors and
//! count requests. Clients reach the cluster through it (the kubeconfig points here); the
//! control plane and the node agent talk to the API server directly, so faults never reach them.
//!
//! Identity is preserved: a client certificate issued by this cluster is forwarded as that same
//! certificate (the proxy holds the key it issued), and a request with a bearer token is
//! forwarded with the token and no certificate — so RBAC sees the caller, not the proxy.
//! Upgrades (exec, attach, port-forward) are relayed byte for byte.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use crate::faults::{delay, Faults, RequestRecord};

type Body = BoxBody<Bytes, hyper::Error>;
type Upstream = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// The upstream API server and the identities the proxy may present to it.
pub(crate) struct Proxy {
    upstream: String,
    roots: Arc<rustls::RootCertStore>,
    /// DER of a client certificate → a client that presents it upstream.
    identities: Mutex<HashMap<Vec<u8>, Upstream>>,
    anonymous: Upstream,
    pub faults: Arc<Faults>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn upstream_client(
    roots: &Arc<rustls::RootCertStore>,
    cert: Option<(&str, &str)>,
) -> Result<Upstream> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.clone());
    let config = match cert {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .context("parsing a client certificate")?;
            let key =
                PrivateKeyDer::from_pem_slice(key.as_bytes()).context("parsing a client key")?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    // HTTP/1.1 only (the connector sets ALPN): upgrades need it end to end.
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

impl Proxy {
    pub(crate) fn new(upstream: String, ca_pem: &str, faults: Arc<Faults>) -> Result<Proxy> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.context("parsing the cluster CA")?)?;
        }
        let roots = Arc::new(roots);
        Ok(Proxy {
            anonymous: upstream_client(&roots, None)?,
            upstream,
            roots,
            identities: Mutex::new(HashMap::new()),
            faults,
        })
    }

    /// Lets clients that present `cert` through, as themselves.
    pub(crate) fn add_identity(&self, cert: &str, key: &str) -> Result<()> {
        let der = CertificateDer::from_pem_slice(cert.as_bytes())
            .context("parsing a client certificate")?
            .to_vec();
        let client = upstream_client(&self.roots, Some((cert, key)))?;
        self.identities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(der, client);
        Ok(())
    }

    /// The TLS configuration clients see: the API server's own serving certificate, and an
    /// optional client certificate checked against the cluster CA.
    pub(crate) fn server_config(
        &self,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<Arc<rustls::ServerConfig>> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            self.roots.clone(),
            provider(),
        )
        .allow_unauthenticated()
        .build()?;
        let chain =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Accepts connections until the task is aborted.
    pub(crate) async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
    ) {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let this = self.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let peer = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec());
                let service = hyper::service::service_fn(move |req| {
                    let this = this.clone();
                    let peer = peer.clone();
                    async move { Ok::<_, Infallible>(this.handle(req, peer.as_deref()).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await;
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>, peer: Option<&[u8]>) -> Response<Body> {
        let mut rec = classify(&req);
        delay(self.faults.latency()).await;
        let resp = match self.faults.check(&rec) {
            Some(code) => injected(code),
            None => match self.forward(req, peer).await {
                Ok(r) => r,
                Err(e) => {
                    status_response(502, "InternalError", &format!("localcluster proxy: {e:#}"))
                }
            },
        };
        rec.status = resp.status().as_u16();
        self.faults.record(rec);
        resp
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        peer: Option<&[u8]>,
    ) -> Result<Response<Body>> {
        let client = match peer {
            Some(der) => self
                .identities
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(der)
                .cloned()
                .ok_or_else(|| anyhow!("this client certificate was not issued by LocalCluster (use LocalCluster::kubeconfig_for)"))?,
            None => self.anonymous.clone(),
        };
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri: hyper::Uri = format!("{}{path}", self.upstream).parse()?;
        let upgrade = req.headers().contains_key(hyper::header::UPGRADE);
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let mut out = Request::builder().method(req.method().clone()).uri(uri);
        for (k, v) in req.headers() {
            if k != hyper::header::HOST {
                out = out.header(k, v);
            }
        }
        let mut resp = client.request(out.body(req.into_body().boxed())?).await?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_upgrade) = client_upgrade {
                let upstream_upgrade = hyper::upgrade::on(&mut resp);
                tokio::spawn(async move {
                    let (Ok(a), Ok(b)) = (client_upgrade.await, upstream_upgrade.await) else {
                        return;
                    };
                    let _ =
                        tokio::io::copy_bidirectional(&mut TokioIo::new(a), &mut TokioIo::new(b))
                            .await;
                });
            }
        }
        Ok(resp.map(|b| b.boxed()))
    }
}

/// What a request is, as Kubernetes names it (verb, resource, namespace, name, dry run).
pub(crate) fn classify<B>(req: &Request<B>) -> RequestRecord {
    let path = req.uri().path().to_string();
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let q = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let mut rec = RequestRecord {
        method: req.method().to_string(),
        path: path.clone(),
        verb: "get".into(),
        resource: None,
        namespace: None,
        name: None,
        dry_run: q("dryRun") == Some("All"),
        status: 0,
    };
    let rest = if let Some(r) = path.strip_prefix("/api/v1/") {
        Some(r)
    } else if let Some(r) = path.strip_prefix("/apis/") {
        // group/version/...
        r.splitn(3, '/').nth(2)
    } else {
        None
    };
    let Some(rest) = rest else {
        return rec;
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let segs: &[&str] = if segs.first() == Some(&"namespaces") && segs.len() >= 3 {
        rec.namespace = Some(segs[1].to_string());
        &segs[2..]
    } else {
        &segs
    };
    let Some(resource) = segs.first() else {
        return rec;
    };
    rec.resource = Some(resource.to_string());
    rec.name = segs.get(1).map(|s| s.to_string());
    let watch = matches!(q("watch"), Some("true") | Some("1"));
    rec.verb = match (
        req.method().as_str(),
        rec.name.is_some(),
        segs.get(2).copied(),
    ) {
        (_, true, Some("exec")) => "exec".into(),
        (_, true, Some("attach")) => "attach".into(),
        (_, true, Some("portforward")) => "portforward".into(),
        ("GET", true, Some("log")) => "log".into(),
        ("GET", true, _) => "get".into(),
        ("GET", false, _) if watch => "watch".into(),
        ("GET", false, _) => "list".into(),
        ("POST", _, _) => "create".into(),
        ("PUT", true, _) => "update".into(),
        ("PATCH", true, _) => "patch".into(),
        ("DELETE", true, _) => "delete".into(),
        ("DELETE", false, _) => "deletecollection".into(),
        (m, _, _) => m.to_lowercase(),
    };
    rec
}

fn injected(code: u16) -> Response<Body> {
    let reason = match code {
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    status_response(
        code,
        reason,
        &format!("{}: injected by localcluster", reason.to_lowercase()),
    )
}

/// A `Status` body in the API server's own shape.
fn status_response(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
    .to_string();
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if code == 429 {
        resp.headers_mut()
            .insert("Retry-After", hyper::header::HeaderValue::from_static("1"));
    }
    resp
}
