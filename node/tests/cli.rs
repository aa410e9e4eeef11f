//! The `gongjian` command line as operators use it: a real binary, real data
//! dirs, real RocksDB.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;

#[test]
fn init_enrol_and_write_signed_needs_in_chinese() {
    let t = tree();
    let id = ok(&["id", "--data-dir", p(&t.community)]);
    for field in [
        "unit",
        "kind",
        "name",
        "public_key",
        "peer_id",
        "trust_root",
    ] {
        assert!(id[field].is_string(), "id has {field}");
    }
    assert_eq!(id["name"], "颐和路社区");
    assert_eq!(id["trust_root"], t.root.as_str());
    assert_eq!(id["certified"], true);
    let added = ok(&[
        "need",
        "add",
        "--json",
        "--data-dir",
        p(&t.community),
        "--title",
        "独居老人助餐志愿者",
        "--category",
        "志愿服务",
    ]);
    let need_id = added["id"].as_str().unwrap().to_owned();
    ok(&[
        "need",
        "status",
        "--json",
        "--data-dir",
        p(&t.community),
        "--id",
        &need_id,
        "--status",
        "in_progress",
    ]);
    let list = ok(&["need", "list", "--json", "--data-dir", p(&t.community)]);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["title"], "独居老人助餐志愿者");
    assert_eq!(rows[0]["category"], "志愿服务");
    assert_eq!(rows[0]["status"], "in_progress");
    assert_eq!(rows[0]["status_zh"], "办理中");
    let roster = ok(&["cert", "list", "--data-dir", p(&t.street)]);
    assert_eq!(roster["roster"][0]["name"], "颐和路社区");
    assert_eq!(roster["certificate"], "valid");
}

#[test]
fn tampered_foreign_and_wrong_certificates_are_refused() {
    let t = tree();
    let dir = t.community.parent().unwrap().to_owned();
    let c2 = dir.join("c2");
    init(
        &c2,
        "320106002002",
        "community",
        "北京西路社区",
        Some("320106002000"),
        Some(&t.root),
    );
    let key = ok(&["id", "--data-dir", p(&c2)])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = dir.join("c2.cert");
    ok(&[
        "cert",
        "issue",
        "--data-dir",
        p(&t.street),
        "--unit",
        "320106002002",
        "--kind",
        "community",
        "--name",
        "北京西路社区",
        "--key",
        &key,
        "--out",
        p(&file),
    ]);
    let good = std::fs::read(&file).unwrap();

    // A flipped byte in the certificate's name.
    let name = "北京西路社区".as_bytes();
    let pos = good.windows(name.len()).position(|w| w == name).unwrap();
    let mut bad = good.clone();
    bad[pos + 1] ^= 0x01; // still valid UTF-8, another character
    let tampered = dir.join("tampered.cert");
    std::fs::write(&tampered, &bad).unwrap();
    fails(
        &["cert", "install", "--data-dir", p(&c2), p(&tampered)],
        4,
        "bad signature",
    );
    // Truncated.
    std::fs::write(&tampered, &good[..good.len() - 7]).unwrap();
    fails(
        &["cert", "install", "--data-dir", p(&c2), p(&tampered)],
        3,
        "truncated",
    );
    // The certificate of another node's key.
    let other = dir.join("c3");
    init(
        &other,
        "320106002002",
        "community",
        "北京西路社区",
        Some("320106002000"),
        Some(&t.root),
    );
    fails(
        &["cert", "install", "--data-dir", p(&other), p(&file)],
        4,
        "no certificate for this node's key",
    );
    // Nothing was installed by the failures.
    assert_eq!(ok(&["id", "--data-dir", p(&c2)])["certified"], false);
    ok(&["cert", "install", "--data-dir", p(&c2), p(&file)]);
    assert_eq!(ok(&["id", "--data-dir", p(&c2)])["certified"], true);

    // A chain from another district's root.
    let foreign = dir.join("foreign");
    init(&foreign, "320105000000", "district", "秦淮区", None, None);
    let fs = dir.join("fs");
    init(
        &fs,
        "320105001000",
        "street",
        "夫子庙街道",
        Some("320105000000"),
        Some(&t.root),
    );
    let fkey = ok(&["id", "--data-dir", p(&fs)])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let ffile = dir.join("fs.cert");
    ok(&[
        "cert",
        "issue",
        "--data-dir",
        p(&foreign),
        "--unit",
        "320105001000",
        "--kind",
        "street",
        "--name",
        "夫子庙街道",
        "--key",
        &fkey,
        "--out",
        p(&ffile),
    ]);
    fails(
        &["cert", "install", "--data-dir", p(&fs), p(&ffile)],
        4,
        "pinned trust root",
    );

    // Wrong parent: a street cannot admit a community of another street.
    fails(
        &[
            "cert",
            "issue",
            "--data-dir",
            p(&t.street),
            "--unit",
            "320106003001",
            "--kind",
            "community",
            "--name",
            "x",
            "--key",
            &key,
            "--out",
            p(&file),
        ],
        3,
        "not within the street",
    );
    // A weak key.
    let weak = format!("ed25519:01{}", "00".repeat(31));
    fails(
        &[
            "cert",
            "issue",
            "--data-dir",
            p(&t.street),
            "--unit",
            "320106002003",
            "--kind",
            "community",
            "--name",
            "x",
            "--key",
            &weak,
            "--out",
            p(&file),
        ],
        4,
        "weak",
    );
}

