//! The HTTP API over a real socket, on real daemons (`gongjian run`) that
//! sync over libp2p on 127.0.0.1: writes on a community show up in the
//! district's merged view with their provenance, both report one digest for
//! the community's scope, every error status, and acknowledged writes
//! survive kill -9. (Grids, whistles, agreements and the CLI through a
//! daemon: `api_civic.rs`.)

mod common;

use common::daemon::*;
use common::*;
use reqwest::StatusCode;
use serde_json::json;

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
    assert!(o["paths"]["/v1/items"]["post"]["responses"]["201"].is_object());
    assert!(o["paths"]["/v1/items/{id}/status"]["post"]["responses"]["200"].is_object());

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
    let responsibility_docs = |v: serde_json::Value| {
        v["docs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["type"] == "responsibilities")
            .count()
    };
    assert_eq!(
        responsibility_docs(c.get(&community, "/v1/docs").await.1),
        0
    );
    for (body, status) in [
        // A list this unit never wrote: no document is created for it.
        (
            json!({"list": "responsibility", "title": ""}),
            StatusCode::BAD_REQUEST,
        ),
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
        ("/v1/view/items/%FF%FE", StatusCode::BAD_REQUEST),
        ("/v1/items", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let (s, e) = c.get(&community, path).await;
        assert_eq!(s, status, "{path}: {e}");
        assert!(e["error"]["code"].is_string(), "{path}: {e}");
    }
    // A cursor at the edge of i64 is a page like any other.
    let (s, e) = c
        .get(&community, "/v1/view/items?cursor=-9223372036854775808:x")
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
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
    assert_eq!(
        responsibility_docs(c.get(&community, "/v1/docs").await.1),
        0,
        "no new document either"
    );

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
    let (_, digest_before) = c.get(&community, "/v1/view/digest").await;
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
    // The view kept up change by change and the view rebuilt at start
    // are the same view.
    let (_, digest_after) = c.get(&restarted, "/v1/view/digest").await;
    assert!(digest_before["digest"].is_string());
    assert_eq!(digest_after["digest"], digest_before["digest"]);
}

/// `gongjian demo hubs --profile small --seed SEED EXTRA… --out OUT`, its
/// ports from 30,000 up, apart per test by `salt` (tests run at once).
fn demo_hubs(out: &std::path::Path, seed: &str, salt: u32, extra: &[&str]) -> serde_json::Value {
    let port = (30_000 + ((std::process::id() + salt) % 20_000) as u16).to_string();
    let mut args = vec!["demo", "hubs", "--profile", "small", "--seed", seed];
    args.extend_from_slice(extra);
    args.extend(["--out", p(out), "--port", &port]);
    ok(&args)
}

/// `demo hubs`: a street hub holding what its street may see, and a
/// district holding nothing but its own certificate; the district, started
/// second, gets every document and change from the hub over libp2p.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_district_syncs_everything_from_its_street_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hubs");
    let setup = demo_hubs(&out, "4", 0, &[]);
    let hubs = setup["hubs"].as_array().unwrap();
    assert_eq!(hubs.len(), 1, "the small profile has one street: {setup}");
    assert_eq!(
        hubs[0]["changes"], setup["changes"],
        "the street sees its whole subtree"
    );
    let hub = start(std::path::Path::new(hubs[0]["dir"].as_str().unwrap()));
    let district = start(std::path::Path::new(setup["district"].as_str().unwrap()));
    let c = Client {
        http: reqwest::Client::new(),
    };
    let (docs, changes) = (setup["documents"].clone(), setup["changes"].clone());
    c.until(
        &district,
        "/v1/status",
        "every document and change from the hub",
        |v| v["documents"] == docs && v["changes"] == changes,
    )
    .await;
    // The view answers from what came: the hub's and the district's
    // digests of the street's scope agree.
    let street = hubs[0]["unit"].as_str().unwrap();
    c.until(
        &district,
        &format!("/v1/view/digest?scope={street}"),
        "the view",
        |_| true,
    )
    .await;
    let (_, a) = c
        .get(&district, &format!("/v1/view/digest?scope={street}"))
        .await;
    let (_, b) = c
        .get(&hub, &format!("/v1/view/digest?scope={street}"))
        .await;
    assert_eq!(a["digest"], b["digest"]);
}

