//! Faults against real daemons, quick versions of the `scripts/` battery:
//! writes acknowledged over HTTP survive SIGKILL at a random moment, and
//! the store then verifies clean (`gongjian verify`); a flipped byte on
//! disk is found by `gongjian verify`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::daemon::*;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Writes needs until the request fails (the daemon was killed); every
/// write answered 201 is recorded as (id, title).
async fn writer(api: String, token: String, w: usize, acked: Arc<Mutex<Vec<(String, String)>>>) {
    let http = reqwest::Client::new();
    for n in 0.. {
        let title = format!("断电测试 写入者{w} 第{n}条");
        let r = http
            .post(format!("{api}/v1/items"))
            .bearer_auth(&token)
            .json(&json!({"list": "need", "title": title, "category": "助老"}))
            .send()
            .await;
        let Ok(r) = r else { return };
        if r.status() != StatusCode::CREATED {
            return;
        }
        let Ok(v) = r.json::<Value>().await else {
            return;
        };
        let id = v["id"].as_str().expect("an id").to_owned();
        acked.lock().unwrap().push((id, title));
    }
}

fn verify_clean(dir: &std::path::Path) -> Value {
    let out = run(&["verify", "--data-dir", p(dir)]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "verify after a crash: {}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["problems"], json!([]));
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_the_store_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    init(&dir, "320106000000", "district", "鼓楼区", None, None);
    let c = Client {
        http: reqwest::Client::new(),
    };
    let mut acked: Vec<(String, String)> = Vec::new();
    for cycle in 0..3u64 {
        let mut d = start(&dir);
        c.until(&d, "/ready", "ready", |_| true).await;
        for (id, title) in &acked {
            let (s, v) = c.get(&d, &format!("/v1/view/items/{id}")).await;
            assert_eq!(s, StatusCode::OK, "cycle {cycle}: acknowledged {id} lost");
            assert_eq!(v["title"], json!(title));
        }
        let got = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..4)
            .map(|w| tokio::spawn(writer(d.api.clone(), d.token.clone(), w, got.clone())))
            .collect();
        // Kill at a moment that differs per cycle, writes in flight.
        let want = 10 + 7 * cycle as usize;
        while got.lock().unwrap().len() < want {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(3 * cycle)).await;
        d.child.kill().unwrap(); // SIGKILL
        d.child.wait().unwrap();
        for w in writers {
            w.await.unwrap();
        }
        let got = std::mem::take(&mut *got.lock().unwrap());
        assert!(got.len() >= want);
        acked.extend(got);
        drop(d);
        let report = verify_clean(&dir);
        assert!(report["changes"].as_u64().unwrap() >= acked.len() as u64);
    }
    let d = start(&dir);
    c.until(&d, "/ready", "ready", |_| true).await;
    for (id, title) in &acked {
        let (s, v) = c.get(&d, &format!("/v1/view/items/{id}")).await;
        assert_eq!(s, StatusCode::OK, "acknowledged {id} lost");
        assert_eq!(v["title"], json!(title));
    }
}

/// Flushes the store's memtables into table files and compacts them, so a
/// byte flipped in a table file is in data RocksDB must read back.
fn compact(db_dir: &std::path::Path) {
    let opts = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&opts, db_dir).unwrap();
    let db = rocksdb::DB::open_cf(&opts, db_dir, &names).unwrap();
    for n in &names {
        let cf = db.cf_handle(n).unwrap();
        db.flush_cf(&cf).unwrap();
        db.compact_range_cf(&cf, None::<&[u8]>, None::<&[u8]>);
    }
}

#[test]
fn verify_finds_a_byte_flipped_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    init(&dir, "320106000000", "district", "鼓楼区", None, None);
    for n in 0..40 {
        ok(&[
            "item",
            "add",
            "--json",
            "--data-dir",
            p(&dir),
            "--list",
            "need",
            "--title",
            &format!("校验测试第{n}条：为颐和路社区独居老人送餐"),
        ]);
    }
    verify_clean(&dir);
    compact(&dir.join("db"));
    verify_clean(&dir);
    // The largest table file holds the changes; flip bytes in its middle.
    let sst = std::fs::read_dir(dir.join("db"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a table file");
    let mut bytes = std::fs::read(&sst).unwrap();
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&sst, bytes).unwrap();
    let out = run(&["verify", "--data-dir", p(&dir)]);
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
    assert!(
        report.to_string().to_lowercase().contains("corrupt")
            || report.to_string().contains("checksum"),
        "{report}"
    );
}
