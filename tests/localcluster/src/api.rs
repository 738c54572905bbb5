//! The HTTP face of the emulated API server: discovery, OpenAPI stubs, CRUD, watch,
//! patch dispatch, fault injection and the exec/port-forward upgrades.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::faults::{delay, Faults, RequestRecord};
use crate::kubelet::Kubelet;
use crate::resources::{self, ApiError, ResourceInfo, RESOURCES};
use crate::store::{PatchKind, Store, WatchEvent, WriteOpts};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

pub struct ApiState {
    pub store: Arc<Store>,
    pub faults: Arc<Faults>,
    pub kubelet: Arc<Kubelet>,
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(v.to_string()))
        .expect("static response parts are valid")
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// Accepts connections until the listener fails; each connection is served on its own task.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

/// Query string pairs, percent-decoded.
pub fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) if hex.len() == 2 => {
                        out.push(v);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn q<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A parsed resource URL.
#[derive(Debug)]
pub struct Route {
    pub res: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

fn parse_route(path: &str) -> Option<Result<Route, ApiError>> {
    let (group, version, rest) = if let Some(r) = path.strip_prefix("/api/v1/") {
        ("", "v1", r)
    } else if let Some(r) = path.strip_prefix("/apis/") {
        let mut it = r.splitn(3, '/');
        let g = it.next()?;
        let v = it.next()?;
        let rest = it.next()?;
        let g: &'static str = RESOURCES.iter().find(|x| x.group == g).map(|x| x.group)?;
        (g, if v == "v1" { "v1" } else { return None }, rest)
    } else {
        return None;
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (ns, segs) = if segs.first() == Some(&"namespaces") && segs.len() >= 3 {
        (Some(segs[1].to_string()), &segs[2..])
    } else {
        (None, &segs[..])
    };
    let plural = segs.first()?;
    let Some(res) = resources::find(group, version, plural) else {
        return Some(Err(ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({plural})"),
        )));
    };
    if segs.len() > 3 {
        return Some(Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )));
    }
    Some(Ok(Route {
        res,
        namespace: ns,
        name: segs.get(1).map(|s| s.to_string()),
        sub: segs.get(2).map(|s| s.to_string()),
    }))
}

fn verb_of(method: &Method, route: &Route, watch: bool) -> String {
    match (method.as_str(), &route.name, route.sub.as_deref()) {
        (_, Some(_), Some("exec")) => "exec".into(),
        (_, Some(_), Some("portforward")) => "portforward".into(),
        ("GET", Some(_), Some("log")) => "log".into(),
        ("GET", Some(_), _) => "get".into(),
        ("GET", None, _) if watch => "watch".into(),
        ("GET", None, _) => "list".into(),
        ("POST", None, _) => "create".into(),
        ("PUT", Some(_), _) => "update".into(),
        ("PATCH", Some(_), _) => "patch".into(),
        ("DELETE", Some(_), _) => "delete".into(),
        ("DELETE", None, _) => "deletecollection".into(),
        (m, _, _) => m.to_lowercase(),
    }
}

async fn handle(state: Arc<ApiState>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let method = req.method().clone();
    let route = parse_route(&path);
    let watch = matches!(q(&query, "watch"), Some("true") | Some("1"));
    let mut rec = RequestRecord {
        method: method.to_string(),
        path: path.clone(),
        verb: "get".into(),
        resource: None,
        namespace: None,
        name: None,
        dry_run: q(&query, "dryRun") == Some("All"),
        status: 0,
    };
    if let Some(Ok(r)) = &route {
        rec.verb = verb_of(&method, r, watch);
        rec.resource = Some(r.res.plural.to_string());
        rec.namespace = r.namespace.clone();
        rec.name = r.name.clone();
    }
    delay(state.faults.latency()).await;
    let resp = if let Some(code) = state.faults.check(&rec) {
        let (reason, msg) = match code {
            403 => (
                "Forbidden",
                "forbidden: injected by localcluster".to_string(),
            ),
            404 => (
                "NotFound",
                "not found: injected by localcluster".to_string(),
            ),
            409 => ("Conflict", "conflict: injected by localcluster".to_string()),
            429 => (
                "TooManyRequests",
                "too many requests: injected by localcluster".to_string(),
            ),
            503 => (
                "ServiceUnavailable",
                "service unavailable: injected by localcluster".to_string(),
            ),
            _ => (
                "InternalError",
                "Internal error occurred: injected by localcluster".to_string(),
            ),
        };
        error_response(&ApiError::new(code, reason, msg))
    } else {
        match route {
            None => discovery(&path, &req),
            Some(Err(e)) => error_response(&e),
            Some(Ok(route)) => {
                let verb = rec.verb.clone();
                match dispatch(&state, req, route, &verb, &query).await {
                    Ok(r) => r,
                    Err(e) => error_response(&e),
                }
            }
        }
    };
    rec.status = resp.status().as_u16();
    state.faults.record(rec);
    resp
}

