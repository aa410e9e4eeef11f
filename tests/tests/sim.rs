//! The seeded sync simulator in the normal test run: a few seeds of a
//! 55-node district (52 units, three second devices) under drops, duplicates, reordering, partitions and
//! restarts; exact replay of a seed; revocation under concurrency.
//! `scripts/sim.sh` runs thousands of seeds.

use gongjian_tests::sim::{Config, World, run, run_equivocation, run_revocation};

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
        assert!(
            report.multi_author_docs >= 1,
            "a community and its second device wrote one document: {report:?}"
        );
        assert!(report.heal_rounds >= 1);
        assert!(
            report.turns_waited >= 1,
            "a resident dialling its community and its street took turns: {report:?}"
        );
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

/// An actor forks (its store replaced by an older copy, same actor): its
/// peers hold one branch, it writes the other. Equal lengths are what
/// version vectors cannot tell apart; longer either way, one node holds
/// more. Every node ends rejecting both branches from the fork, with the
/// same accepted set, and no honest peer penalised.
#[test]
fn an_equivocating_actor_is_cut_at_its_fork_everywhere() {
    for (seed, first, second) in [(21u64, 6, 6), (22, 9, 3), (23, 3, 9)] {
        let r = run_equivocation(seed, first, second).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.holders >= 3, "the document reached its audience: {r:?}");
    }
}

/// A transfer cut in the middle resumes from the persisted progress: the
/// next session fetches the half-done documents first and sends only what
/// is still missing.
#[test]
fn an_interrupted_transfer_resumes() {
    // The same world twice (same seed): one transfer cut and resumed, one
    // whole, to compare what the resumed session sent with a cold sync.
    let world = || {
        let cfg = Config {
            streets: 1,
            communities_per_street: 1,
            residents_per_community: 0,
            ..Config::district(5)
        };
        let mut w = World::new(cfg);
        w.fifo = true;
        let link = w.uplink(2).unwrap();
        w.set_link(link, false);
        let mut docs = Vec::new();
        for _ in 0..150 {
            w.now += 1;
            let d = w.create_doc(2);
            w.write_to(2, d);
            w.write_to(2, d);
            docs.push(d);
        }
        (w, link, docs)
    };
    let (street, community) = (1, 2);
    let (mut cold, link, _) = world();
    let (_, cold_bytes, _) = cold.measure_sync(link);

    let (mut w, link, docs) = world();
    w.interrupt_after(link, 160);
    let progress = w
        .progress(street, link)
        .expect("the street persisted progress in its store");
    assert!(
        !progress.pending.is_empty(),
        "documents were left half-fetched"
    );
    assert!(
        progress.changes_received > 0,
        "some changes arrived before the cut"
    );
    // The progress is read back from RocksDB after a restart.
    w.restart(street);
    assert_eq!(w.progress(street, link).as_ref(), Some(&progress));
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
    assert!(
        bytes < cold_bytes,
        "the resumed session sent {bytes} B, a cold sync {cold_bytes} B"
    );
}
