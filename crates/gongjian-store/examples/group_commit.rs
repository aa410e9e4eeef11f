//! Synced commit throughput of the store: one batch at a time (each waits
//! for its fsync) against batches queued and acknowledged by group commit.
//! `CARGO_TARGET_DIR=~/.cache/gongjian/target cargo run -p gongjian-store --example group_commit [N]`

use std::time::Instant;

use gongjian_identity::{Certificate, RecordBody, Secret, UnitKind};
use gongjian_store::{Batch, Store};

fn batch(i: u32, signer: &Secret, subject: &Secret) -> Batch {
    let mut b = Batch::new();
    let rec = Certificate {
        subject: subject.public(),
        unit: "320106002000".parse().expect("valid id"),
        kind: UnitKind::Street,
        parent: Some("320106000000".parse().expect("valid id")),
        name: format!("街道{i}"),
        not_before: 0,
        not_after: u64::from(i),
    }
    .sign(signer);
    b.put_record(&rec);
    b
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let signer = Secret::from_seed([1; 32]);
    let subject = Secret::from_seed([2; 32]);
    let batches: Vec<Batch> = (0..2 * n).map(|i| batch(i, &signer, &subject)).collect();
    let mut batches = batches.into_iter();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::create(dir.path()).expect("store");

    let t = Instant::now();
    let s0 = store.sync_count();
    for _ in 0..n {
        store
            .commit_blocking(batches.next().expect("batch"))
            .expect("commit");
    }
    let one = t.elapsed();
    let syncs_one = store.sync_count() - s0;

    let t = Instant::now();
    let s0 = store.sync_count();
    let pending: Vec<_> = (0..n)
        .map(|_| {
            store
                .submit(batches.next().expect("batch"))
                .expect("submit")
        })
        .collect();
    for p in pending {
        p.wait().expect("durable");
    }
    let grouped = t.elapsed();
    let syncs_grouped = store.sync_count() - s0;

    println!(
        "one at a time: {n} batches, {syncs_one} synced writes, {:.0} batches/s",
        f64::from(n) / one.as_secs_f64()
    );
    println!(
        "queued:        {n} batches, {syncs_grouped} synced writes, {:.0} batches/s",
        f64::from(n) / grouped.as_secs_f64()
    );
}
