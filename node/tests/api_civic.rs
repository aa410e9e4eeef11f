//! Grids, problems escalated and handled, whistles and responses,
//! agreements signed by both parties, matches, exports and the command line
//! through a running daemon, on three real daemons syncing over libp2p.

mod common;

use std::time::{Duration, Instant};

use common::daemon::*;
use common::*;
use reqwest::StatusCode;
use serde_json::json;

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
    // A live backup through the running daemon (a RocksDB checkpoint).
    let bk = t.community.parent().unwrap().join("community.backup");
    let b = ok(&["backup", "--data-dir", p(&t.community), "--out", p(&bk)]);
    assert_eq!(b["backup"], p(&bk), "{b}");
    assert!(bk.join("CURRENT").exists(), "a RocksDB checkpoint");
    fails(
        &["backup", "--data-dir", p(&t.community), "--out", p(&bk)],
        3,
        "already exists",
    );
    let (s, e) = c
        .post(&community, "/v1/backup", json!({"out": "relative/dir"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
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
        handled["status"], "resolved",
        "the handler's status is shown"
    );
    assert_eq!(handled["owner_status"], "open", "the owner's is kept");
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
    let (s, e) = c
        .post(
            &community,
            "/v1/agreements",
            json!({"title": "x", "parties": [street_id], "start": now, "end": i64::MAX}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not a date: {e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("between 2000 and 2100")
    );
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
    // Scope: the community lists what it holds of its street's (a unit
    // above it), which its own scope leaves out; a unit neither above nor
    // below is refused.
    c.until(
        &community,
        &format!("/v1/view/items?scope={street_id}&list=resource"),
        "the street's resource at the community",
        |v| {
            v["items"]
                .as_array()
                .is_some_and(|x| x.iter().any(|i| i["id"] == res["id"]))
        },
    )
    .await;
    let (_, own) = c.get(&community, "/v1/view/items?list=resource").await;
    assert!(
        own["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["unit"] == community_id),
        "{own}"
    );
    for path in [
        "/v1/view/items?scope=320106003000",
        "/v1/view/stats?scope=320106003000",
        "/v1/view/matches?scope=320106003000",
    ] {
        let (s, e) = c.get(&community, path).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {e}");
    }
    let (s, st) = c
        .get(&community, &format!("/v1/view/stats?scope={street_id}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(st["scope"], street_id);
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
