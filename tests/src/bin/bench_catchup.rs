//! Catch-up cost of the sync protocol (BENCHMARKS.md): a community holds
//! a few thousand documents, its street holds them all; the community then
//! makes changes to 1% of them while the street is away. On reconnect: the
//! bytes exchanged ÷ the bytes of the missing signed changes, the messages
//! and the round trips; the same again with nothing changed.
//!
//! `cargo run -p gongjian-tests --bin bench-catchup -- --docs 3000`

use gongjian_tests::sim::{Config, World};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let docs: usize = args
        .iter()
        .position(|a| a == "--docs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let per_doc = 3;
    let cfg = Config {
        streets: 1,
        communities_per_street: 1,
        residents_per_community: 0,
        ..Config::district(1)
    };
    let mut w = World::new(cfg);
    let community = 2;
    let link = w.uplink(community).expect("community uplink");
    w.set_link(link, false);
    let started = std::time::Instant::now();
    let mut ids = Vec::with_capacity(docs);
    let mut total_bytes = 0usize;
    // Ordered delivery, as one libp2p stream per peer gives.
    w.fifo = true;
    for _ in 0..docs {
        w.now += 1;
        let d = w.create_doc(community);
        for _ in 0..per_doc {
            total_bytes += w.write_to(community, d);
        }
        ids.push(d);
    }
    eprintln!(
        "wrote {docs} documents × {per_doc} changes ({total_bytes} bytes signed) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let t = std::time::Instant::now();
    let (m, b, depth) = w.measure_sync(link);
    assert!(w.synced(link), "first sync did not finish");
    println!(
        "cold: {} changes, {total_bytes} B of signed changes; exchanged {b} B in {m} messages, {} round trips, ratio {:.2} ({:.1}s)",
        docs * per_doc,
        depth.div_ceil(2),
        b as f64 / total_bytes as f64,
        t.elapsed().as_secs_f64()
    );
    // The street goes away; 1% of the documents change (one change each,
    // as the "1% of documents changed").
    w.set_link(link, false);
    let missing_changes = (docs / 100).max(1);
    let mut missing_bytes = 0usize;
    for k in 0..missing_changes {
        let d = ids[(k * 97) % ids.len()];
        missing_bytes += w.write_to(community, d);
    }
    let t = std::time::Instant::now();
    let kinds0 = w.report.bytes_by_kind.clone();
    let (m, b, depth) = w.measure_sync(link);
    assert!(w.synced(link), "catch-up did not finish");
    let by_kind: Vec<String> = w
        .report
        .bytes_by_kind
        .iter()
        .map(|(k, v)| (k, v - kinds0.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("catch-up bytes by kind: {}", by_kind.join(", "));
    println!(
        "catch-up after 1% of documents changed: {missing_changes} changes missing, {missing_bytes} B of signed changes; exchanged {b} B in {m} messages, {} round trips, ratio {:.2} ({:.2}s)",
        depth.div_ceil(2),
        b as f64 / missing_bytes as f64,
        t.elapsed().as_secs_f64()
    );
    let t = std::time::Instant::now();
    let (m, b, depth) = w.measure_sync(link);
    assert!(w.synced(link));
    println!(
        "nothing changed: exchanged {b} B in {m} messages, {} round trips ({:.2}s)",
        depth.div_ceil(2),
        t.elapsed().as_secs_f64()
    );
    let held = w.holdings();
    for d in &ids {
        assert_eq!(
            held[1].get(d),
            held[2].get(d),
            "street and community hold the same heads"
        );
    }
}