/// A node configured without the view (`view = false`, as a hub that only
/// stores and relays) takes a whole street's sync with application
/// deferred, settles it when idle, and answers `/v1/view/*` with 503; set
/// back to keep a view, it holds what the hub holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_view_stores_then_settles_what_it_syncs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hubs");
    let setup = demo_hubs(&out, "5", 3_571, &[]);
    let hubs = setup["hubs"].as_array().unwrap();
    let district_dir = std::path::Path::new(setup["district"].as_str().unwrap());
    let config = district_dir.join("config.toml");
    let keep = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("view = false\n{keep}")).unwrap();
    let hub = start(std::path::Path::new(hubs[0]["dir"].as_str().unwrap()));
    let district = start(district_dir);
    let c = Client {
        http: reqwest::Client::new(),
    };
    let (docs, changes) = (setup["documents"].clone(), setup["changes"].clone());
    c.until(
        &district,
        "/v1/status",
        "every document and change from the hub, all settled",
        |v| {
            v["documents"] == docs
                && v["changes"] == changes
                && v["network"]["settle"]["changes"] == changes
                && v["network"]["settle"]["waiting"] == false
        },
    )
    .await;
    let (s, v) = c.get(&district, "/v1/view/items").await;
    assert_eq!(s, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(error_code(&v), "no_view");
    // Restarted keeping a view: it is built from what was stored, and it
    // is the hub's.
    drop(district);
    std::fs::write(&config, keep).unwrap();
    let district = start(district_dir);
    let street = hubs[0]["unit"].as_str().unwrap();
    let (s, a) = c
        .get(&district, &format!("/v1/view/digest?scope={street}"))
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{a}");
    let (_, b) = c
        .get(&hub, &format!("/v1/view/digest?scope={street}"))
        .await;
    assert_eq!(a["digest"], b["digest"]);
}

/// `demo hubs --later`: a district that synced before an outage meets its
/// hub again, which meanwhile got one later change to a share of the
/// documents; the district ends with exactly those changes more, and the
/// same view of the street as the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_district_back_from_an_outage_gets_the_later_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hubs");
    let setup = demo_hubs(&out, "4", 7_919, &["--later", "0.05"]);
    let later = setup["later"]["changes"].as_u64().unwrap();
    assert!(later > 0, "{setup}");
    let hubs = setup["hubs"].as_array().unwrap();
    assert_eq!(
        hubs[0]["changes"].as_u64().unwrap(),
        setup["changes"].as_u64().unwrap() + later,
        "the hub holds the later changes: {setup}"
    );
    let district_dir = std::path::Path::new(setup["district"].as_str().unwrap());
    let c = Client {
        http: reqwest::Client::new(),
    };
    // Before the hub is up, the district holds everything but them.
    let district = start(district_dir);
    let (_, before) = c.get(&district, "/v1/status").await;
    assert_eq!(before["changes"], setup["changes"], "{before}");
    let hub = start(std::path::Path::new(hubs[0]["dir"].as_str().unwrap()));
    let want = setup["changes"].as_u64().unwrap() + later;
    c.until(&district, "/v1/status", "the later changes", |v| {
        v["changes"].as_u64() == Some(want)
    })
    .await;
    let street = hubs[0]["unit"].as_str().unwrap();
    let digest = format!("/v1/view/digest?scope={street}");
    c.until(&district, &digest, "the same view as the hub", |_| true)
        .await;
    let (_, a) = c.get(&district, &digest).await;
    let (_, b) = c.get(&hub, &digest).await;
    assert_eq!(a["digest"], b["digest"]);
    // The frames that brought the later changes were timed to the view.
    let (_, st) = c.get(&district, "/v1/status").await;
    let lag = &st["network"]["view_lag"];
    assert!(lag["samples"].as_u64().unwrap_or(0) > 0, "{st}");
    let (p50, p99) = (
        lag["p50_seconds"].as_f64().unwrap_or(-1.0),
        lag["p99_seconds"].as_f64().unwrap_or(-1.0),
    );
    assert!(0.0 < p50 && p50 <= p99, "{lag}");
    let (_, metrics) = c.get_text(&district, "/metrics").await;
    assert!(
        metrics.contains("gongjian_view_lag_p99_seconds"),
        "{metrics}"
    );
}