#[test]
fn an_expired_certificate_is_refused_at_install_and_at_local_writes() {
    let t = tree();
    let later = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 400 * 86_400)
        .to_string();
    let out = bin()
        .args([
            "need",
            "add",
            "--json",
            "--data-dir",
            p(&t.community),
            "--title",
            "过期后写入",
        ])
        .env("GONGJIAN_FAKE_NOW", &later)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));
    assert_eq!(
        ok(&["need", "list", "--json", "--data-dir", p(&t.community)])
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn bad_arguments_get_clear_errors_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("x");
    fails(&["id", "--data-dir", p(&d)], 5, "no such data dir");
    fails(
        &[
            "init",
            "--data-dir",
            p(&d),
            "--unit",
            "32010600000",
            "--kind",
            "district",
            "--name",
            "x",
        ],
        3,
        "12-digit",
    );
    fails(
        &[
            "init",
            "--data-dir",
            p(&d),
            "--unit",
            "91350100M000100Y44",
            "--kind",
            "resident",
            "--name",
            "x",
            "--parent",
            "320106002000",
            "--trust-root",
            &format!("ed25519:{}", "ab".repeat(32)),
        ],
        3,
        "check character",
    );
    fails(
        &[
            "init",
            "--data-dir",
            p(&d),
            "--unit",
            "320106002001",
            "--kind",
            "community",
            "--name",
            "x",
            "--parent",
            "320106002000",
        ],
        3,
        "--trust-root",
    );
    fails(
        &[
            "init",
            "--data-dir",
            p(&d),
            "--unit",
            "320106000000",
            "--kind",
            "district",
            "--name",
            "x",
            "--listen",
            "not-an-addr",
        ],
        3,
        "multiaddr",
    );
    assert!(
        !d.join("config.toml").exists(),
        "nothing written by a refused init"
    );
    init(&d, "320106000000", "district", "鼓楼", None, None);
    fails(
        &[
            "init",
            "--data-dir",
            p(&d),
            "--unit",
            "320106000000",
            "--kind",
            "district",
            "--name",
            "x",
        ],
        5,
        "already initialised",
    );
    // Key files readable by others are refused.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.join("node.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    fails(&["id", "--data-dir", p(&d)], 4, "chmod 600");
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let t = tree();
    let mut child = bin()
        .args([
            "need",
            "add",
            "--json",
            "--data-dir",
            p(&t.community),
            "--title",
            "压力测试",
            "--repeat",
            "100000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    use std::io::BufRead;
    for line in std::io::BufReader::new(stdout).lines() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        acked.push(v["id"].as_str().unwrap().to_owned());
        if acked.len() == 40 {
            // SIGKILL mid-stream: the process may be inside a write.
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert_eq!(acked.len(), 40);
    let list = ok(&["need", "list", "--json", "--data-dir", p(&t.community)]);
    let held: std::collections::BTreeSet<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &acked {
        assert!(held.contains(id), "acknowledged need {id} lost");
    }
}

#[test]
fn restore_from_backup_moves_to_a_new_epoch() {
    let t = tree();
    ok(&[
        "need",
        "add",
        "--json",
        "--data-dir",
        p(&t.community),
        "--title",
        "备份前",
    ]);
    let backup = t.community.parent().unwrap().join("backup");
    let b = ok(&["backup", "--data-dir", p(&t.community), "--out", p(&backup)]);
    ok(&[
        "need",
        "add",
        "--json",
        "--data-dir",
        p(&t.community),
        "--title",
        "备份后",
    ]);
    let r = ok(&[
        "restore",
        "--data-dir",
        p(&t.community),
        "--from",
        p(&backup),
    ]);
    assert!(r["epoch"].as_u64().unwrap() > b["epoch"].as_u64().unwrap());
    ok(&[
        "need",
        "add",
        "--json",
        "--data-dir",
        p(&t.community),
        "--title",
        "恢复后",
    ]);
    let titles: Vec<String> = ok(&["need", "list", "--json", "--data-dir", p(&t.community)])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap().to_owned())
        .collect();
    assert!(titles.contains(&"备份前".to_owned()) && titles.contains(&"恢复后".to_owned()));
    assert!(
        !titles.contains(&"备份后".to_owned()),
        "the backup predates it"
    );
    let _ = &t.district;
}

#[test]
fn key_replacement_key_records_and_recovery() {
    let t = tree();
    let dir = t.community.parent().unwrap().to_owned();
    // A replacement computer for the community gets a certificate for its new key.
    let spare = dir.join("spare");
    init(
        &spare,
        "320106002001",
        "community",
        "颐和路社区",
        Some("320106002000"),
        Some(&t.root),
    );
    let new_key = ok(&["id", "--data-dir", p(&spare)])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = dir.join("spare.cert");
    ok(&[
        "cert",
        "renew",
        "--data-dir",
        p(&t.street),
        "--unit",
        "320106002001",
        "--key",
        &new_key,
        "--out",
        p(&file),
    ]);
    ok(&["cert", "install", "--data-dir", p(&spare), p(&file)]);
    assert_eq!(ok(&["id", "--data-dir", p(&spare)])["certified"], true);
    // The community names the new key a writer of its documents.
    let added = ok(&[
        "cert",
        "add-writer",
        "--data-dir",
        p(&t.community),
        "--key",
        &new_key,
    ]);
    assert!(added["key_add"].is_string());
    // Only a parent may recover, and it must say why.
    fails(
        &[
            "cert",
            "recover",
            "--data-dir",
            p(&t.community),
            "--unit",
            "320106002000",
            "--key",
            &new_key,
            "--reason",
            "x",
        ],
        7,
        "",
    );
    fails(
        &[
            "cert",
            "recover",
            "--data-dir",
            p(&t.street),
            "--unit",
            "320106002001",
            "--key",
            &new_key,
            "--reason",
            " ",
        ],
        3,
        "--reason",
    );
    ok(&[
        "cert",
        "recover",
        "--data-dir",
        p(&t.street),
        "--unit",
        "320106002001",
        "--key",
        &new_key,
        "--reason",
        "社区电脑损坏",
    ]);
    let list = ok(&["cert", "list", "--data-dir", p(&t.street)]);
    assert_eq!(
        list["recoveries"].as_array().unwrap().len(),
        1,
        "recoveries are shown"
    );
    // Revoking the old key: the street's roster marks it.
    ok(&[
        "cert",
        "revoke",
        "--data-dir",
        p(&t.street),
        "--key",
        ok(&["id", "--data-dir", p(&t.community)])["public_key"]
            .as_str()
            .unwrap(),
    ]);
    let list = ok(&["cert", "list", "--data-dir", p(&t.street)]);
    let keys = list["roster"][0]["keys"].as_array().unwrap();
    assert_eq!(keys.iter().filter(|k| k["revoked"] == true).count(), 1);
    assert_eq!(keys.iter().filter(|k| k["revoked"] == false).count(), 1);
    // A community has no authority over its street.
    let street_key = ok(&["id", "--data-dir", p(&t.street)])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    fails(
        &[
            "cert",
            "revoke",
            "--data-dir",
            p(&spare),
            "--key",
            &street_key,
        ],
        7,
        "no authority",
    );
}

#[test]
fn bundles_carry_a_communitys_needs_to_the_district_and_tampered_ones_change_nothing() {
    let t = tree();
    let dir = t.community.parent().unwrap().to_owned();
    for title in ["独居老人助餐志愿者", "楼道灯维修"] {
        ok(&[
            "need",
            "add",
            "--json",
            "--data-dir",
            p(&t.community),
            "--title",
            title,
        ]);
    }
    let file = dir.join("to-district.gjb");
    let out = ok(&[
        "bundle",
        "export",
        "--data-dir",
        p(&t.community),
        "--for",
        "320106000000",
        "--out",
        p(&file),
    ]);
    assert_eq!(out["changes"], 2);
    assert_eq!(out["documents"], 1);

    // Tampered on the way: refused, exit 4, the district unchanged.
    // What the store holds (the certificate's days left tick on).
    let held = || {
        let mut v = ok(&["status", "--json", "--data-dir", p(&t.district)]);
        v.as_object_mut().unwrap().remove("certificate");
        v
    };
    let before = held();
    assert_eq!(before["running"], false);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    let bad = dir.join("tampered.gjb");
    std::fs::write(&bad, &bytes).unwrap();
    fails(
        &["bundle", "import", "--data-dir", p(&t.district), p(&bad)],
        4,
        "nothing imported",
    );
    fails(
        &["bundle", "import", "--data-dir", p(&t.district), p(&bad)],
        4,
        "tampered",
    );
    // Not a bundle at all; made for another unit.
    fails(
        &[
            "bundle",
            "import",
            "--data-dir",
            p(&t.district),
            p(&t.district.join("config.toml")),
        ],
        3,
        "not a gongjian bundle",
    );
    fails(
        &["bundle", "import", "--data-dir", p(&t.street), p(&file)],
        3,
        "made for unit 320106000000",
    );
    assert_eq!(held(), before);

    // The honest bundle: the district, which never heard of the community
    // (its certificate was issued by the street), now lists its needs.
    let got = ok(&["bundle", "import", "--data-dir", p(&t.district), p(&file)]);
    assert_eq!(got["changes_accepted"], 2);
    let list = ok(&[
        "need",
        "list",
        "--json",
        "--data-dir",
        p(&t.district),
        "--unit",
        "320106002001",
    ]);
    let mut titles: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    titles.sort();
    assert_eq!(titles, ["楼道灯维修", "独居老人助餐志愿者"]);

    // Only what it lacks: the district's state, one more need.
    let state = dir.join("district.have");
    ok(&[
        "bundle",
        "state",
        "--data-dir",
        p(&t.district),
        "--for",
        "320106002001",
        "--out",
        p(&state),
    ]);
    ok(&[
        "need",
        "add",
        "--json",
        "--data-dir",
        p(&t.community),
        "--title",
        "社区花园认领",
    ]);
    let delta = dir.join("delta.gjb");
    fails(
        &[
            "bundle",
            "export",
            "--data-dir",
            p(&t.community),
            "--have",
            p(&state),
            "--out",
            p(&delta),
        ],
        3,
        "--have needs --for",
    );
    let out = ok(&[
        "bundle",
        "export",
        "--data-dir",
        p(&t.community),
        "--have",
        p(&state),
        "--for",
        "320106000000",
        "--out",
        p(&delta),
    ]);
    assert_eq!(out["made_for"], "320106000000");
    assert_eq!(out["changes"], 1);
    let got = ok(&["bundle", "import", "--data-dir", p(&t.district), p(&delta)]);
    assert_eq!(got["changes_accepted"], 1);
}

#[test]
fn config_check_with_environment_overrides() {
    let t = tree();
    let v = ok(&["config", "check", "--data-dir", p(&t.community)]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["effective"]["name"], "颐和路社区");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "certificate" && c["ok"] == true),
        "{v}"
    );
    // An override is applied and named.
    let out = bin()
        .args(["config", "check", "--data-dir", p(&t.community)])
        .env("GONGJIAN_API", "127.0.0.1:5999")
        .env("GONGJIAN_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["effective"]["api"], "127.0.0.1:5999");
    assert_eq!(v["effective"]["log_format"], "json");
    assert!(
        v["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("GONGJIAN_API")
    );
    // Bad overrides: exit 3, saying which.
    for (k, val, needle) in [
        ("GONGJIAN_API", "somewhere", "api"),
        ("GONGJIAN_RESYNC_SECS", "0", "resync_secs"),
        ("GONGJIAN_LOG_FORMAT", "xml", "log_format"),
        (
            "GONGJIAN_SCRUB_DOCS_PER_SECOND",
            "20000",
            "scrub_docs_per_second",
        ),
        ("GONGJIAN_LISTEN", "[\"not-a-multiaddr\"]", "multiaddr"),
        (
            "GONGJIAN_SETTLE_CHANGES_PER_SECOND",
            "2000000",
            "settle_changes_per_second",
        ),
        ("GONGJIAN_VIEW", "maybe", "VIEW"),
    ] {
        let out = bin()
            .args(["config", "check", "--data-dir", p(&t.community)])
            .env(k, val)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{k}={val}: {err}");
        assert!(err.contains(needle), "{k}={val}: {err}");
    }
    // A token readable by others fails the check.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        t.community.join("api.token"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = run(&["config", "check", "--data-dir", p(&t.community)]);
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "api token" && c["ok"] == false),
        "{v}"
    );
}

