//! The HTTP API over a real socket, on real daemons (`gongjian run`) that
//! sync over libp2p on 127.0.0.1: writes on a community show up in the
//! district's merged view with their provenance, both report one digest for
//! the community's scope, every error status, and acknowledged writes
//! survive kill -9.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Daemon {
    child: Child,
    api: String,
    listen: String,
    token: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Daemon {
    let mut child = bin()
        .args(["run", "--data-dir", p(dir)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
fn bootstrap(dir: &Path, addr: &str) {
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

struct Client {
    http: reqwest::Client,
}

impl Client {
    /// GET with the given token, or none.
    async fn raw(&self, d: &Daemon, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", d.api));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, d: &Daemon, path: &str) -> (StatusCode, Value) {
        self.raw(d, path, Some(&d.token)).await
    }

    async fn post(&self, d: &Daemon, path: &str, body: Value) -> (StatusCode, Value) {
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

    async fn until(&self, d: &Daemon, path: &str, what: &str, cond: impl Fn(&Value) -> bool) {
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

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error object>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_end_to_end_on_two_daemons() {
    let t = tree();
    let c = Client {
        http: reqwest::Client::new(),
    };
    let district = start(&t.district);
    bootstrap(&t.community, &district.listen);
    let mut community = start(&t.community);
    let community_key = ok(&["id", "--data-dir", p(&t.community)])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Unauthenticated: health and ready only.
    assert_eq!(c.raw(&community, "/health", None).await.0, StatusCode::OK);
    assert_eq!(c.raw(&community, "/ready", None).await.0, StatusCode::OK);
    let (s, e) = c.raw(&community, "/v1/node", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&e), "unauthorized");
    let (s, _) = c
        .raw(&community, "/v1/view/items", Some("not-the-token"))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The node, and its peer (the district) once admitted.
    c.until(&community, "/v1/node", "the district as a peer", |v| {
        v["peers"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["unit"] == "320106000000" && p["connected"] == true)
        })
    })
    .await;
    let (_, node) = c.get(&community, "/v1/node").await;
    assert_eq!(node["unit"], "320106002001");
    assert_eq!(node["name"], "颐和路社区");
    assert_eq!(node["public_key"], community_key.as_str());

    // Writes, signed by the community node, acknowledged once durable.
    let (s, need) = c
        .post(
            &community,
            "/v1/items",
            json!({"list": "need", "title": "独居老人助餐志愿者", "category": "助老"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{need}");
    let need_id = need["id"].as_str().unwrap().to_owned();
    assert_eq!(need["title"], "独居老人助餐志愿者");
    assert_eq!(need["status"], "open");
    assert_eq!(need["provenance"]["unit"], "320106002001");
    assert_eq!(need["provenance"]["author"], community_key.as_str());
    assert!(need["provenance"]["change"].is_string(), "{need}");
    let (s, project) = c
        .post(
            &community,
            "/v1/items",
            json!({"list": "project", "title": "楼道加装扶手", "category": "适老化", "urgent": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{project}");
    let project_id = project["id"].as_str().unwrap().to_owned();

    // The district's merged view holds them, with the same provenance.
    c.until(
        &district,
        "/v1/view/items?unit=320106002001&q=助餐",
        "the community's need at the district",
        |v| v["items"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    let (_, v) = c
        .get(&district, "/v1/view/items?unit=320106002001&q=助餐")
        .await;
    let row = &v["items"][0];
    assert_eq!(row["id"], need_id.as_str(), "ids are global");
    assert_eq!(row["provenance"], need["provenance"]);
    assert_eq!(row["unit_name"], "颐和路社区");
    assert_eq!(row["street"], "320106002000");

    // The district claims the project (in its own acts document); it may
    // not set the status of the community's need.
    c.until(
        &district,
        &format!("/v1/view/items/{project_id}"),
        "the project at the district",
        |_| true,
    )
    .await;
    let (s, claimed) = c
        .post(
            &district,
            &format!("/v1/items/{project_id}/claim"),
            json!({"note": "区机关党员志愿者认领"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{claimed}");
    assert_eq!(claimed["claimed"], true);
    assert_eq!(claimed["acts"][0]["unit"], "320106000000");
    assert_eq!(claimed["acts"][0]["kind"], "claim");
    let (s, e) = c
        .post(
            &district,
            &format!("/v1/items/{need_id}/status"),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(error_code(&e), "forbidden");
    let (s, e) = c
        .post(
            &community,
            &format!("/v1/items/{project_id}/claim"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "own record: {e}");
    let (s, e) = c
        .post(&district, &format!("/v1/items/{need_id}/claim"), json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a need is not claimed: {e}");
    let (s, done) = c
        .post(
            &community,
            &format!("/v1/items/{need_id}/status"),
            json!({"status": "in_progress"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "in_progress");

    // The claim reaches the community, joined to its project; filters.
    c.until(
        &community,
        "/v1/view/items?claimed=true",
        "the district's claim at the community",
        |v| v["items"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    let (_, v) = c
        .get(&community, "/v1/view/items?list=need&status=in_progress")
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, v) = c.get(&community, "/v1/view/items?urgent=true").await;
    assert_eq!(v["items"][0]["id"], project_id.as_str());
    let (_, v) = c.get(&community, "/v1/view/items?limit=1").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let cursor = v["next_cursor"].as_str().unwrap().to_owned();
    let (_, v2) = c
        .get(
            &community,
            &format!("/v1/view/items?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(v2["items"].as_array().unwrap().len(), 1);
    assert_ne!(v2["items"][0]["id"], v["items"][0]["id"]);
    assert!(v2["next_cursor"].is_null());

    // One digest for the community's scope on both nodes.
    c.until(
        &district,
        "/v1/view/items?unit=320106002001&status=in_progress",
        "the status change at the district",
        |v| v["items"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    let (_, dc) = c.get(&community, "/v1/view/digest").await;
    let (_, dd) = c.get(&district, "/v1/view/digest?scope=320106002001").await;
    assert_eq!(dc["digest"], dd["digest"], "{dc} {dd}");
    let (s, e) = c
        .get(&community, "/v1/view/digest?scope=320106000000")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a scope above the node: {e}");

    // Stats, units, documents, OpenAPI.
    let (_, st) = c.get(&district, "/v1/view/stats?by=community").await;
    let rows = st["stats"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["area"] == "320106002001"
        && r["list"] == "need"
        && r["status"] == "in_progress"
        && r["count"] == 1));
    let (_, u) = c.get(&district, "/v1/view/units").await;
    assert!(
        u["units"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["unit"] == "320106002001" && x["changes_held"].as_u64() >= Some(3))
    );
    let (_, docs) = c.get(&community, "/v1/docs").await;
    let doc_id = need["provenance"]["doc"].as_str().unwrap();
    assert!(
        docs["docs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == doc_id)
    );
    let (s, d) = c.get(&community, &format!("/v1/docs/{doc_id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(d["heads"].as_array().is_some_and(|h| !h.is_empty()));
    let (s, o) = c.get(&community, "/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/v1/view/items",
        "/v1/status",
        "/v1/grids",
        "/v1/items/{id}/escalate",
        "/v1/whistles",
        "/v1/whistles/{id}/respond",
        "/v1/agreements",
        "/v1/agreements/{id}/sign",
        "/v1/view/matches",
        "/v1/view/agreements",
        "/v1/view/grids",
        "/v1/bundles/import",
    ] {
        assert!(o["paths"][path].is_object(), "{path} not documented");
    }

    // Prometheus metrics, no token from this host.
    let m = c
        .http
        .get(format!("{}/metrics", district.api))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), StatusCode::OK);
    let text = m.text().await.unwrap();
    for name in [
        "gongjian_changes_accepted_total",
        "gongjian_sync_sessions_total",
        "gongjian_network_received_bytes_total",
        "gongjian_peers{state=\"connected\"} 1",
        "gongjian_view_documents_behind 0",
        "gongjian_store_bytes",
        "gongjian_certificate_expiry_seconds",
    ] {
        assert!(text.contains(name), "{name} not in:\n{text}");
    }
    let accepted: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("gongjian_changes_accepted_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(
        accepted >= 3,
        "the district accepted the community's changes"
    );

    // Bad requests: each a 4xx with a JSON error, nothing written.
    let before = c.get(&community, "/v1/view/items?limit=1000").await.1["items"]
        .as_array()
        .unwrap()
        .len();
    for (body, status) in [
        (
            json!({"list": "petition", "title": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"list": "need"}), StatusCode::BAD_REQUEST),
        (
            json!({"list": "need", "title": ""}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"list": "need", "title": "x", "colour": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"list": "need", "title": "x", "urgent": true}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"list": "need", "title": "x".repeat(2 << 20)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let (s, e) = c.post(&community, "/v1/items", body).await;
        assert_eq!(s, status, "{e}");
        assert!(e["error"]["message"].is_string(), "{e}");
    }
    let r = c
        .http
        .post(format!("{}/v1/items", community.api))
        .bearer_auth(&community.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for (path, status) in [
        ("/v1/view/items?status=bogus", StatusCode::BAD_REQUEST),
        ("/v1/view/items?limit=0", StatusCode::BAD_REQUEST),
        ("/v1/view/items?unit=12", StatusCode::BAD_REQUEST),
        ("/v1/view/items?cursor=zzz", StatusCode::BAD_REQUEST),
        ("/v1/view/stats?by=planet", StatusCode::BAD_REQUEST),
        ("/v1/view/items/not-an-id", StatusCode::BAD_REQUEST),
        ("/v1/docs/xyz", StatusCode::BAD_REQUEST),
        (
            "/v1/docs/0000000000000000000000000000000000000000000000000000000000000000",
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/view/items/0000000000000000000000000000000000000000000000000000000000000000.abc",
            StatusCode::NOT_FOUND,
        ),
        ("/v1/no-such-thing", StatusCode::NOT_FOUND),
    ] {
        let (s, e) = c.get(&community, path).await;
        assert_eq!(s, status, "{path}: {e}");
        assert!(e["error"]["code"].is_string(), "{path}: {e}");
    }
    let (s, _) = c
        .post(
            &community,
            &format!("/v1/items/{need_id}/status"),
            json!({"status": "done"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let after = c.get(&community, "/v1/view/items?limit=1000").await.1["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before, "no bad request wrote anything");

    // Acknowledged writes survive kill -9.
    let mut acked = Vec::new();
    for i in 0..20 {
        let (s, v) = c
            .post(
                &community,
                "/v1/items",
                json!({"list": "wish", "title": format!("微心愿 {i}")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        acked.push(v["id"].as_str().unwrap().to_owned());
    }
    community.child.kill().unwrap(); // SIGKILL
    community.child.wait().unwrap();
    drop(community);
    let restarted = start(&t.community);
    let (_, v) = c
        .get(&restarted, "/v1/view/items?list=wish&limit=1000")
        .await;
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in &acked {
        assert!(ids.contains(&id.as_str()), "{id} lost after kill -9");
    }
}

/// Grids, problems escalated and handled, whistles and responses,
/// agreements signed by both parties, matches, on three daemons
/// (district ← street ← community); and the command line going through a
/// running daemon's API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grids_problems_whistles_agreements_and_the_cli_through_the_daemon() {
    let t = tree();
    let c = Client {
        http: reqwest::Client::new(),
    };
    let district = start(&t.district);
    bootstrap(&t.street, &district.listen);
    let street = start(&t.street);
    bootstrap(&t.community, &street.listen);
    let community = start(&t.community);
    let (street_id, community_id) = ("320106002000", "320106002001");

    // The command line while the daemon holds the store: through its API.
    let st = ok(&["status", "--json", "--data-dir", p(&t.community)]);
    assert_eq!(st["running"], true, "{st}");
    assert_eq!(st["certificate"]["state"], "valid", "{st}");
    let need = ok(&[
        "need",
        "add",
        "--json",
        "--data-dir",
        p(&t.community),
        "--title",
        "独居老人助餐",
        "--category",
        "助老",
    ]);
    let listed = ok(&[
        "view",
        "items",
        "--json",
        "--data-dir",
        p(&t.community),
        "--list",
        "need",
        "--q",
        "助餐",
    ]);
    assert_eq!(listed["items"][0]["id"], need["id"], "{listed}");
    let table = run(&["view", "items", "--data-dir", p(&t.community)]);
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("独居老人助餐") && table.contains("需求清单"),
        "{table}"
    );
    fails(
        &[
            "item",
            "status",
            "--data-dir",
            p(&t.community),
            "--id",
            need["id"].as_str().unwrap(),
            "--status",
            "finished",
        ],
        3,
        "unknown status",
    );
    // A bundle refused by the daemon: exit 4, nothing stored.
    let dir = t.community.parent().unwrap().to_owned();
    let state = dir.join("community.have");
    ok(&[
        "bundle",
        "state",
        "--data-dir",
        p(&t.community),
        "--for",
        street_id,
        "--out",
        p(&state),
    ]);
    assert!(std::fs::read(&state).unwrap().starts_with(b"GJHAVE"));
    let file = dir.join("for-community.gjb");
    ok(&[
        "bundle",
        "export",
        "--data-dir",
        p(&t.street),
        "--for",
        community_id,
        "--out",
        p(&file),
    ]);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    fails(
        &["bundle", "import", "--data-dir", p(&t.community), p(&file)],
        4,
        "tampered",
    );

    // Grids: a zone and a residential grid under it; counts summed up.
    let (s, zone) = c
        .post(
            &community,
            "/v1/grids",
            json!({"level": "zone", "name": "颐和路片区", "leader": "王芳",
                "counts": {"households": 1200, "compounds": 3, "resident_units": 10, "posts": 2, "members": 40}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{zone}");
    let zone_id = zone["id"].as_str().unwrap().to_owned();
    let (s, g) = c
        .post(
            &community,
            "/v1/grids",
            json!({"level": "residential", "name": "江苏路网格", "parent": zone_id,
                "counts": {"households": 300, "members": 8}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["grid"]["parent"]["id"], zone["grid"]["id"], "{g}");
    assert_eq!(g["grid"]["parent"]["unit"], community_id);
    assert_eq!(g["provenance"]["unit"], community_id);
    for (body, what) in [
        (json!({"level": "tower", "name": "x"}), "bad level"),
        (
            json!({"level": "residential", "name": "无上级"}),
            "no parent",
        ),
        (
            json!({"level": "residential", "name": "x", "parent": "0000000000000000000000000000000000000000000000000000000000000000.nope"}),
            "unknown parent",
        ),
        (json!({"level": "zone", "name": ""}), "empty name"),
    ] {
        let (s, e) = c.post(&community, "/v1/grids", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {e}");
    }
    c.until(
        &district,
        "/v1/view/grids",
        "the grids at the district",
        |v| v["grids"][0]["totals"]["households"] == 1500,
    )
    .await;
    let (_, tree) = c.get(&district, "/v1/view/grids").await;
    assert_eq!(tree["grids"][0]["name"], "颐和路片区");
    assert_eq!(tree["grids"][0]["totals"]["members"], 48);
    assert_eq!(tree["grids"][0]["children"][0]["name"], "江苏路网格");

    // A problem escalated to the street, handled there in the street's own
    // document; the district may not touch it.
    let (_, problem) = c
        .post(
            &community,
            "/v1/items",
            json!({"list": "problem", "title": "楼道堆物占用消防通道", "category": "消防"}),
        )
        .await;
    let problem_id = problem["id"].as_str().unwrap().to_owned();
    let (s, e) = c
        .post(
            &community,
            &format!("/v1/items/{}/escalate", need["id"].as_str().unwrap()),
            json!({"to": "street"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a need does not escalate: {e}");
    let (s, e) = c
        .post(
            &community,
            &format!("/v1/items/{problem_id}/escalate"),
            json!({"to": "planet"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    for body in [
        json!({"to": "zone", "handler": "320106000000"}),
        json!({"to": "street", "handler": "320106000000"}),
        json!({"to": "district", "handler": community_id}),
    ] {
        let (s, e) = c
            .post(
                &community,
                &format!("/v1/items/{problem_id}/escalate"),
                body.clone(),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
    }
    let (s, up) = c
        .post(
            &community,
            &format!("/v1/items/{problem_id}/escalate"),
            json!({"to": "street"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{up}");
    assert_eq!(up["level"], "street");
    assert_eq!(up["escalated_to"], street_id);
    let (s, e) = c
        .post(
            &community,
            &format!("/v1/items/{problem_id}/escalate"),
            json!({"to": "community"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "levels only go up: {e}");
    c.until(
        &street,
        &format!("/v1/view/items/{problem_id}"),
        "the escalated problem at the street",
        |v| v["level"] == "street",
    )
    .await;
    let (s, e) = c
        .post(
            &street,
            &format!("/v1/items/{problem_id}/escalate"),
            json!({"to": "district"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only the owner escalates: {e}");
    let (s, handled) = c
        .post(
            &street,
            &format!("/v1/items/{problem_id}/status"),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{handled}");
    let act = &handled["acts"][0];
    assert_eq!(act["kind"], "handling");
    assert_eq!(act["unit"], street_id);
    assert_eq!(act["resolved"], true);
    assert_eq!(
        handled["unit"], community_id,
        "the problem stays the community's"
    );
    c.until(
        &district,
        &format!("/v1/view/items/{problem_id}"),
        "the problem at the district",
        |v| v["level"] == "street",
    )
    .await;
    let (s, e) = c
        .post(
            &district,
            &format!("/v1/items/{problem_id}/status"),
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "never escalated to the district: {e}"
    );

    // A whistle calling the street; the street reports, the district may
    // not (not called), nor the community to its own.
    let (s, w) = c
        .post(
            &community,
            "/v1/whistles",
            json!({"title": "老旧小区加装电梯协调", "category": "民生", "levels": ["street"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    let whistle_id = w["id"].as_str().unwrap().to_owned();
    assert_eq!(w["list"], "whistle");
    let (s, e) = c
        .post(
            &community,
            "/v1/whistles",
            json!({"title": "x", "levels": ["moon"]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    c.until(
        &street,
        &format!("/v1/view/items/{whistle_id}"),
        "the whistle at the street",
        |_| true,
    )
    .await;
    let (s, r) = c
        .post(
            &street,
            &format!("/v1/whistles/{whistle_id}/respond"),
            json!({"note": "街道城管科报到"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["acts"][0]["kind"], "response");
    assert_eq!(r["acts"][0]["note"], "街道城管科报到");
    let (s, e) = c
        .post(
            &community,
            &format!("/v1/whistles/{whistle_id}/respond"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    c.until(
        &district,
        &format!("/v1/view/items/{whistle_id}"),
        "the whistle at the district",
        |_| true,
    )
    .await;
    let (s, e) = c
        .post(
            &district,
            &format!("/v1/whistles/{whistle_id}/respond"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the district was not called: {e}");
    let (s, e) = c
        .post(
            &street,
            &format!("/v1/whistles/{problem_id}/respond"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not a whistle: {e}");
    // Downward too: the street calls its communities, one reports.
    let (s, w2) = c
        .post(
            &street,
            "/v1/whistles",
            json!({"title": "汛期排水巡查", "levels": ["community"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w2}");
    let w2_id = w2["id"].as_str().unwrap().to_owned();
    c.until(
        &community,
        &format!("/v1/view/items/{w2_id}"),
        "the street's whistle at the community",
        |_| true,
    )
    .await;
    let (s, r2) = c
        .post(
            &community,
            &format!("/v1/whistles/{w2_id}/respond"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r2}");
    assert_eq!(r2["acts"][0]["unit"], community_id);

    // An agreement between the community and the street: a draft until
    // both sign the same terms, then active; the district is no party.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (s, e) = c
        .post(
            &community,
            "/v1/agreements",
            json!({"title": "x", "parties": [], "start": now, "end": now + 1}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no other party: {e}");
    let (s, e) = c
        .post(
            &community,
            "/v1/agreements",
            json!({"title": "x", "parties": [street_id], "start": now, "end": now - 10}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "ends before it starts: {e}");
    let (s, a) = c
        .post(
            &community,
            "/v1/agreements",
            json!({"title": "颐和路社区与宁海路街道双向服务协议", "parties": [street_id],
                "start": now - 86_400, "end": now + 200 * 86_400,
                "services": ["为辖区老人提供助餐"], "contact": "社区党委 025-0000"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["status"], "draft");
    let agreement = a["id"].as_str().unwrap().to_owned();
    let (s, a) = c
        .post(
            &community,
            &format!("/v1/agreements/{agreement}/sign"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["status"], "draft", "one party of two signed: {a}");
    c.until(
        &street,
        &format!("/v1/view/agreements?party={community_id}"),
        "the agreement and the community's signature at the street",
        |v| {
            v["agreements"][0]["party_signatures"]
                .as_array()
                .is_some_and(|p| {
                    p.iter()
                        .any(|x| x["unit"] == community_id && x["signed"] == true)
                })
        },
    )
    .await;
    let (s, a) = c
        .post(
            &street,
            &format!("/v1/agreements/{agreement}/sign"),
            json!({"note": "同意"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["status"], "active", "{a}");
    c.until(
        &district,
        "/v1/view/agreements?status=active&expiring_within_days=365",
        "the active agreement at the district",
        |v| v["agreements"].as_array().is_some_and(|x| x.len() == 1),
    )
    .await;
    let (s, e) = c
        .post(
            &district,
            &format!("/v1/agreements/{agreement}/sign"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "not a party: {e}");
    let (_, none) = c
        .get(&district, "/v1/view/agreements?expiring_within_days=30")
        .await;
    assert_eq!(none["agreements"].as_array().unwrap().len(), 0);
    for path in [
        "/v1/view/agreements?status=bogus",
        "/v1/view/agreements?party=12",
        "/v1/view/agreements/xyz",
        "/v1/view/grids?scope=999",
    ] {
        let (s, e) = c.get(&district, path).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {e}");
    }
    let (s, _) = c
        .get(
            &district,
            "/v1/view/agreements/0000000000000000000000000000000000000000000000000000000000000000",
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Matches: the community's open need beside the street's resource of
    // the same category (and no area: the same community's).
    let (s, res) = c
        .post(
            &street,
            "/v1/items",
            json!({"list": "resource", "title": "街道食堂助餐配送", "category": "助老"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    let (_, m) = c.get(&street, "/v1/view/matches").await;
    assert!(
        m["matches"].as_array().unwrap().is_empty(),
        "a street-level resource is not in the community's area: {m}"
    );
    let (s, res2) = c
        .post(
            &community,
            "/v1/items",
            json!({"list": "resource", "title": "社区老年食堂", "category": "助老"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res2}");
    c.until(
        &district,
        "/v1/view/matches",
        "a match at the district",
        |v| v["matches"].as_array().is_some_and(|m| m.len() == 1),
    )
    .await;
    let (_, m) = c.get(&district, "/v1/view/matches").await;
    assert_eq!(m["matches"][0]["need"]["id"], need["id"]);
    assert_eq!(m["matches"][0]["resources"][0]["id"], res2["id"]);
    // Every view list as CSV (UTF-8 with a BOM, Chinese intact) and XLSX.
    let get_bytes = |path: String| {
        let (http, api, token) = (c.http.clone(), district.api.clone(), district.token.clone());
        async move {
            let r = http
                .get(format!("{api}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (r.status(), ct, r.bytes().await.unwrap().to_vec())
        }
    };
    let (s, ct, csv) = get_bytes("/v1/view/items?list=need&format=csv".into()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with('\u{feff}'), "a BOM for Excel");
    assert!(csv.lines().next().unwrap().contains("title"), "{csv}");
    assert!(csv.contains("独居老人助餐"), "{csv}");
    for list in ["units", "stats", "agreements", "grids", "matches"] {
        let (s, _, body) = get_bytes(format!("/v1/view/{list}?format=csv")).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert!(
            String::from_utf8(body).unwrap().lines().count() >= 2,
            "{list}: a header and rows"
        );
        let (s, ct, xlsx) = get_bytes(format!("/v1/view/{list}?format=xlsx")).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert!(ct.contains("spreadsheetml"), "{ct}");
        assert!(xlsx.starts_with(b"PK"), "{list}: an XLSX is a zip");
    }
    let (s, _, _) = get_bytes("/v1/view/items?format=pdf".into()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = get_bytes("/v1/view/units?format=csv&colour=red".into()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Units by name in pinyin order: 南京 (nan) < 宁海 (ning) < 颐和 (yi).
    let (_, u) = c.get(&district, "/v1/view/units").await;
    let names: Vec<&str> = u["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["南京市鼓楼区", "宁海路街道", "颐和路社区"], "{u}");

    // Both nodes agree on the community's scope once synced.
    c.until(
        &community,
        "/v1/view/agreements?status=active",
        "the street's signature at the community",
        |v| v["agreements"].as_array().is_some_and(|x| x.len() == 1),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, a) = c.get(&community, "/v1/view/digest").await;
        let (_, b) = c
            .get(&district, &format!("/v1/view/digest?scope={community_id}"))
            .await;
        if a["digest"] == b["digest"] {
            break;
        }
        assert!(Instant::now() < deadline, "digests differ: {a} {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