async fn read_json(req: Request<Incoming>) -> Result<(Value, String), ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    if body.is_empty() {
        return Ok((Value::Null, ct));
    }
    // JSON is YAML, so one parser serves apply-patch+yaml and every JSON content type.
    let v: Value = if ct.contains("yaml") {
        serde_yaml::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    Ok((v, ct))
}

fn manager_for(req: &Request<Incoming>, query: &[(String, String)]) -> String {
    if let Some(m) = q(query, "fieldManager") {
        return m.to_string();
    }
    // The real server derives the manager from the user agent's product name.
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

async fn dispatch(
    state: &Arc<ApiState>,
    req: Request<Incoming>,
    route: Route,
    verb: &str,
    query: &[(String, String)],
) -> Result<Response<Body>, ApiError> {
    let store = &state.store;
    let res = route.res;
    if res.namespaced && route.namespace.is_none() && !matches!(verb, "list" | "watch") {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    if !res.namespaced && route.namespace.is_some() {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let ns = route.namespace.clone().unwrap_or_default();
    let name = route.name.clone().unwrap_or_default();
    let sub = route.sub.clone().unwrap_or_default();
    let sub_served = sub.is_empty()
        || (sub == "status" && res.has_status)
        || res.subresources.contains(&sub.as_str());
    if !sub_served {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let mut opts = WriteOpts {
        manager: manager_for(&req, query),
        dry_run: q(query, "dryRun") == Some("All"),
        subresource: if sub == "status" {
            sub.clone()
        } else {
            String::new()
        },
    };
    if let Some(d) = q(query, "dryRun") {
        if d != "All" {
            return Err(ApiError::bad_request(format!(
                "Invalid value: \"{d}\": supported values: \"All\""
            )));
        }
    }
    if sub == "scale" {
        return scale(state, req, res, &ns, &name, verb, &opts).await;
    }
    match verb {
        "exec" => crate::streams::exec(state, req, &ns, &name, query).await,
        "portforward" => crate::streams::portforward(state, req, &ns, &name, query).await,
        "log" => {
            let container = q(query, "container").map(str::to_string);
            let text = state.kubelet.logs(&ns, &name, container.as_deref())?;
            let text = match q(query, "tailLines").and_then(|t| t.parse::<usize>().ok()) {
                Some(n) => {
                    let lines: Vec<&str> = text.lines().collect();
                    let start = lines.len().saturating_sub(n);
                    lines[start..].iter().map(|l| format!("{l}\n")).collect()
                }
                None => text,
            };
            Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(full(text))
                .expect("valid response"))
        }
        "get" => {
            let obj = store.get(res, &ns, &name)?;
            if wants_table(&req) && sub.is_empty() {
                let list = json!({"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}, "items": [obj]});
                return Ok(json_response(200, &crate::table::table(res, &list)));
            }
            Ok(json_response(200, &obj))
        }
        "list" => {
            let (items, rv) = store.list(res, route.namespace.as_deref());
            let items = filter_items(items, query)?;
            let list = json!({
                "kind": format!("{}List", res.kind),
                "apiVersion": res.api_version(),
                "metadata": {"resourceVersion": rv.to_string()},
                "items": items,
            });
            if wants_table(&req) {
                return Ok(json_response(200, &crate::table::table(res, &list)));
            }
            Ok(json_response(200, &list))
        }
        "watch" => watch(state, res, route.namespace.clone(), query),
        "create" => {
            let (body, _) = read_json(req).await?;
            let obj = store.create(res, &ns, body, &opts)?;
            Ok(json_response(201, &obj))
        }
        "update" => {
            let (body, _) = read_json(req).await?;
            Ok(json_response(
                200,
                &store.update(res, &ns, &name, body, &opts)?,
            ))
        }
        "patch" => {
            let (body, ct) = read_json(req).await?;
            let kind = if ct.starts_with("application/apply-patch") {
                let force = q(query, "force") == Some("true");
                if q(query, "fieldManager").is_none_or(str::is_empty) {
                    return Err(ApiError::bad_request(
                        "PATCH, application/apply-patch+yaml requires fieldManager to be set",
                    ));
                }
                PatchKind::Apply { force }
            } else if ct.starts_with("application/json-patch+json") {
                PatchKind::Json
            } else if ct.starts_with("application/merge-patch+json") {
                PatchKind::Merge
            } else if ct.starts_with("application/strategic-merge-patch+json") {
                PatchKind::Strategic
            } else {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct})"),
                ));
            };
            if let PatchKind::Apply { .. } = kind {
                opts.manager = q(query, "fieldManager").unwrap_or_default().to_string();
            }
            let obj = store.patch(res, &ns, &name, kind, &body, &opts)?;
            Ok(json_response(200, &obj))
        }
        "delete" => {
            let (body, _) = read_json(req).await?;
            let pre = body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            let dry = opts.dry_run
                || body
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x == "All"));
            let obj = store.delete(res, &ns, &name, pre.as_deref(), dry)?;
            Ok(json_response(200, &obj))
        }
        "deletecollection" => {
            let (items, _) = store.list(res, route.namespace.as_deref());
            let items = filter_items(items, query)?;
            let mut deleted = Vec::new();
            for it in items {
                let n = it["metadata"]["name"].as_str().unwrap_or_default();
                let ins = it["metadata"]["namespace"].as_str().unwrap_or_default();
                if let Ok(o) = store.delete(res, ins, n, None, opts.dry_run) {
                    deleted.push(o);
                }
            }
            Ok(json_response(
                200,
                &json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": {}, "items": deleted}),
            ))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{verb} is not supported on {}", res.plural),
        )),
    }
}

