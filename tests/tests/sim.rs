//! The seeded sync simulator in the normal test run: a few seeds of a
//! 52-node district under drops, duplicates, reordering, partitions and
//! restarts; exact replay of a seed; revocation under concurrency.
//! `scripts/sim.sh` runs thousands of seeds.

use gongjian_tests::sim::{Config, World, run, run_revocation};

fn seeds() -> Vec<u64> {
    match std::env::var("GONGJIAN_SIM_SEEDS") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![1, 2],
    }
}

#[test]
fn a_stormy_district_converges_within_audiences() {
    for seed in seeds() {
        let report = run(Config::district(seed)).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.nodes >= 50, "{report:?}");
        assert!(report.writes > 20, "the storm wrote: {report:?}");
        assert!(report.heal_rounds >= 1);
    }
}

#[test]
fn a_seed_replays_exactly() {
    let small = |seed| Config {
        steps: 600,
        ..Config::district(seed)
    };
    let a = run(small(42)).unwrap();
    let b = run(small(42)).unwrap();
    assert_eq!(
        (a.messages, a.bytes, a.writes),
        (b.messages, b.bytes, b.writes)
    );
    let c = run(small(43)).unwrap();
    assert_ne!(
        (a.messages, a.bytes),
        (c.messages, c.bytes),
        "another seed, another run"
    );
}

/// A community's key keeps writing behind a partition while its street
/// revokes it; over several delivery orders every node ends with exactly
/// the changes the revocation's cut keeps, and the revocation names no
/// document id. `scripts/sim.sh --revocation` runs many more seeds.
#[test]
fn revocation_under_concurrency_is_order_free() {
    let mut kept_some = 0;
    for seed in [11u64, 12, 13] {
        let r = run_revocation(seed).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.holders >= 5, "the document reached its audience: {r:?}");
        kept_some += usize::from(!r.kept.is_empty());
    }
    assert!(kept_some >= 2, "most runs cut inside what was written");
}

/// A transfer cut in the middle resumes from the persisted progress: the
/// next session fetches the half-done documents first and sends only what
/// is still missing.
#[test]
fn an_interrupted_transfer_resumes() {
    let cfg = Config {
        streets: 1,
        communities_per_street: 1,
        residents_per_community: 0,
        ..Config::district(5)
    };
    let mut w = World::new(cfg);
    w.fifo = true;
    let (street, community) = (1, 2);
    let link = w.uplink(community).unwrap();
    w.set_link(link, false);
    let mut docs = Vec::new();
    for _ in 0..150 {
        w.now += 1;
        let d = w.create_doc(community);
        w.write_to(community, d);
        w.write_to(community, d);
        docs.push(d);
    }
    w.interrupt_after(link, 160);
    let progress = w
        .progress(street, link)
        .cloned()
        .expect("the street persisted progress");
    assert!(
        !progress.pending.is_empty(),
        "documents were left half-fetched"
    );
    assert!(
        progress.changes_received > 0,
        "some changes arrived before the cut"
    );
    // The progress survives a restart of the street (it is plain data).
    let json = serde_json::to_string(&progress.pending).unwrap();
    assert!(json.len() > 2);
    w.restart(street);
    let held_before: usize = docs
        .iter()
        .filter(|d| w.holdings()[street].get(d).is_some_and(|h| !h.is_empty()))
        .count();
    assert!(
        held_before > 0 && held_before < docs.len(),
        "{held_before} of {} before resuming",
        docs.len()
    );
    let (_, bytes, _) = w.measure_sync(link);
    assert!(w.synced(link));
    let held = w.holdings();
    for d in &docs {
        assert_eq!(held[street].get(d), held[community].get(d));
    }
    let after = w.progress(street, link).unwrap();
    assert!(after.pending.is_empty(), "nothing left pending");
    assert!(
        w.progress(community, link).unwrap().completed_sessions >= 1,
        "the initiator ended synced"
    );
    assert!(bytes > 0);
}