/// `demo generate` writes a district node's data directory holding a
/// generated district; the merged view over it shows the generator's
/// figures; bad arguments change nothing.
#[test]
fn demo_generate_writes_a_district_the_view_answers_from() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("district");
    let d = dir.to_str().unwrap();
    let out = ok(&[
        "demo",
        "generate",
        "--profile",
        "small",
        "--seed",
        "5",
        "--out",
        d,
        "--json",
    ]);
    let summary = &out["summary"];
    assert_eq!(summary["units"]["community"], 4, "{out}");
    assert!(summary["changes"].as_u64().unwrap() > 100, "{out}");
    // The view, through the same API the daemon serves (in-process here).
    let projects = ok(&[
        "view",
        "items",
        "--json",
        "--data-dir",
        d,
        "--list",
        "project",
        "--limit",
        "1000",
    ]);
    assert_eq!(
        projects["items"].as_array().unwrap().len() as u64,
        summary["items"]["project"].as_u64().unwrap()
    );
    let stats = ok(&[
        "view",
        "stats",
        "--json",
        "--data-dir",
        d,
        "--by",
        "community",
    ]);
    assert!(
        stats["stats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["area_name"].as_str().is_some_and(|n| n.ends_with("社区"))),
        "{stats}"
    );
    fails(
        &["demo", "generate", "--profile", "small", "--out", d],
        5,
        "already initialised",
    );
    let other = tmp.path().join("other");
    let o = other.to_str().unwrap();
    fails(
        &["demo", "generate", "--profile", "town", "--out", o],
        3,
        "not one of district, small",
    );
    fails(
        &["demo", "generate", "--scale", "0", "--out", o],
        3,
        "--scale",
    );
    fails(
        &[
            "demo",
            "hubs",
            "--profile",
            "small",
            "--later",
            "2",
            "--out",
            o,
        ],
        3,
        "--later: 2 is not in (0, 1]",
    );
    assert!(!other.exists(), "refused arguments create nothing");
}

/// A node whose certificate runs out within 30 days says so in its log
/// when it starts (and every six hours), with the days left.
#[test]
fn a_certificate_about_to_expire_is_logged_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let district = tmp.path().join("district");
    let street = tmp.path().join("street");
    let d = init(
        &district,
        "320106000000",
        "district",
        "南京市鼓楼区",
        None,
        None,
    );
    let root = d["trust_root"].as_str().unwrap().to_owned();
    init(
        &street,
        "320106002000",
        "street",
        "宁海路街道",
        Some("320106000000"),
        Some(&root),
    );
    enrol_for_days(
        &district,
        &street,
        "320106002000",
        "street",
        "宁海路街道",
        10,
    );
    let log = tmp.path().join("street.log");
    let mut daemon =
        common::daemon::start_with_stderr(&street, std::fs::File::create(&log).unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("certificate expires soon") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // SIGTERM: a clean stop, exit 0 (nothing may still hold the node).
    let term = std::process::Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = daemon.child.wait().unwrap();
    assert!(text.contains("certificate expires soon"), "{text}");
    assert!(text.contains("days_left"), "{text}");
    assert!(
        status.success(),
        "stopped cleanly: {status:?}: {}",
        std::fs::read_to_string(&log).unwrap()
    );
}
