//! The generated district is what a real district's nodes would have
//! written: every change passes a real replica's acceptance rule, the view
//! built from it shows the profile's figures, and a seed gives the same
//! district every time.

use gongjian_engine::Replica;
use gongjian_gen::{Profile, generate};
use gongjian_store::Store;
use gongjian_view::{AgreementQuery, ItemQuery, StatsBy, View};

const NOW: u64 = 1_795_000_000;

#[test]
fn gulou_has_its_figures() {
    let p = Profile::district();
    let d = generate(&p, 7, NOW).unwrap();
    let s = &d.summary;
    assert_eq!(s.units["district"], 1);
    assert_eq!(s.units["street"], 13);
    assert_eq!(s.units["community"], 120);
    assert_eq!(s.units["resident"], 540);
    assert_eq!(d.units.len(), 674);
    assert!((560..=640).contains(&s.grids), "{}", s.grids);
    assert_eq!(s.agreements, 218);
    assert_eq!(s.items["project"], 711);
    assert_eq!(s.items["problem"], 365);
    assert_eq!(s.items["service"], 569);
    assert!(s.concurrent_edits > 10, "{s:?}");
    assert!(s.changes > 8000, "{s:?}");
    // Names are Chinese and unique.
    let names: std::collections::BTreeSet<&str> = d.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names.len(), d.units.len());
    assert!(d.units.iter().any(|u| u.name == "宁海路街道"));
}

