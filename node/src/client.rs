//! The command line's way to the API: over HTTP to the daemon when it holds
//! the store (its address in `DIR/api.addr`, its token in `DIR/api.token`),
//! or, when no daemon runs, through the same router in this process on the
//! store opened here. Either way a command means exactly what the API means.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use crate::api::{self, Api, Me};
use crate::backend::Backend;
use crate::config::DataDir;
use crate::exit::{Coded, Exit, bail};

/// Responses larger than this are refused (bundles are up to 2 GiB).
const MAX_RESPONSE: usize = (2 << 30) + (1 << 20);

enum Via {
    Http {
        base: String,
        token: String,
        http: reqwest::Client,
    },
    Here {
        router: Router,
        token: String,
        backend: Backend,
    },
}

/// A connection to this data dir's API, wherever it runs.
pub struct Client {
    via: Via,
    rt: tokio::runtime::Runtime,
}

/// A request body.
pub enum Send {
    None,
    Json(Value),
    Bytes(Vec<u8>),
}

impl Client {
    pub fn connect(dir: &DataDir) -> anyhow::Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime")
            .code(Exit::Failure)?;
        let via = match crate::node::open(dir) {
            Ok(opened) => {
                let (config, _) = dir.load_config()?;
                let secret = dir.secret()?;
                let me = Me {
                    unit: opened.checked.unit,
                    kind: opened.checked.kind,
                    name: config.name,
                    key: secret.public(),
                };
                let (backend, view) = Backend::local(opened.replica);
                let token = random_token();
                let router = api::router(Api {
                    backend: backend.clone(),
                    data_dir: Arc::new(dir.0.clone()),
                    view,
                    keeps_view: true,
                    token: Arc::new(token.clone()),
                    me: Arc::new(me),
                    accounts: Arc::new(
                        crate::accounts::Accounts::open(&dir.accounts())
                            .context("opening the accounts")
                            .code(Exit::DataDir)?,
                    ),
                    ready: Arc::new(AtomicBool::new(true)),
                });
                Via::Here {
                    router,
                    token,
                    backend,
                }
            }
            Err(e) if e.downcast_ref::<Exit>() == Some(&Exit::Locked) => {
                let addr = std::fs::read_to_string(dir.api_addr()).map_err(|_| {
                    anyhow::anyhow!(
                        "another process holds the store, and {} does not say where its API listens (is `gongjian run` still starting?)",
                        dir.api_addr().display()
                    )
                    .context(Exit::Locked)
                })?;
                let mut addr: std::net::SocketAddr = addr.trim().parse().map_err(|_| {
                    anyhow::anyhow!(
                        "{}: `{}` is not an IP address and port",
                        dir.api_addr().display(),
                        addr.trim()
                    )
                    .context(Exit::DataDir)
                })?;
                if addr.ip().is_unspecified() {
                    addr.set_ip(if addr.is_ipv4() {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    } else {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    });
                }
                let token = std::fs::read_to_string(dir.api_token())
                    .with_context(|| format!("reading {}", dir.api_token().display()))
                    .code(Exit::DataDir)?;
                let http = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(std::time::Duration::from_secs(3600))
                    .build()
                    .context("HTTP client")
                    .code(Exit::Failure)?;
                let base = format!("http://{addr}");
                // The token goes only to this node: its unauthenticated
                // /health must name this data dir's unit.
                let (_, checked) = dir.load_config()?;
                let health: Value = rt
                    .block_on(async {
                        http.get(format!("{base}/health"))
                            .send()
                            .await?
                            .json::<Value>()
                            .await
                    })
                    .with_context(|| {
                        format!(
                            "the store is held by another process, and no node answers at {base}"
                        )
                    })
                    .code(Exit::Locked)?;
                if health["unit"].as_str() != Some(checked.unit.as_str()) {
                    return bail(
                        Exit::Locked,
                        format!(
                            "{base} is not this node's API (it answers for {}); is another process holding the store?",
                            health["unit"]
                        ),
                    );
                }
                Via::Http {
                    base,
                    token: token.trim().to_owned(),
                    http,
                }
            }
            Err(e) => return Err(e),
        };
        Ok(Client { via, rt })
    }

    /// Sends a request; returns the body of a 2xx response, or the API's
    /// error as an error with the matching exit code.
    pub fn bytes(&self, method: Method, path: &str, body: Send) -> anyhow::Result<Vec<u8>> {
        self.bytes_with_summary(method, path, body).map(|(b, _)| b)
    }

    /// [`Client::bytes`], with the summary header of a bundle export.
    pub fn bytes_with_summary(
        &self,
        method: Method,
        path: &str,
        body: Send,
    ) -> anyhow::Result<(Vec<u8>, Option<Value>)> {
        let (status, bytes, header) = self.rt.block_on(self.send(method, path, body))?;
        if status.is_success() {
            return Ok((bytes, header.and_then(|h| serde_json::from_str(&h).ok())));
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = v["error"]["code"].as_str().unwrap_or("");
        let message = v["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        let exit = match (status, code) {
            (_, "not_admitted") | (StatusCode::UNAUTHORIZED, _) => Exit::Untrusted,
            (_, "untrusted") => Exit::Untrusted,
            (StatusCode::FORBIDDEN, _) => Exit::Forbidden,
            (s, _) if s.is_client_error() => Exit::BadInput,
            _ => Exit::Failure,
        };
        bail(exit, format!("{message} ({status})"))
    }

    /// [`Client::bytes`] for a JSON response.
    pub fn json(&self, method: Method, path: &str, body: Send) -> anyhow::Result<Value> {
        let bytes = self.bytes(method, path, body)?;
        serde_json::from_slice(&bytes)
            .context("the API answered with something that is not JSON")
            .code(Exit::Failure)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Send,
    ) -> anyhow::Result<(StatusCode, Vec<u8>, Option<String>)> {
        // The person at the keyboard, written on the records this command
        // makes (`GONGJIAN_PERSON`, e.g. 王芳), percent-encoded.
        let person = std::env::var("GONGJIAN_PERSON")
            .ok()
            .filter(|p| !p.is_empty())
            .map(|p| enc(&p));
        match &self.via {
            Via::Http { base, token, http } => {
                let mut req = http
                    .request(method, format!("{base}{path}"))
                    .bearer_auth(token);
                if let Some(p) = &person {
                    req = req.header(crate::api_console::PERSON_HEADER, p);
                }
                req = match body {
                    Send::None => req,
                    Send::Json(v) => req.json(&v),
                    Send::Bytes(b) => req
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .body(b),
                };
                let resp = req
                    .send()
                    .await
                    .with_context(|| format!("the daemon's API at {base} did not answer"))
                    .code(Exit::Failure)?;
                let status = resp.status();
                let summary = summary_header(resp.headers());
                let bytes = resp
                    .bytes()
                    .await
                    .context("reading the API's answer")
                    .code(Exit::Failure)?;
                Ok((status, bytes.to_vec(), summary))
            }
            Via::Here { router, token, .. } => {
                let mut builder = Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::AUTHORIZATION, format!("Bearer {token}"));
                if let Some(p) = &person {
                    builder = builder.header(crate::api_console::PERSON_HEADER, p);
                }
                let req = match body {
                    Send::None => builder.body(Body::empty()),
                    Send::Json(v) => builder
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(v.to_string())),
                    Send::Bytes(b) => builder
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .body(Body::from(b)),
                }
                .context("building the request")
                .code(Exit::BadInput)?;
                let resp = router
                    .clone()
                    .oneshot(req)
                    .await
                    .context("calling the API")
                    .code(Exit::Failure)?;
                let status = resp.status();
                let summary = summary_header(resp.headers());
                let bytes = axum::body::to_bytes(resp.into_body(), MAX_RESPONSE)
                    .await
                    .context("reading the API's answer")
                    .code(Exit::Failure)?;
                Ok((status, bytes.to_vec(), summary))
            }
        }
    }

    /// Closes the store (when this process opened it).
    pub fn close(self) {
        let Client { via, rt } = self;
        if let Via::Here {
            router, backend, ..
        } = via
        {
            drop(router);
            if let Some(replica) = backend.into_replica() {
                drop(replica);
            }
        }
        drop(rt);
    }
}

fn summary_header(h: &axum::http::HeaderMap) -> Option<String> {
    h.get(crate::api_bundle::SUMMARY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encodes a query value (UTF-8, so Chinese search terms pass).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string of the pairs whose value is set.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// Prints a result: compact JSON for scripts, or a table for people. A
/// result holding a list under `key` prints as rows with `columns`.
pub fn print(v: &Value, json: bool, key: Option<&str>, columns: &[&str]) {
    if json {
        println!("{v}");
        return;
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    match key.and_then(|k| v.get(k)).and_then(Value::as_array) {
        Some(rows) => {
            t.set_header(columns.to_vec());
            for r in rows {
                t.add_row(columns.iter().map(|c| cell(&r[*c])));
            }
            println!("{t}");
            if let Some(next) = v.get("next_cursor").and_then(Value::as_str) {
                println!("more: --cursor {next}");
            }
        }
        None => {
            if let Some(obj) = v.as_object() {
                for (k, x) in obj {
                    t.add_row(vec![k.clone(), cell(x)]);
                }
            }
            println!("{t}");
        }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| format!("{k}: {}", cell(x)))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