/// `statefulsets/scale` (autoscaling/v1 Scale), as `kubectl scale` uses it.
async fn scale(
    state: &Arc<ApiState>,
    req: Request<Incoming>,
    res: &'static ResourceInfo,
    ns: &str,
    name: &str,
    verb: &str,
    opts: &WriteOpts,
) -> Result<Response<Body>, ApiError> {
    let to_scale = |o: &Value| {
        let selector = o["spec"]["selector"]["matchLabels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"],
                "uid": o["metadata"]["uid"], "resourceVersion": o["metadata"]["resourceVersion"],
                "creationTimestamp": o["metadata"]["creationTimestamp"]},
            "spec": {"replicas": o["spec"]["replicas"]},
            "status": {"replicas": o["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector}})
    };
    let current = state.store.get(res, ns, name)?;
    let wanted = match verb {
        "get" => return Ok(json_response(200, &to_scale(&current))),
        "update" => read_json(req).await?.0,
        "patch" => {
            let (body, ct) = read_json(req).await?;
            let mut scale = to_scale(&current);
            if ct.starts_with("application/json-patch+json") {
                let p: json_patch::Patch = serde_json::from_value(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
                json_patch::patch(&mut scale, &p).map_err(|e| {
                    ApiError::new(422, "Invalid", format!("the JSON patch failed: {e}"))
                })?;
            } else {
                json_patch::merge(&mut scale, &body);
            }
            scale
        }
        _ => {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                format!("{verb} is not supported on scale"),
            ))
        }
    };
    let replicas = wanted["spec"]["replicas"].as_i64().ok_or_else(|| {
        ApiError::invalid(
            res,
            name,
            &[(
                "spec.replicas".into(),
                "FieldValueRequired",
                "Required value".into(),
            )],
        )
    })?;
    let mut o = WriteOpts {
        subresource: String::new(),
        ..opts.clone()
    };
    o.subresource.clear();
    let updated = state.store.patch(
        res,
        ns,
        name,
        PatchKind::Merge,
        &json!({"spec": {"replicas": replicas}}),
        &o,
    )?;
    Ok(json_response(200, &to_scale(&updated)))
}

