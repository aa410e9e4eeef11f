//! People on a real daemon: users added with `gongjian user add`, the
//! console's pages served from the binary, sessions by cookie (and their
//! cross-site guard), roles, the person named on every record written, the
//! audit log, the monthly report; sessions and the audit log survive
//! kill -9. (The pages themselves, in Chromium: `browser/`.)

mod common;

use std::io::Write;
use std::process::Stdio;

use common::daemon::*;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn add_user(dir: &std::path::Path, name: &str, role: &str, display: &str, password: &str) -> Value {
    let mut child = bin()
        .args([
            "user",
            "add",
            "--data-dir",
            p(dir),
            name,
            "--role",
            role,
            "--display-name",
            display,
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(d: &Daemon) -> Browser {
        Browser {
            http: reqwest::Client::new(),
            base: d.api.clone(),
            cookie: None,
        }
    }

    async fn login(&mut self, name: &str, password: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/v1/login", self.base))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        if let Some(c) = r.headers().get("set-cookie") {
            let c = c.to_str().unwrap();
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Strict"),
                "{c}"
            );
            self.cookie = Some(c.split(';').next().unwrap().to_owned());
        }
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        console_header: bool,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if console_header {
            req = req.header("x-gongjian-console", "1");
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None, false).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body), true)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_roles_sessions_and_audit_on_a_daemon() {
    let t = tree();
    add_user(
        &t.community,
        "admin",
        "administrator",
        "赵主任",
        "admin-password-1",
    );
    let op = add_user(
        &t.community,
        "wangfang",
        "operator",
        "王芳",
        "operator-password-1",
    );
    assert_eq!(op["role"], "operator");
    assert!(
        op.get("hash").is_none(),
        "the hash never leaves the node: {op}"
    );
    add_user(&t.community, "li", "viewer", "", "viewer-password-1");
    let d = start(&t.community);
    let http = reqwest::Client::new();

    // The console is served by the binary, with a strict policy.
    let r = http.get(format!("{}/", d.api)).send().await.unwrap();
    assert_eq!(r.url().path(), "/console/", "/ redirects to the console");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(r.text().await.unwrap().contains("/console/app.js"));
    let js = http
        .get(format!("{}/console/app.js", d.api))
        .send()
        .await
        .unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );

    // /metrics needs no token from this host, unless a proxy forwarded the
    // request or it was addressed to a name (DNS rebinding).
    let metrics = |h: Option<(&'static str, &'static str)>| {
        let mut req = http.get(format!("{}/metrics", d.api));
        if let Some((k, v)) = h {
            req = req.header(k, v);
        }
        req.send()
    };
    assert_eq!(metrics(None).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        metrics(Some(("x-forwarded-for", "203.0.113.9")))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        metrics(Some(("host", "evil.example:4711")))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Wrong passwords: one answer for a wrong name and a wrong password.
    let mut op = Browser::new(&d);
    let (s, e) = op.login("wangfang", "not-her-password").await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNAUTHORIZED, "bad_login"));
    let (s, e2) = op.login("nobody", "not-her-password").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"]["message"], e2["error"]["message"]);
    assert!(op.cookie.is_none());

    // The operator's session: reads, and writes with the console header.
    let (s, who) = op.login("wangfang", "operator-password-1").await;
    assert_eq!(s, StatusCode::OK, "{who}");
    assert_eq!(who["unit"], "320106002001");
    let (_, me) = op.get("/v1/session").await;
    assert_eq!(
        (me["person"].as_str(), me["role"].as_str()),
        (Some("wangfang"), Some("operator"))
    );
    let need = json!({"list": "need", "title": "助餐志愿者招募", "category": "助老"});
    let (s, e) = op
        .send(
            reqwest::Method::POST,
            "/v1/items",
            Some(need.clone()),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no console header: {e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-gongjian-console")
    );
    let (s, item) = op.post("/v1/items", need).await;
    assert_eq!(s, StatusCode::CREATED, "{item}");
    assert_eq!(item["by"], "王芳", "the record names the person");
    let id = item["id"].as_str().unwrap().to_owned();
    let (s, item) = op
        .post(
            &format!("/v1/items/{id}/status"),
            json!({"status": "in_progress"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{item}");
    assert_eq!(item["updated_by"], "王芳");
    let (s, e) = op.get("/v1/audit").await;
    assert_eq!((s, error_code(&e)), (StatusCode::FORBIDDEN, "forbidden"));
    let (s, _) = op.get("/v1/users").await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A viewer reads and cannot write.
    let mut viewer = Browser::new(&d);
    viewer.login("li", "viewer-password-1").await;
    let (s, page) = viewer.get("/v1/view/items?list=need").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["items"][0]["by"], "王芳");
    let (s, _) = viewer
        .post("/v1/items", json!({"list": "need", "title": "越权登记"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A script with the token names its person in a percent-encoded header.
    let r = http
        .post(format!("{}/v1/items", d.api))
        .bearer_auth(&d.token)
        .header("x-gongjian-person", "%E9%99%88%E5%B7%A5")
        .json(&json!({"list": "resource", "title": "会议室开放", "category": "场地"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["by"], "陈工");
    let r = http
        .post(format!("{}/v1/items", d.api))
        .bearer_auth(&d.token)
        .header("x-gongjian-person", "%E9%99")
        .json(&json!({"list": "resource", "title": "坏的人名"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a person name that is not UTF-8"
    );

    // Text search: Chinese as written, Latin letters in any case.
    let (s, _) = op
        .post(
            "/v1/items",
            json!({"list": "resource", "title": "社区活动室 Wi-Fi 覆盖"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    for q in ["WI-FI", "wi-fi", "%E8%A6%86%E7%9B%96"] {
        let (_, page) = op.get(&format!("/v1/view/items?list=resource&q={q}")).await;
        let titles: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, ["社区活动室 Wi-Fi 覆盖"], "q={q}");
    }

    // The command line names its person from GONGJIAN_PERSON.
    let out = bin()
        .args([
            "item",
            "add",
            "--data-dir",
            p(&t.community),
            "--list",
            "service",
            "--title",
            "上门理发",
            "--json",
        ])
        .env("GONGJIAN_PERSON", "周师傅")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["by"], "周师傅");

    // The administrator: users and the audit log.
    let mut admin = Browser::new(&d);
    admin.login("admin", "admin-password-1").await;
    let (s, e) = admin
        .send(reqwest::Method::DELETE, "/v1/users/admin", None, true)
        .await;
    assert_eq!(
        (s, error_code(&e)),
        (StatusCode::CONFLICT, "last_administrator")
    );
    let (s, e) = admin
        .post(
            "/v1/users",
            json!({"name": "Zhang San", "role": "viewer", "password": "0123456789"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (_, audit) = admin.get("/v1/audit?limit=50").await;
    let entries = audit["entries"].as_array().unwrap();
    let has = |person: &str, action: &str, status: u64, detail: &str| {
        entries.iter().any(|e| {
            e["person"] == person
                && e["action"] == action
                && e["status"] == status
                && e["detail"].as_str().unwrap().contains(detail)
        })
    };
    assert!(has("wangfang", "POST /v1/items", 201, &id), "{audit}");
    assert!(
        has("wangfang", "POST /v1/items", 403, "x-gongjian-console"),
        "{audit}"
    );
    assert!(has("li", "POST /v1/items", 403, "operator"), "{audit}");
    assert!(
        has("wangfang", "login_failed", 0, "wrong name or password"),
        "{audit}"
    );
    assert!(
        has("api.token (陈工)", "POST /v1/items", 201, ""),
        "{audit}"
    );
    assert!(
        has("api.token", "POST /v1/users", 201, "wangfang"),
        "{audit}"
    );
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );

    // Grids and agreements name their person too.
    let (s, g) = op
        .post(
            "/v1/grids",
            json!({"level": "zone", "name": "颐和路片区", "counts": {"households": 300}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["by"], "王芳");
    let (s, a) = op
        .post(
            "/v1/agreements",
            json!({"title": "共建协议", "parties": ["320106000000"], "start": 1_790_000_000, "end": 1_820_000_000}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["by"], "王芳");

    // A problem found and resolved this month, a need closed: the report
    // counts both as resolved, neither as open.
    let (_, problem) = op
        .post("/v1/items", json!({"list": "problem", "title": "楼道堆物"}))
        .await;
    let pid = problem["id"].as_str().unwrap().to_owned();
    let (s, _) = op
        .post(
            &format!("/v1/items/{pid}/status"),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = op
        .post(
            &format!("/v1/items/{id}/status"),
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // The console's administrator cannot make the node write a backup
    // anywhere on its disk (the token and the CLI can).
    let (s, e) = admin
        .post("/v1/backup", json!({"out": "/tmp/gongjian-console-backup"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, _) = admin
        .post(
            "/v1/password",
            json!({"old": "not-my-password", "new": "0123456789-new"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a wrong old password");
    let (s, _) = Browser::new(&d)
        .login(&"x".repeat(5000), "whatever-password")
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "an impossible name is a wrong login"
    );

    // The monthly report counts this month's records.
    let (s, e) = admin.get("/v1/view/report?month=2026-13").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, r) = admin.get("/v1/view/report").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let list = |name: &str| {
        r["lists"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["list"] == name)
            .unwrap()
            .clone()
    };
    let need = list("need");
    assert_eq!(
        (
            need["created"].as_u64(),
            need["resolved"].as_u64(),
            need["open_at_end"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{r}"
    );
    assert_eq!(r["problems"][0]["level"], "grid");
    assert_eq!(
        (
            r["problems"][0]["found"].as_u64(),
            r["problems"][0]["resolved"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(r["agreements"]["draft"], 1, "{r}");
    let (_, o) = admin.get("/v1/openapi.json").await;
    for path in [
        "/v1/view/report",
        "/v1/login",
        "/v1/users/{name}",
        "/v1/audit",
        "/v1/session",
    ] {
        assert!(o["paths"][path].is_object(), "{path} not documented");
    }
    let r = http
        .get(format!("{}/v1/view/report?format=csv", d.api))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap();
    let csv = r.text().await.unwrap();
    assert!(csv.contains("需求清单") && csv.contains("新增"), "{csv}");

    // Sessions and the audit log are durable: kill -9, restart, same cookie.
    drop(d);
    let d = start(&t.community);
    op.base = d.api.clone();
    let (s, me) = op.get("/v1/session").await;
    assert_eq!(s, StatusCode::OK, "{me}");
    admin.base = d.api.clone();
    let (_, audit2) = admin.get("/v1/audit?limit=500").await;
    assert!(audit2["entries"].as_array().unwrap().len() >= entries.len());

    // Logging out ends the session (and is in the log); disabling a user
    // ends theirs.
    let (s, _) = op.post("/v1/logout", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = op.get("/v1/session").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, audit4) = admin.get("/v1/audit?limit=5").await;
    assert!(
        audit4["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "logout" && e["person"] == "wangfang"),
        "{audit4}"
    );
    let (s, _) = viewer_after_restart(&d, &mut viewer).await;
    assert_eq!(s, StatusCode::OK);
    let (s, u) = admin
        .send(
            reqwest::Method::PATCH,
            "/v1/users/li",
            Some(json!({"disabled": true})),
            true,
        )
        .await;
    assert_eq!((s, u["disabled"].as_bool()), (StatusCode::OK, Some(true)));
    let (_, audit3) = admin.get("/v1/audit?limit=1").await;
    assert_eq!(
        audit3["entries"][0]["detail"], "li: disabled=true",
        "{audit3}"
    );
    let (_, audit3) = admin.get("/v1/audit?limit=1").await;
    assert_eq!(
        audit3["entries"][0]["detail"], "li: disabled=true",
        "{audit3}"
    );
    let (s, _) = viewer.get("/v1/view/items").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn viewer_after_restart(d: &Daemon, viewer: &mut Browser) -> (StatusCode, Value) {
    viewer.base = d.api.clone();
    viewer.get("/v1/session").await
}
