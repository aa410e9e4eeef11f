//! Criterion benchmarks of ingest on the generated Gulou district (×1),
//! each beside its limits in the same run and with the same throughput
//! unit (changes, or signatures: every generated change is signed), so
//! criterion prints them side by side:
//!
//! * the node's ingest: decode, signatures (amortised, PROTOCOL.md §3), the
//!   acceptance rule, automerge, one synced RocksDB batch per call;
//! * ed25519-dalek `verify_batch` of 256 on every signature (one core);
//! * the node's strict `verify_many` on every signature (one core);
//! * RocksDB synced batches of 256 of the same bytes;
//! * automerge `apply_changes`, one call per document.
//!
//! `cargo bench -p gongjian-engine --bench ingest` (also run by
//! `scripts/bench.sh`). `bench-district` prints the same figures as ratios.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gongjian_engine::Replica;
use gongjian_gen::{Profile, generate, wire_batches};
use gongjian_identity::{SignedChange, VerifyItem, change_signing_message, verify_on_one_core};
use gongjian_store::Store;

fn benches(c: &mut Criterion) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let data = generate(&Profile::district(), 1, now).expect("generate");
    let changes: Vec<&SignedChange> = data.docs.iter().flat_map(|d| &d.changes).collect();
    let n = changes.len() as u64;
    let signed: Vec<_> = changes
        .iter()
        .filter_map(|c| {
            c.signature()
                .map(|(k, s)| (*k, *s, change_signing_message(c.doc(), &c.hash())))
        })
        .collect();
    assert_eq!(signed.len() as u64, n, "every generated change is signed");

    let mut g = c.benchmark_group("ingest_district_x1");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));

    g.bench_function("node ingest (verify, rule, automerge, synced store)", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = Store::create(&dir.path().join("db")).expect("store");
                let mut r = Replica::open(store, data.root.public(), None).expect("replica");
                r.insert_records(data.records.clone()).expect("records");
                (dir, r)
            },
            |(dir, mut r)| {
                let mut accepted = 0;
                for batch in wire_batches(&data.docs, 4096) {
                    accepted += r.ingest(batch).expect("ingest").accepted.len();
                }
                assert_eq!(accepted as u64, n);
                drop(r);
                dir
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function("limit: ed25519-dalek verify_batch of 256", |b| {
        let keys: Vec<ed25519_dalek::VerifyingKey> = signed
            .iter()
            .map(|(k, _, _)| ed25519_dalek::VerifyingKey::from_bytes(k.as_bytes()).expect("key"))
            .collect();
        let sigs: Vec<ed25519_dalek::Signature> = signed
            .iter()
            .map(|(_, s, _)| ed25519_dalek::Signature::from_bytes(&s.0))
            .collect();
        let msgs: Vec<&[u8]> = signed.iter().map(|(_, _, m)| m.as_slice()).collect();
        b.iter(|| {
            for i in (0..signed.len()).step_by(256) {
                let end = (i + 256).min(signed.len());
                assert!(
                    ed25519_dalek::verify_batch(&msgs[i..end], &sigs[i..end], &keys[i..end])
                        .is_ok()
                );
            }
        })
    });

    g.bench_function(
        "limit: the node's strict verify_many of 256, one core",
        |b| {
            b.iter(|| {
                for chunk in signed.chunks(256) {
                    let items: Vec<VerifyItem<'_>> = chunk
                        .iter()
                        .map(|(key, sig, msg)| VerifyItem { key, msg, sig })
                        .collect();
                    assert!(verify_on_one_core(&items).iter().all(Result::is_ok));
                }
            })
        },
    );

    let wire: Vec<Vec<u8>> = changes.iter().map(|c| c.encode()).collect();
    g.bench_function("limit: RocksDB synced batches of 256, same bytes", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut opts = rocksdb::Options::default();
                opts.create_if_missing(true);
                let db = rocksdb::DB::open(&opts, dir.path()).expect("rocksdb");
                (dir, db)
            },
            |(dir, db)| {
                let mut w = rocksdb::WriteOptions::default();
                w.set_sync(true);
                for (i, chunk) in wire.chunks(256).enumerate() {
                    let mut batch = rocksdb::WriteBatch::default();
                    for (j, v) in chunk.iter().enumerate() {
                        batch.put(((i * 256 + j) as u64).to_be_bytes(), v);
                    }
                    db.write_opt(batch, &w).expect("write");
                }
                drop(db);
                dir
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function(
        "limit: automerge apply_changes, one call per document",
        |b| b.iter(|| gongjian_gen::apply_with_automerge(&data.docs)),
    );
    g.finish();
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