fn wants_table(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

fn filter_items(items: Vec<Value>, query: &[(String, String)]) -> Result<Vec<Value>, ApiError> {
    let ls = match q(query, "labelSelector") {
        Some(s) if !s.is_empty() => Some(crate::selector::LabelSelector::parse(s)?),
        _ => None,
    };
    let fs = match q(query, "fieldSelector") {
        Some(s) if !s.is_empty() => Some(crate::selector::FieldSelector::parse(s)?),
        _ => None,
    };
    Ok(items
        .into_iter()
        .filter(|o| {
            ls.as_ref()
                .is_none_or(|s| s.matches(&o["metadata"]["labels"]))
        })
        .filter(|o| fs.as_ref().is_none_or(|s| s.matches(o)))
        .collect())
}

fn watch(
    state: &Arc<ApiState>,
    res: &'static ResourceInfo,
    ns: Option<String>,
    query: &[(String, String)],
) -> Result<Response<Body>, ApiError> {
    let ls = match q(query, "labelSelector") {
        Some(s) if !s.is_empty() => Some(crate::selector::LabelSelector::parse(s)?),
        _ => None,
    };
    let fs = match q(query, "fieldSelector") {
        Some(s) if !s.is_empty() => Some(crate::selector::FieldSelector::parse(s)?),
        _ => None,
    };
    let rv_param = q(query, "resourceVersion").unwrap_or("").to_string();
    let timeout = q(query, "timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let bookmarks = q(query, "allowWatchBookmarks") == Some("true");
    let matches = move |ev_plural: &str, ev_ns: &str, obj: &Value| {
        ev_plural == res.plural
            && ns.as_deref().is_none_or(|n| n == ev_ns)
            && ls
                .as_ref()
                .is_none_or(|s| s.matches(&obj["metadata"]["labels"]))
            && fs.as_ref().is_none_or(|s| s.matches(obj))
    };
    // "" / "0": start with the current state as ADDED events, like the real server.
    let (initial, since) = if rv_param.is_empty() || rv_param == "0" {
        let (items, rv) = state.store.list(res, None);
        let items: Vec<Value> = items
            .into_iter()
            .filter(|o| {
                matches(
                    res.plural,
                    o["metadata"]["namespace"].as_str().unwrap_or(""),
                    o,
                )
            })
            .collect();
        (items, rv)
    } else {
        let rv = rv_param
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv_param:?}")))?;
        (Vec::new(), rv)
    };
    let (past, mut rx) = match state.store.watch_from(since) {
        Ok(x) => x,
        Err(()) => {
            // Too old: the real server answers with an ERROR event carrying 410 Gone.
            let e = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {since}"), "reason": "Expired", "code": 410}});
            return Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .body(full(format!("{e}\n")))
                .expect("valid response"));
        }
    };
    let (tx, out_rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let line = |kind: &str, obj: &Value| {
            Bytes::from(format!("{}\n", json!({"type": kind, "object": obj})))
        };
        for o in initial {
            if tx.send(line("ADDED", &o)).await.is_err() {
                return;
            }
        }
        let mut last = since;
        for ev in past {
            last = ev.rv;
            if matches(ev.plural, &ev.namespace, &ev.object)
                && tx.send(line(ev.kind, &ev.object)).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    let bm = json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": {"resourceVersion": last.to_string()}});
                    if tx.send(line("BOOKMARK", &bm)).await.is_err() { return; }
                }
                ev = rx.recv() => {
                    let ev: WatchEvent = match ev {
                        Ok(ev) => ev,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let e = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "watch fell behind", "reason": "Expired", "code": 410});
                            let _ = tx.send(line("ERROR", &e)).await;
                            return;
                        }
                        Err(_) => return,
                    };
                    if ev.rv <= last { continue; }
                    last = ev.rv;
                    if matches(ev.plural, &ev.namespace, &ev.object)
                        && tx.send(line(ev.kind, &ev.object)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let stream = futures::stream::unfold(out_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    Ok(Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header("Transfer-Encoding", "chunked")
        .body(BodyExt::boxed_unsync(StreamBody::new(stream)))
        .expect("valid response"))
}

fn resource_list(group_version: &str) -> Value {
    let mut out = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.api_version() == group_version)
    {
        out.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": r.short_names,
        }));
        if r.has_status {
            out.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
        for s in r.subresources {
            let (kind, verbs) = match *s {
                "exec" => ("PodExecOptions", json!(["create", "get"])),
                "portforward" => ("PodPortForwardOptions", json!(["create", "get"])),
                "scale" => ("Scale", json!(["get", "patch", "update"])),
                _ => ("Pod", json!(["get"])),
            };
            let mut entry = json!({"name": format!("{}/{s}", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": kind, "verbs": verbs});
            if *s == "scale" {
                entry["group"] = json!("autoscaling");
                entry["version"] = json!("v1");
            }
            out.push(entry);
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": out})
}

/// Discovery, version, health and OpenAPI documents.
fn discovery(path: &str, req: &Request<Incoming>) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    match path.trim_end_matches('/') {
        "/version" => json_response(
            200,
            &json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-localcluster", "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc", "platform": "linux/amd64"}),
        ),
        "/api" => json_response(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}),
        ),
        "/apis" => json_response(
            200,
            &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]}),
        ),
        "/apis/apps" => json_response(
            200,
            &json!({"kind": "APIGroup", "apiVersion": "v1", "name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}),
        ),
        "/api/v1" => json_response(200, &resource_list("v1")),
        "/apis/apps/v1" => json_response(200, &resource_list("apps/v1")),
        "/healthz" | "/livez" | "/readyz" => Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(full("ok"))
            .expect("valid response"),
        "/openapi/v3" => json_response(200, &crate::openapi::v3_root()),
        p if p.starts_with("/openapi/v3/") => {
            match crate::openapi::v3_group(&p["/openapi/v3/".len()..]) {
                Some(doc) => json_response(200, &doc),
                None => error_response(&ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )),
            }
        }
        _ => error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    }
}

#[allow(dead_code)]
pub fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
