//! The district benchmarks of BENCHMARKS.md, in one process, each figure
//! beside its limit measured in the same run on the same machine:
//!
//! * ingest of the generated district (verify, acceptance rule, automerge,
//!   synced RocksDB batches, then the view built) beside ed25519 batch
//!   verification of the same signatures, RocksDB synced batches of 256 of
//!   the same bytes, and automerge's `apply_changes` one call per document;
//! * the merged view's common queries (what the API handlers do, JSON
//!   included): p50 and p99;
//! * view lag: from a signed change stored to its rows updated;
//! * restart: store and replica opened, view rebuilt.
//!
//! `cargo run -p gongjian-tests --bin bench-district -- [--scale 10] [--seed 1] [--hub-runs 5] [--json] [--only view-ingest]`
//! (`scripts/bench.sh` runs it with the daemon figures.) With
//! `BENCH_WINDOWS=1` each view-node ingest also prints its window in
//! seconds since boot, for `perf record -k boottime` and `perf report
//! --time FROM,TO`: a profile of the ingest alone.

use std::time::{Duration, Instant};

use gongjian_engine::{LocalIdentity, Replica};
use gongjian_gen::{Profile, apply_with_automerge, automerge_doc, generate, wire_batches};
use gongjian_identity::{
    DocType, PublicKey, Signature, SignedChange, VerifyItem, change_signing_message,
    verify_on_one_core,
};
use gongjian_model::{ItemStatus, ListDoc};
use gongjian_store::Store;
use gongjian_view::{AgreementQuery, ItemQuery, PendingRows, StatsBy, View};
use serde_json::json;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Times `f` `n` times after a warm-up; p50 and p99 in milliseconds.
fn latency(n: usize, mut f: impl FnMut() -> usize) -> (f64, f64, usize) {
    let mut size = 0;
    for _ in 0..3 {
        size = f();
    }
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99), size)
}

/// Times the node's strict `verify_many` over signatures (key, signature,
/// signed message), 256 at a time on this one core (`verify_many` itself
/// puts a batch of 32 or more on two); asserts each verifies.
fn time_verify_many<M: AsRef<[u8]>>(signed: &[(PublicKey, Signature, M)]) -> Duration {
    let t = Instant::now();
    for chunk in signed.chunks(256) {
        let items: Vec<VerifyItem<'_>> = chunk
            .iter()
            .map(|(key, sig, msg)| VerifyItem {
                key,
                msg: msg.as_ref(),
                sig,
            })
            .collect();
        assert!(verify_on_one_core(&items).iter().all(Result::is_ok));
    }
    t.elapsed()
}

/// CPU seconds (user + system) this process, and its main thread, spent
/// so far, from `/proc` (in clock ticks of 10 ms).
fn cpu_seconds() -> (f64, f64) {
    let ticks = |path: &str| -> f64 {
        let stat = std::fs::read_to_string(path).unwrap_or_default();
        // Fields after the command's closing parenthesis: utime is the
        // 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
    };
    let main = format!("/proc/self/task/{}/stat", std::process::id());
    (ticks("/proc/self/stat"), ticks(&main))
}

