//! Criterion benchmarks of the merged view's common queries on the full
//! generated Gulou district (×1), as the API handlers run them (JSON
//! included), and of folding one document in again (the view lag after a
//! change is stored). Targets: p99 ≤ 10 ms per query, lag ≤ 100 ms;
//! `bench-district` prints the p50/p99 of the same queries.
//!
//! `cargo bench -p gongjian-view --bench queries` (also run by
//! `scripts/bench.sh`).

use criterion::{Criterion, criterion_group, criterion_main};
use gongjian_engine::Replica;
use gongjian_gen::{Profile, generate, wire_batches};
use gongjian_identity::DocType;
use gongjian_store::Store;
use gongjian_view::{AgreementQuery, ItemQuery, StatsBy, View};

fn benches(c: &mut Criterion) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let data = generate(&Profile::district(), 1, now).expect("generate");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::create(&dir.path().join("db")).expect("store");
    let mut replica = Replica::open(store, data.root.public(), None).expect("replica");
    replica
        .insert_records(data.records.clone())
        .expect("records");
    for batch in wire_batches(&data.docs, 4096) {
        replica.ingest(batch).expect("ingest");
    }
    let mut view = View::build(&replica);
    let scope = data.units[0].id;
    let street = data
        .units
        .iter()
        .find(|u| u.kind.as_str() == "street")
        .expect("a street")
        .id;

    let mut g = c.benchmark_group("view_district_x1");
    let items = |q: ItemQuery| {
        let view = &view;
        move || {
            let page = view.items(&scope, &q).expect("query");
            assert!(!page.items.is_empty(), "the query finds rows");
            serde_json::to_vec(&page).expect("json").len()
        }
    };
    let f = items(ItemQuery {
        list: Some("project".into()),
        status: Some("open".into()),
        ..Default::default()
    });
    g.bench_function("items?list=project&status=open", |b| b.iter(&f));
    let f = items(ItemQuery {
        q: Some("助餐".into()),
        ..Default::default()
    });
    g.bench_function("items?q=助餐", |b| b.iter(&f));
    let f = items(ItemQuery {
        list: Some("need".into()),
        street: Some(street.to_string()),
        ..Default::default()
    });
    g.bench_function("items?list=need&street=…", |b| b.iter(&f));
    g.bench_function("stats?by=street", |b| {
        b.iter(|| serde_json::to_vec(&view.stats(&scope, StatsBy::Street)).expect("json"))
    });
    g.bench_function("grids", |b| {
        b.iter(|| serde_json::to_vec(&view.grids(&scope)).expect("json"))
    });
    g.bench_function("agreements?expiring_within_days=30", |b| {
        let q = AgreementQuery {
            expiring_within_days: Some(30),
            ..Default::default()
        };
        b.iter(|| {
            serde_json::to_vec(&view.agreements(&scope, &q, now as i64).expect("agreements"))
                .expect("json")
        })
    });
    // The view lag's work: one community's needs folded in again after a
    // change to it is stored (the daemon's observer does this).
    let needs = data
        .docs
        .iter()
        .find(|d| d.doc_type == DocType::Needs && !d.changes.is_empty())
        .expect("a needs document")
        .id;
    drop(f);
    g.bench_function("refresh one document (view lag)", |b| {
        b.iter(|| view.refresh(&replica, &needs))
    });
    g.finish();
}

criterion_group!(queries, benches);
criterion_main!(queries);