#[test]
fn a_small_district_is_accepted_whole_and_viewed() {
    let p = Profile::named("small").unwrap();
    let d = generate(&p, 3, NOW).unwrap();
    let again = generate(&p, 3, NOW).unwrap();
    let bytes = |d: &gongjian_gen::Dataset| -> Vec<Vec<u8>> {
        d.docs
            .iter()
            .flat_map(|x| x.changes.iter().map(|c| c.encode()))
            .collect()
    };
    assert_eq!(bytes(&d), bytes(&again), "a seed replays exactly");
    assert_ne!(bytes(&d), bytes(&generate(&p, 4, NOW).unwrap()));

    let dir = tempfile::tempdir().unwrap();
    let mut r = Replica::open(Store::create(dir.path()).unwrap(), d.root.public(), None).unwrap();
    r.insert_records(d.records.clone()).unwrap();
    assert_eq!(r.trust().documents().count(), d.docs.len());
    // The rows handed over as ingest builds each document, folded into a
    // view once stored. Every third document's changes but its first come
    // first (they wait for it), so in the call of all the rest the whole
    // rule builds those, their rows taken on a thread of the call's own,
    // between the fast path's documents, whose rows are taken where they
    // are applied (then sent on the same thread, to keep for the cache).
    assert!(d.docs.len() >= gongjian_engine::EXTRACT_ON_WORKER_DOCS);
    let all: Vec<Vec<u8>> = bytes(&d);
    let early: Vec<Vec<u8>> = d
        .docs
        .iter()
        .step_by(3)
        .flat_map(|x| x.changes[1..].iter().map(|c| c.encode()))
        .collect();
    let rest: Vec<Vec<u8>> = all.iter().filter(|c| !early.contains(c)).cloned().collect();
    assert!(r.ingest(early).unwrap().accepted.is_empty());
    let pending = gongjian_view::PendingRows::default();
    r.on_built(pending.hook());
    let mut folded = View::build(&r);
    let report = r.ingest(rest.clone()).unwrap();
    assert_eq!(r.counters().extracted_aside, 1, "{:?}", r.counters());
    let handed = pending.len();
    assert_eq!(pending.fold_into(&mut folded, &r).len(), handed);
    assert!(report.invalid.is_empty(), "{:?}", report.invalid.first());
    assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
    assert!(report.pending.is_empty());
    assert_eq!(report.accepted.len(), rest.len());
    assert_eq!(r.store().stats().unwrap().changes as usize, all.len());

    let view = View::build(&r);
    let district = d.units[0].id;
    assert!(handed > 0);
    assert_eq!(folded.len(), view.len());
    assert_eq!(folded.digest(&district), view.digest(&district));
    let count = |list: &str| {
        view.items(
            &district,
            &ItemQuery {
                list: Some(list.into()),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .unwrap()
        .items
        .len()
    };
    for (list, n) in &d.summary.items {
        assert_eq!(count(list), *n, "{list}");
    }
    // Claims joined from the residents' own documents.
    let claimed = view
        .items(
            &district,
            &ItemQuery {
                list: Some("project".into()),
                claimed: Some(true),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .unwrap()
        .items;
    assert!(!claimed.is_empty());
    assert!(claimed.iter().all(|i| {
        i.acts
            .iter()
            .any(|a| a.kind == "claim" && a.unit != i.row.unit)
    }));
    // Problems resolved at their levels, some by the street's handling.
    let stats = view.stats(&district, StatsBy::Street);
    let resolved: u64 = stats
        .iter()
        .filter(|s| s.list == "problem" && s.status == "resolved")
        .map(|s| s.count)
        .sum();
    assert!(resolved as usize >= p.problems / 2, "{stats:?}");
    // Agreements, most signed by every party.
    let agreements = view
        .agreements(&district, &AgreementQuery::default(), NOW as i64)
        .unwrap();
    assert_eq!(agreements.len(), p.agreements);
    assert!(
        agreements
            .iter()
            .any(|a| matches!(a.status, gongjian_model::AgreementStatus::Active)),
        "{agreements:?}"
    );
    // The grid tree sums its counts.
    let grids = view.grids(&district);
    assert!(!grids.is_empty());
}

/// A call larger than [`gongjian_engine::HAND_OVER_WRITES`] hands its
/// writes to the store's writer in parts while it judges the next
/// documents: what it stores, and what a reopened store holds, must be
/// what one document per call stores, on a node that applies at once and
/// on a hub that defers application and settles later.
#[test]
fn a_call_stored_in_parts_holds_what_one_document_per_call_holds() {
    let d = generate(&Profile::district().scaled(0.3), 5, NOW).unwrap();
    let per_doc: Vec<Vec<Vec<u8>>> = d
        .docs
        .iter()
        .map(|x| x.changes.iter().map(|c| c.encode()).collect())
        .collect();
    let all: Vec<Vec<u8>> = per_doc.iter().flatten().cloned().collect();
    // Three writes a change: the call is handed over in several parts.
    assert!(
        3 * all.len() > 2 * gongjian_engine::HAND_OVER_WRITES,
        "{} changes",
        all.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        let mut r = Replica::open(
            Store::create(&dir.path().join(name)).unwrap(),
            d.root.public(),
            None,
        )
        .unwrap();
        r.insert_records(d.records.clone()).unwrap();
        r
    };
    // What each document holds: its metadata and its changes' hashes.
    let held = |s: &Store| {
        s.docs()
            .unwrap()
            .into_iter()
            .map(|(doc, meta)| {
                let mut hashes: Vec<_> = s
                    .doc_changes(&doc)
                    .unwrap()
                    .iter()
                    .map(|c| (c.hash(), c.signature().is_some()))
                    .collect();
                hashes.sort();
                (doc, format!("{meta:?}"), hashes)
            })
            .collect::<Vec<_>>()
    };

    let mut one_by_one = open("one-by-one");
    for changes in &per_doc {
        let report = one_by_one.ingest(changes.clone()).unwrap();
        assert_eq!(report.accepted.len(), changes.len());
    }
    let expected = held(one_by_one.store());
    assert_eq!(expected.len(), d.docs.len());

    let mut at_once = open("at-once");
    let report = at_once.ingest(all.clone()).unwrap();
    assert!(report.invalid.is_empty(), "{:?}", report.invalid.first());
    assert_eq!(report.accepted.len(), all.len());
    assert_eq!(held(at_once.store()), expected, "one call, applied at once");
    assert!(
        at_once.counters().parts_handed >= 2,
        "{:?}",
        at_once.counters()
    );
    assert_eq!(one_by_one.counters().parts_handed, 0);

    let mut hub = open("hub");
    hub.defer_application(true);
    let report = hub.ingest(all.clone()).unwrap();
    assert_eq!(report.accepted.len(), all.len());
    assert!(hub.counters().parts_handed >= 2);
    assert_eq!(hub.settle(usize::MAX).unwrap().changes, all.len());
    assert_eq!(
        held(hub.store()),
        expected,
        "one call, application deferred"
    );

    // Reopened: every part of the call is in the store.
    drop(at_once);
    let reopened = Store::open(&dir.path().join("at-once")).unwrap();
    assert_eq!(held(&reopened), expected, "reopened");
}

/// A panic of the rows hook reaches the caller of `ingest`, as it would
/// from the call's own thread, whichever thread of the call ran it, and the
/// hook is never called after the call ended: on the rows thread (the
/// documents the whole rule builds in a large call), and on the threads
/// applying the fast path's documents.
#[test]
fn a_panic_of_the_rows_hook_on_its_thread_reaches_the_caller() {
    let d = generate(&Profile::named("small").unwrap(), 3, NOW).unwrap();
    assert!(d.docs.len() > 8);
    let fails = || {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = calls.clone();
        let hook: gongjian_engine::Built = Box::new(move |_, _, _, _| {
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 4 {
                panic!("the hook fails on the fifth document");
            }
        });
        (calls, hook)
    };
    let panics = |r: &mut Replica, wire: Vec<Vec<u8>>, calls: &std::sync::atomic::AtomicUsize| {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.ingest(wire)));
        let panic = out.expect_err("the hook's panic reaches the caller");
        assert_eq!(
            panic.downcast_ref::<&str>(),
            Some(&"the hook fails on the fifth document")
        );
        let after = calls.load(std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            after,
            "no hook call after the call ended"
        );
        after
    };

    // Every document but its first change, then the first changes: each
    // document's rest was waiting for it, so the whole rule judges it and
    // builds it, and its rows go to the rows thread (those of one change,
    // the fast path's, where they are applied). The call stops soon after
    // the fifth fails, at the next document it hands over, not at the end.
    let dir = tempfile::tempdir().unwrap();
    let mut r = Replica::open(Store::create(dir.path()).unwrap(), d.root.public(), None).unwrap();
    r.insert_records(d.records.clone()).unwrap();
    let rest: Vec<Vec<u8>> = d
        .docs
        .iter()
        .flat_map(|x| x.changes[1..].iter().map(|c| c.encode()))
        .collect();
    assert!(r.ingest(rest).unwrap().accepted.is_empty());
    let (calls, hook) = fails();
    r.on_built(hook);
    let firsts: Vec<Vec<u8>> = d.docs.iter().map(|x| x.changes[0].encode()).collect();
    let after = panics(&mut r, firsts, &calls);
    assert!(after < d.docs.len(), "{after} calls of {}", d.docs.len());
    assert_eq!(r.counters().extracted_aside, 1, "on the rows thread");

    // The whole district in one call: every document here takes the fast
    // path, its rows taken on the thread that applied it (the call's or
    // its worker). Once the panic is caught on either, the worker stops at
    // its next document and the call's thread judges no more, so not
    // every document is handed over.
    let dir = tempfile::tempdir().unwrap();
    let mut r = Replica::open(Store::create(dir.path()).unwrap(), d.root.public(), None).unwrap();
    r.insert_records(d.records.clone()).unwrap();
    let (calls, hook) = fails();
    r.on_built(hook);
    let all: Vec<Vec<u8>> = d
        .docs
        .iter()
        .flat_map(|x| x.changes.iter().map(|c| c.encode()))
        .collect();
    let after = panics(&mut r, all, &calls);
    assert!(after < d.docs.len(), "{after} calls of {}", d.docs.len());
    assert_eq!(r.counters().extracted_aside, 0, "no rows thread");
}

/// A viewer's audience worked out once per unit (`Trust::audience`, what a
/// session's snapshot uses) answers as the walk per document does, for
/// every unit of a generated district as viewer, every document and every
/// unit as owner; and a unit that is not certified sees nothing but its own.
#[test]
fn an_audience_answers_as_the_walk_per_document() {
    let d = generate(&Profile::named("small").unwrap(), 5, NOW).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut r = Replica::open(Store::create(dir.path()).unwrap(), d.root.public(), None).unwrap();
    r.insert_records(d.records.clone()).unwrap();
    let trust = r.trust();
    let units: Vec<gongjian_identity::UnitId> = trust.units().map(|u| u.unit).collect();
    let docs: Vec<gongjian_identity::DocId> = trust.documents().map(|(d, _)| *d).collect();
    assert!(
        units.len() > 10 && docs.len() > 50,
        "{} {}",
        units.len(),
        docs.len()
    );
    let stranger: gongjian_identity::UnitId = "91320106MA1X000000".parse().unwrap();
    let (mut seen, mut unseen) = (0, 0);
    for viewer in units.iter().chain([&stranger]) {
        let mut audience = trust.audience(viewer);
        for doc in &docs {
            let walked = trust.may_see(viewer, doc);
            assert_eq!(audience.may_see(doc), walked, "{viewer} {doc}");
            // Asked again: the worked-out answer.
            assert_eq!(audience.may_see(doc), walked);
            if walked {
                seen += 1;
            } else {
                unseen += 1;
            }
        }
        for owner in units.iter().chain([&stranger]) {
            assert_eq!(
                audience.may_see_unit(owner),
                trust.may_see_unit(viewer, owner),
                "{viewer} {owner}"
            );
        }
    }
    assert!(seen > 0 && unseen > 0, "both answers met: {seen} {unseen}");
}