/// A view node's ingest of `docs`, 4,096 changes a call: the rows taken
/// from each document as ingest builds it and folded in after each call (as
/// the daemon does). Its time, the view folded so, and the CPU the process
/// spent meanwhile (all its threads, then the calling one); every change
/// must be accepted.
fn view_node_ingest(
    replica: &mut Replica,
    docs: &[gongjian_gen::Doc],
) -> (Duration, View, (f64, f64)) {
    let pending = PendingRows::default();
    replica.on_built(pending.hook());
    let mut folded = View::build(replica);
    let mut accepted = 0;
    // Encoded before the clock starts: what a node receives is bytes
    // (automerge's pass, beside it, is not timed encoding either).
    let batches: Vec<Vec<Vec<u8>>> = wire_batches(docs, 4096).collect();
    let cpu = cpu_seconds();
    let t = Instant::now();
    for batch in batches {
        accepted += replica.ingest(batch).expect("ingest").accepted.len();
        pending.fold_into(&mut folded, replica);
    }
    let took = t.elapsed();
    let after = cpu_seconds();
    if std::env::var_os("BENCH_WINDOWS").is_some() {
        // The ingest's window in seconds since boot (`perf record -k
        // boottime` lines up with it), for a profile of the ingest alone.
        let up = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
        let up: f64 = up
            .split_whitespace()
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0.0);
        eprintln!("window {:.3} {:.3}", up - took.as_secs_f64(), up);
    }
    let cpu = (after.0 - cpu.0, after.1 - cpu.1);
    eprintln!(
        "view-node ingest: {:.2} s, CPU {:.2} s ({:.2} s on the calling thread)",
        took.as_secs_f64(),
        cpu.0,
        cpu.1
    );
    let n: usize = docs.iter().map(|d| d.changes.len()).sum();
    assert_eq!(accepted, n, "every generated change is accepted");
    (took, folded, cpu)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scale: f64 = arg(&args, "--scale", 1.0);
    let seed: u64 = arg(&args, "--seed", 1);
    let runs: usize = arg(&args, "--queries", 300);
    let hub_runs: usize = arg(&args, "--hub-runs", 5);
    let as_json = args.iter().any(|a| a == "--json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();

    let t = Instant::now();
    let data = generate(&Profile::district().scaled(scale), seed, now).expect("generate");
    let generate_s = t.elapsed().as_secs_f64();
    let changes: Vec<&SignedChange> = data.docs.iter().flat_map(|d| &d.changes).collect();
    let wire: Vec<Vec<u8>> = changes.iter().map(|c| c.encode()).collect();
    let bytes: usize = wire.iter().map(Vec::len).sum();
    let n = changes.len();
    eprintln!(
        "district ×{scale}: {} documents, {n} changes, {bytes} bytes (generated in {generate_s:.1} s)",
        data.docs.len()
    );

    // Limit 1: ed25519-dalek's batch verification of every signature, 256
    // at a time, on one core; then the node's own `verify_many` (which
    // also refuses small-order and non-canonical R, to agree with
    // `verify_strict`).
    let signed: Vec<_> = changes
        .iter()
        .filter_map(|c| {
            c.signature()
                .map(|(k, s)| (*k, *s, change_signing_message(c.doc(), &c.hash())))
        })
        .collect();
    // Keys decompressed and signatures parsed before the clock starts, as
    // in the criterion bench: the limit is the batch equation itself.
    let msgs: Vec<&[u8]> = signed.iter().map(|(_, _, m)| m.as_slice()).collect();
    let sigs: Vec<ed25519_dalek::Signature> = signed
        .iter()
        .map(|(_, s, _)| ed25519_dalek::Signature::from_bytes(&s.0))
        .collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = signed
        .iter()
        .map(|(k, _, _)| ed25519_dalek::VerifyingKey::from_bytes(k.as_bytes()).expect("key"))
        .collect();
    let verify_batch_pass = || {
        let t = Instant::now();
        for i in (0..signed.len()).step_by(256) {
            let end = (i + 256).min(signed.len());
            assert!(
                ed25519_dalek::verify_batch(&msgs[i..end], &sigs[i..end], &keys[i..end]).is_ok()
            );
        }
        t.elapsed()
    };
    // Taken again just before each hub ingest below, which is compared with
    // that pass.
    let mut verify_times = vec![verify_batch_pass()];
    let verify = time_verify_many(&signed);

    // Limit 2: RocksDB synced batches of 256 of the same bytes.
    let tmp = tempfile::tempdir().expect("tempdir");
    let rocks_s = {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, tmp.path().join("raw")).expect("rocksdb");
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(true);
        let t = Instant::now();
        for (i, chunk) in wire.chunks(256).enumerate() {
            let mut b = rocksdb::WriteBatch::default();
            for (j, v) in chunk.iter().enumerate() {
                b.put(((i * 256 + j) as u64).to_be_bytes(), v);
            }
            db.write_opt(b, &w).expect("write");
        }
        t.elapsed()
    };

    // Limit 3: automerge, each document's changes applied in one call (and
    // the document dropped). The median of three passes: one pass varies by
    // a third from run to run on this machine.
    let automerge_pass = || {
        let t = Instant::now();
        apply_with_automerge(&data.docs);
        t.elapsed()
    };
    let mut automerge_times: Vec<Duration> = (0..3).map(|_| automerge_pass()).collect();
    automerge_times.sort();
    let automerge_t = automerge_times[1];
    // What two cores give here: the same documents applied in two halves
    // on two threads at once (2.0 if the cores shared nothing), the median
    // of three passes. The ceiling below assumes they give that much.
    let two_core_pass = || {
        let (a, b) = data.docs.split_at(data.docs.len() / 2);
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| apply_with_automerge(b));
            apply_with_automerge(a);
        });
        t.elapsed()
    };
    let mut two_core_times: Vec<Duration> = (0..3).map(|_| two_core_pass()).collect();
    two_core_times.sort();
    let two_core_speedup = automerge_t.as_secs_f64() / two_core_times[1].as_secs_f64();
    eprintln!("automerge on two threads at once: {two_core_speedup:.2} × one thread's rate");

    // `--only view-ingest`: the view node's ingest alone, beside automerge
    // (what `perf record` of the view node's ingest wants, without the rest).
    if args
        .windows(2)
        .any(|w| w[0] == "--only" && w[1] == "view-ingest")
    {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Three runs, each into a fresh store and each after a pass of
        // automerge alone (this machine's speed drifts by a third within
        // a minute): their rates, and the median of the three ratios.
        let mut rates = Vec::new();
        let mut ratios = Vec::new();
        for k in 0..3 {
            let am = automerge_pass();
            let store = Store::create(&tmp.path().join(format!("db-view-{k}"))).expect("store");
            let mut with_view = Replica::open(store, data.root.public(), None).expect("replica");
            with_view
                .insert_records(data.records.clone())
                .expect("records");
            let (took, _, _) = view_node_ingest(&mut with_view, &data.docs);
            rates.push((rate(n, took), rate(n, am)));
            ratios.push(rate(n, took) / rate(n, am));
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "view-node ingest, automerge just before (changes/s): {:.0?}; ratio {:.2} (median of {ratios:.2?})",
            rates, ratios[1]
        );
        return;
    }

    // The bytes automerge's own sync protocol sends to bring an empty peer
    // up to each document (unsigned), one document at a time.
    let mut am_sync_bytes = 0usize;
    for d in &data.docs {
        use automerge::sync::SyncDoc;
        let mut full = automerge_doc(d);
        let mut empty = automerge::Automerge::new();
        let (mut a, mut b) = (automerge::sync::State::new(), automerge::sync::State::new());
        for _ in 0..100 {
            let m1 = full.generate_sync_message(&mut a);
            let m2 = empty.generate_sync_message(&mut b);
            if m1.is_none() && m2.is_none() {
                break;
            }
            if let Some(m) = m1 {
                am_sync_bytes += m.clone().encode().len();
                empty.receive_sync_message(&mut b, m).expect("sync");
            }
            if let Some(m) = m2 {
                am_sync_bytes += m.clone().encode().len();
                full.receive_sync_message(&mut a, m).expect("sync");
            }
        }
        assert_eq!(
            full.get_heads(),
            empty.get_heads(),
            "automerge sync converged"
        );
    }

    // A node on a fresh store in `tmp/NAME`, holding the district's records.
    let fresh = |name: &str| {
        let store = Store::create(&tmp.path().join(name)).expect("store");
        let mut r = Replica::open(store, data.root.public(), None).expect("replica");
        r.insert_records(data.records.clone()).expect("records");
        r
    };

    // The product: a district node's ingest, then its view.
    let district = &data.units[0];
    let mut replica = fresh("db");
    // The batches encoded before each clock starts (a node receives bytes).
    let wire: Vec<Vec<Vec<u8>>> = wire_batches(&data.docs, 4096).collect();
    let batches = wire.clone();
    let t = Instant::now();
    let mut accepted = 0;
    for batch in batches {
        accepted += replica.ingest(batch).expect("ingest").accepted.len();
    }
    let ingest = t.elapsed();
    assert_eq!(accepted, n, "every generated change is accepted");
    let t = Instant::now();
    let view = View::build(&replica);
    let view_build = t.elapsed();

    // The view node's ceiling on this machine: the work its ingest cannot
    // avoid, each part timed alone on one core, then shared perfectly by
    // the machine's two cores (automerge's part of a document cannot be
    // split). The parts: the signatures ingest checks (of each document,
    // each actor's newest and its checkpoints, as `check_signatures` picks
    // them when a document comes whole), the synced store, automerge, and
    // the rows extracted from each document built.
    let checked: Vec<_> = data
        .docs
        .iter()
        .flat_map(|d| {
            let mut top: std::collections::BTreeMap<_, &SignedChange> = Default::default();
            let mut out = Vec::new();
            for c in d.changes.iter().filter(|c| c.signature().is_some()) {
                let h = c.header();
                if h.seq.is_multiple_of(gongjian_engine::CHECKPOINT_SEQ)
                    || c.chunk().len() > gongjian_engine::CHECKPOINT_BYTES
                {
                    out.push(c);
                }
                let e = top.entry(h.actor).or_insert(c);
                if e.header().seq < h.seq {
                    *e = c;
                }
            }
            out.extend(top.into_values());
            out.sort_by_key(|c| c.hash());
            out.dedup_by_key(|c| c.hash());
            out
        })
        .map(|c| {
            let (k, s) = c.signature().expect("signed");
            (*k, *s, change_signing_message(c.doc(), &c.hash()))
        })
        .collect();
    let verify_checked = time_verify_many(&checked);
    let rows = PendingRows::default();
    let extract = rows.hook();
    let mut extract_t = Duration::ZERO;
    for d in &data.docs {
        let mut am = replica.load(&d.id).expect("load");
        let mut heads: Vec<gongjian_identity::Hash> = am
            .get_heads()
            .iter()
            .map(|h| gongjian_identity::Hash(h.0))
            .collect();
        heads.sort();
        let t = Instant::now();
        extract(replica.trust(), &d.id, &heads, &mut am);
        extract_t += t.elapsed();
    }
    drop(extract);
    drop(rows);
    let parts = verify_checked + rocks_s + automerge_t + extract_t;
    let ceiling =
        automerge_t.as_secs_f64() / automerge_t.as_secs_f64().max(parts.as_secs_f64() / 2.0);
    // The same, with the parts shared as well as two cores share automerge.
    let ceiling_measured = automerge_t.as_secs_f64()
        / automerge_t
            .as_secs_f64()
            .max(parts.as_secs_f64() / two_core_speedup);

    // A hub: the same ingest with application deferred (verify, rules 1-7,
    // synced store; no document built), then settled (rule 8: each
    // document's changes applied in one call) as its daemon does when idle.
    // Short at ×1 (a fifth of a second), so taken `--hub-runs` times, each
    // into a fresh store: the median is reported.
    let mut hub_times = Vec::new();
    let mut hub = None;
    for k in 0..hub_runs.max(1) {
        let mut r = fresh(&format!("db-hub-{k}"));
        verify_times.push(verify_batch_pass());
        r.defer_application(true);
        let batches = wire.clone();
        let t = Instant::now();
        let mut hub_accepted = 0;
        for batch in batches {
            hub_accepted += r.ingest(batch).expect("ingest").accepted.len();
        }
        hub_times.push(t.elapsed());
        assert_eq!(hub_accepted, n, "every generated change is accepted");
        // The previous run's store, closed, is removed.
        if hub.replace(r).is_some() {
            let _ = std::fs::remove_dir_all(tmp.path().join(format!("db-hub-{}", k - 1)));
        }
    }
    // Each ingest against the pass taken just before it: the median of
    // those ratios is the hub's figure against its limit.
    let mut hub_ratios: Vec<f64> = hub_times
        .iter()
        .zip(&verify_times[1..])
        .map(|(hub, limit)| limit.as_secs_f64() / hub.as_secs_f64())
        .collect();
    hub_ratios.sort_by(f64::total_cmp);
    let hub_vs_verify = hub_ratios[hub_ratios.len() / 2];
    hub_times.sort();
    let hub_ingest = hub_times[hub_times.len() / 2];
    // The limit for the other figures: the median of every pass (the
    // machine's speed varies by a tenth over minutes).
    verify_times.sort();
    let raw_verify = verify_times[verify_times.len() / 2];
    let mut hub = hub.expect("a hub run");
    let t = Instant::now();
    let settled = hub.settle(usize::MAX).expect("settle");
    let hub_settle = t.elapsed();
    assert_eq!(settled.changes, n);
    assert!(settled.changed.is_empty());
    assert_eq!(
        hub.store().docs().expect("docs"),
        replica.store().docs().expect("docs"),
        "the hub holds, once settled, what the node that applied at once holds"
    );
    drop(hub);

    // A view node: the same ingest, the rows taken from each document as
    // ingest builds it and folded in after each call (as the daemon does).
    let mut with_view = fresh("db-view");
    let (ingest_all, folded_view, view_cpu) = view_node_ingest(&mut with_view, &data.docs);
    assert_eq!(
        folded_view.digest(&district.id),
        view.digest(&district.id),
        "the view folded during ingest holds what one built after it does"
    );
    drop(folded_view);
    drop(with_view);

    // The same changes as a sync delivers them: one document per call
    // (one `Changes` frame each), its rows refreshed after each, as the
    // daemon's observer does.
    let mut per_doc = fresh("db-per-doc");
    let mut per_doc_view = View::build(&per_doc);
    let pending = PendingRows::default();
    per_doc.on_built(pending.hook());
    let t = Instant::now();
    for d in &data.docs {
        let batch = d.changes.iter().map(SignedChange::encode).collect();
        per_doc.ingest(batch).expect("ingest");
        pending.fold_into(&mut per_doc_view, &per_doc);
    }
    let per_doc_s = t.elapsed();
    assert_eq!(per_doc_view.len(), View::build(&per_doc).len());
    drop(per_doc_view);
    drop(per_doc);

    // Queries on the full district, as the API handlers run them.
    let scope = district.id;
    let street = data
        .units
        .iter()
        .find(|u| u.kind.as_str() == "street")
        .expect("a street");
    let q = |f: ItemQuery| {
        let view = &view;
        move || {
            serde_json::to_vec(&view.items(&scope, &f).expect("query"))
                .expect("json")
                .len()
        }
    };
    let mut queries = Vec::new();
    let mut run = |name: &str, f: &mut dyn FnMut() -> usize| {
        let (p50, p99, size) = latency(runs, f);
        queries.push(json!({"query": name, "p50_ms": p50, "p99_ms": p99, "bytes": size}));
    };
    run(
        "items?list=project&status=open",
        &mut q(ItemQuery {
            list: Some("project".into()),
            status: Some("open".into()),
            ..Default::default()
        }),
    );
    run(
        "items?q=助餐",
        &mut q(ItemQuery {
            q: Some("助餐".into()),
            ..Default::default()
        }),
    );
    run(
        "items?list=need&street=…",
        &mut q(ItemQuery {
            list: Some("need".into()),
            street: Some(street.id.to_string()),
            ..Default::default()
        }),
    );
    run("stats?by=street", &mut || {
        serde_json::to_vec(&view.stats(&scope, StatsBy::Street))
            .expect("json")
            .len()
    });
    run("grids", &mut || {
        serde_json::to_vec(&view.grids(&scope)).expect("json").len()
    });
    run("agreements?expiring_within_days=30", &mut || {
        let q = AgreementQuery {
            expiring_within_days: Some(30),
            ..Default::default()
        };
        serde_json::to_vec(&view.agreements(&scope, &q, now as i64).expect("agreements"))
            .expect("json")
            .len()
    });

    // View lag: a community writes (signed, synced commit); its rows are
    // refreshed as the daemon's observer does.
    drop(replica);
    let community = data
        .units
        .iter()
        .find(|u| u.kind.as_str() == "community")
        .expect("a community");
    let store = Store::open(&tmp.path().join("db")).expect("reopen");
    let mut replica = Replica::open(
        store,
        data.root.public(),
        Some(LocalIdentity {
            secret: community.secret.clone(),
            unit: community.id,
        }),
    )
    .expect("replica");
    let mut view = view;
    let needs = data
        .docs
        .iter()
        .find(|d| d.unit == community.id && d.doc_type == DocType::Needs)
        .expect("the community's needs");
    let records: Vec<String> = {
        let mut am = replica.load(&needs.id).expect("load");
        ListDoc::open(&mut am, DocType::Needs)
            .expect("list")
            .list()
            .into_iter()
            .map(|i| i.id)
            .collect()
    };
    let mut writes = Vec::new();
    let mut lags = Vec::new();
    for i in 0..100 {
        let record = records[i % records.len()].clone();
        let status = [ItemStatus::InProgress, ItemStatus::Open][i % 2];
        let t = Instant::now();
        replica
            .local_change(&needs.id, now + i as u64, |am| {
                ListDoc::open(am, DocType::Needs)?.set_status(
                    &record,
                    status,
                    (now + i as u64) as i64,
                )
            })
            .expect("write");
        writes.push(t.elapsed());
        let t = Instant::now();
        view.refresh(&replica, &needs.id);
        lags.push(t.elapsed());
    }
    writes.sort();
    lags.sort();
    drop(replica);
    drop(view);

    // Restart: store and replica opened, view rebuilt.
    let t = Instant::now();
    let store = Store::open(&tmp.path().join("db")).expect("reopen");
    let replica = Replica::open(store, data.root.public(), None).expect("replica");
    let view = View::build(&replica);
    let restart = t.elapsed();
    std::hint::black_box(view.len());

    let out = json!({
        "scale": scale,
        "documents": data.docs.len(),
        "changes": n,
        "signatures": signed.len(),
        "bytes": bytes,
        "ingest": {
            "changes_per_s": rate(n, ingest),
            "with_view_changes_per_s": rate(n, ingest_all),
            "hub_changes_per_s": rate(n, hub_ingest),
            "hub_settle_s": hub_settle.as_secs_f64(),
            "ingest_s": ingest.as_secs_f64(),
            "view_build_s": view_build.as_secs_f64(),
            "one_doc_per_call_with_view_s": per_doc_s.as_secs_f64(),
            "with_view_s": ingest_all.as_secs_f64(),
            "with_view_cpu_s": view_cpu.0,
            "with_view_calling_thread_cpu_s": view_cpu.1,
        },
        "limits": {
            "ed25519_dalek_verify_batch_signatures_per_s": rate(signed.len(), raw_verify),
            "verify_many_signatures_per_s": rate(signed.len(), verify),
            "rocksdb_synced_batches_256_changes_per_s": rate(n, rocks_s),
            "automerge_apply_per_doc_changes_per_s": rate(n, automerge_t),
            "automerge_sync_cold_bytes": am_sync_bytes,
            "verify_store_apply_s": (verify + rocks_s + automerge_t).as_secs_f64(),
            "view_node_parts": {
                "signatures_checked": checked.len(),
                "verify_checked_s": verify_checked.as_secs_f64(),
                "store_s": rocks_s.as_secs_f64(),
                "automerge_s": automerge_t.as_secs_f64(),
                "rows_extracted_s": extract_t.as_secs_f64(),
            },
        },
        "ratios": {
            "ingest_vs_verify": rate(n, ingest) / rate(n, raw_verify),
            "hub_ingest_vs_verify": hub_vs_verify,
            "verify_many_vs_verify_batch": rate(n, verify) / rate(n, raw_verify),
            "ingest_vs_rocksdb": rate(n, ingest) / rate(n, rocks_s),
            "ingest_with_view_vs_automerge": rate(n, ingest_all) / rate(n, automerge_t),
            "view_node_two_core_ceiling_vs_automerge": ceiling,
            "view_node_ceiling_at_measured_two_core_speedup_vs_automerge": ceiling_measured,
            "automerge_two_core_speedup": two_core_speedup,
        },
        "queries": queries,
        "local_write_p50_ms": percentile(&writes, 0.5),
        "view_lag_p50_ms": percentile(&lags, 0.5),
        "view_lag_p99_ms": percentile(&lags, 0.99),
        "restart_s": restart.as_secs_f64(),
    });
    if as_json {
        println!("{out}");
        return;
    }
    let l = &out["limits"];
    println!(
        "district ×{scale}: {} documents, {n} changes ({} signed), {bytes} bytes",
        data.docs.len(),
        signed.len()
    );
    println!(
        "ingest (verify + rule + apply + synced store): {:.0} changes/s; with the view built: {:.0} changes/s",
        out["ingest"]["changes_per_s"].as_f64().unwrap_or(0.0),
        out["ingest"]["with_view_changes_per_s"]
            .as_f64()
            .unwrap_or(0.0)
    );
    println!(
        "hub ingest (verify + rules 1-7 + synced store, application deferred; median of {} runs): {:.0} changes/s ({:.2} of verify_batch, the median of each run against a pass just before it); settled afterwards in {:.2} s",
        hub_runs.max(1),
        out["ingest"]["hub_changes_per_s"].as_f64().unwrap_or(0.0),
        out["ratios"]["hub_ingest_vs_verify"]
            .as_f64()
            .unwrap_or(0.0),
        hub_settle.as_secs_f64()
    );
    println!(
        "  one document per call, its rows refreshed after each (as a sync delivers them): {:.2} s ({:.0} changes/s)",
        per_doc_s.as_secs_f64(),
        rate(n, per_doc_s)
    );
    println!(
        "  limits: ed25519-dalek verify_batch {:.0} signatures/s (the node's strict verify_many {:.0}/s); RocksDB synced batches of 256 {:.0} changes/s; automerge apply per document {:.0} changes/s",
        l["ed25519_dalek_verify_batch_signatures_per_s"]
            .as_f64()
            .unwrap_or(0.0),
        l["verify_many_signatures_per_s"].as_f64().unwrap_or(0.0),
        l["rocksdb_synced_batches_256_changes_per_s"]
            .as_f64()
            .unwrap_or(0.0),
        l["automerge_apply_per_doc_changes_per_s"]
            .as_f64()
            .unwrap_or(0.0)
    );
    println!(
        "  for a cold sync: automerge's own sync sends {} bytes for these documents unsigned; verify + store + apply take {:.2} s",
        l["automerge_sync_cold_bytes"],
        l["verify_store_apply_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  ratios: ingest/verify {:.2}, ingest/rocksdb {:.2}, ingest+view/automerge {:.2}",
        out["ratios"]["ingest_vs_verify"].as_f64().unwrap_or(0.0),
        out["ratios"]["ingest_vs_rocksdb"].as_f64().unwrap_or(0.0),
        out["ratios"]["ingest_with_view_vs_automerge"]
            .as_f64()
            .unwrap_or(0.0)
    );
    println!(
        "  view node's ceiling here: its unavoidable parts alone on one core, verify {:.3} s ({} signatures ingest checks), store {:.3} s, automerge {:.3} s, rows {:.3} s; on two cores at best {:.3} s: {:.2} of automerge's rate",
        verify_checked.as_secs_f64(),
        checked.len(),
        rocks_s.as_secs_f64(),
        automerge_t.as_secs_f64(),
        extract_t.as_secs_f64(),
        automerge_t.as_secs_f64().max(parts.as_secs_f64() / 2.0),
        ceiling
    );
    println!(
        "  two threads here apply automerge at {two_core_speedup:.2} × one's rate: shared that well, the parts take {:.3} s, {ceiling_measured:.2} of automerge's rate",
        parts.as_secs_f64() / two_core_speedup
    );
    println!(
        "  view node's ingest here: {:.3} s, CPU {:.3} s on all threads ({:.3} s on the calling one): {:.1} cores busy",
        ingest_all.as_secs_f64(),
        view_cpu.0,
        view_cpu.1,
        view_cpu.0 / ingest_all.as_secs_f64()
    );
    for q in out["queries"].as_array().into_iter().flatten() {
        println!(
            "query {}: p50 {:.2} ms, p99 {:.2} ms ({} bytes of JSON)",
            q["query"].as_str().unwrap_or_default(),
            q["p50_ms"].as_f64().unwrap_or(0.0),
            q["p99_ms"].as_f64().unwrap_or(0.0),
            q["bytes"]
        );
    }
    println!(
        "local write (sign + synced commit) p50 {:.2} ms; view lag (stored → rows updated) p50 {:.2} ms, p99 {:.2} ms",
        out["local_write_p50_ms"].as_f64().unwrap_or(0.0),
        out["view_lag_p50_ms"].as_f64().unwrap_or(0.0),
        out["view_lag_p99_ms"].as_f64().unwrap_or(0.0)
    );
    // (This process holds the generated data set too: the node's RSS is
    // the daemon's, measured by scripts/bench_daemon.py.)
    println!(
        "restart (open store and replica, rebuild the view): {:.2} s",
        restart.as_secs_f64()
    );
}
