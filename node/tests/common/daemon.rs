//! Daemons (`gongjian run`) for the API tests, and an HTTP client with
//! their tokens.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::{bin, p};

pub struct Daemon {
    pub child: Child,
    pub api: String,
    pub listen: String,
    pub token: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(dir: &Path) -> Daemon {
    start_with_stderr(dir, Stdio::null())
}

/// [`start`], its log going to `stderr` (a file, to read what it logged).
pub fn start_with_stderr(dir: &Path, stderr: impl Into<Stdio>) -> Daemon {
    let mut child = bin()
        .args(["run", "--data-dir", p(dir)])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    Daemon {
        child,
        api: format!("http://{}", v["api"].as_str().unwrap()),
        listen: v["listen"][0].as_str().unwrap().to_owned(),
        token: std::fs::read_to_string(dir.join("api.token"))
            .unwrap()
            .trim()
            .to_owned(),
    }
}

/// Points `dir`'s node at `addr` as its bootstrap peer.
pub fn bootstrap(dir: &Path, addr: &str) {
    let path = dir.join("config.toml");
    let cfg = std::fs::read_to_string(&path).unwrap();
    let mut out: Vec<String> = cfg
        .lines()
        .filter(|l| !l.starts_with("bootstrap"))
        .map(str::to_owned)
        .collect();
    // Top-level keys come before any table.
    out.insert(0, format!("bootstrap = [\"{addr}\"]"));
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
}

pub struct Client {
    pub http: reqwest::Client,
}

impl Client {
    /// GET with the given token, or none.
    pub async fn raw(&self, d: &Daemon, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", d.api));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, d: &Daemon, path: &str) -> (StatusCode, Value) {
        self.raw(d, path, Some(&d.token)).await
    }

    /// GET with the node's token, the body as text (`/metrics`).
    #[allow(dead_code)]
    pub async fn get_text(&self, d: &Daemon, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", d.api))
            .bearer_auth(&d.token)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap_or_default())
    }

    pub async fn post(&self, d: &Daemon, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", d.api))
            .bearer_auth(&d.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn until(&self, d: &Daemon, path: &str, what: &str, cond: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, v) = self.get(d, path).await;
            if s == StatusCode::OK && cond(&v) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error object>")
}
