//! The acceptance rule gives the same result for every delivery order: the
//! replica that receives a scenario's records and changes in any order and in
//! any batches ends with the same accepted set, heads and quarantine as the
//! one that receives everything at once.

mod common;

use std::collections::BTreeMap;

use common::*;
use gongjian_identity::{
    CutEntry, DocId, Hash, RecordBody, Revocation, RevocationCut, RevocationTarget, Secret,
    SignedChange, SignedRecord,
};
use proptest::prelude::*;
use tempfile::tempdir;

#[derive(Clone, Debug)]
enum Item {
    Record(SignedRecord),
    Change(SignedChange),
}

struct Scenario {
    fed: Fed,
    doc: DocId,
    items: Vec<Item>,
}

/// Two writers, an equivocating one, a non-writer, a revocation whose cut
/// keeps the helper's first two changes only, and a writer whose first
/// change automerge cannot apply (its second depends on it).
fn scenario() -> Scenario {
    let fed = fed();
    let helper = Secret::from_seed([44; 32]);
    let g = genesis(fed.community_id, &fed.community, &[helper.public()]);
    let doc = DocId(g.hash());
    let mut items = vec![Item::Record(g.clone())];

    let mut c = Author::new(&fed.community, 1, doc);
    let mut h = Author::new(&helper, 1, doc);
    let c1 = c.put("标题", "一");
    let c2 = c.put("标题", "二");
    h.merge(&[c1.clone(), c2.clone()]);
    let h1 = h.put("资源", "会议室");
    let h2 = h.put("资源", "医生");
    c.merge(std::slice::from_ref(&h1));
    let c3 = c.put("标题", "三");
    let h3 = h.put("资源", "律师"); // outside the cut below
    c.merge(&[h2.clone(), h3.clone()]);
    let c4 = c.put("状态", "依赖被撤销的修改"); // depends on h3: rejected with it
    // An equivocating epoch of the community key: two seq-2 changes.
    let mut e1 = Author::new(&fed.community, 9, doc);
    let e1a = e1.put("分叉", "a");
    let mut e3 = Author::new(&fed.community, 9, doc);
    e3.merge(std::slice::from_ref(&e1a));
    let fork_x = e1.put("分叉", "x");
    let fork_y = e3.put("分叉", "y");
    // The street is not a write key of the community's document.
    let mut s = Author::new(&fed.street, 1, doc);
    let s1 = s.put("标题", "街道代写");
    let (bad, after_bad) = unappliable(&fed.community, doc, &c1);

    let revocation = Revocation {
        target: RevocationTarget::Key(helper.public()),
        cut: RevocationCut {
            changes: vec![CutEntry::new(&doc, h1.header().actor, 2, h2.hash())],
            records: vec![],
        },
        reason: "设备丢失".into(),
        issued_at: NOW,
    }
    .sign(&fed.community);
    // The helper has no certificate: its revocation comes from the street,
    // which has authority over the community that claims it.
    let revocation_by_street = Revocation {
        issued_at: NOW + 1,
        ..revocation.open::<Revocation>().unwrap()
    }
    .sign(&fed.street);
    items.push(Item::Record(revocation));
    items.push(Item::Record(revocation_by_street));
    for ch in [
        c1, c2, h1, h2, c3, h3, c4, e1a, fork_x, fork_y, s1, bad, after_bad,
    ] {
        items.push(Item::Change(ch));
    }
    Scenario { fed, doc, items }
}

/// Two changes of a new epoch of `key` after `base`: the first's op names
/// an object that does not exist (automerge cannot apply it; rule 8), the
/// second depends on it.
fn unappliable(key: &Secret, doc: DocId, base: &SignedChange) -> (SignedChange, SignedChange) {
    // Epoch 0: its actor sorts before the one it depends on (the store lists
    // a document's changes by actor, not in causal order).
    let mut a = Author::new(key, 0, doc);
    a.merge(std::slice::from_ref(base));
    let first = a.put("k", "x");
    let second = a.put("k", "y");
    let actor: String = first
        .header()
        .actor
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut e = automerge::Change::try_from(first.chunk()).unwrap().decode();
    let mut op = serde_json::to_value(&e.operations[0]).unwrap();
    op["obj"] = serde_json::Value::String(format!("99@{actor}"));
    e.operations[0] = serde_json::from_value(op).unwrap();
    e.hash = None;
    let bad_chunk = automerge::Change::from(e).raw_bytes().to_vec();
    let bad = SignedChange::sign(doc, bad_chunk, key).unwrap();
    let mut e = automerge::Change::try_from(second.chunk())
        .unwrap()
        .decode();
    e.deps = vec![automerge::ChangeHash(bad.hash().0)];
    e.hash = None;
    let chunk = automerge::Change::from(e).raw_bytes().to_vec();
    let after = SignedChange::sign(doc, chunk, key).unwrap();
    (bad, after)
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    accepted: Vec<Hash>,
    heads: Vec<Hash>,
    quarantine: BTreeMap<Hash, String>,
    value: Option<String>,
}

/// How a node applies what it accepts.
#[derive(Debug, Clone, Copy)]
enum Apply {
    /// At ingest.
    Eager,
    /// Deferred, settled after every `n`th batch and at the end.
    Deferred { settle_every: usize },
}

fn deliver(s: &Scenario, order: &[usize], batch_sizes: &[usize], apply: Apply) -> Outcome {
    let dir = tempdir().unwrap();
    let mut r = replica(dir.path(), &s.fed, None);
    r.defer_application(matches!(apply, Apply::Deferred { .. }));
    let mut batch = 0;
    let mut i = 0;
    let mut sizes = batch_sizes.iter().cycle();
    while i < order.len() {
        let n = (*sizes.next().unwrap()).clamp(1, order.len() - i);
        let mut records = Vec::new();
        let mut changes = Vec::new();
        for &k in &order[i..i + n] {
            match &s.items[k] {
                Item::Record(rec) => records.push(rec.clone()),
                Item::Change(c) => changes.push(c.encode()),
            }
        }
        if !records.is_empty() {
            r.insert_records(records).unwrap();
        }
        if !changes.is_empty() {
            r.ingest(changes).unwrap();
        }
        i += n;
        batch += 1;
        if let Apply::Deferred { settle_every } = apply
            && batch % settle_every.max(1) == 0
        {
            r.settle(usize::MAX).unwrap();
        }
    }
    if let Apply::Deferred { .. } = apply {
        let settled = r.settle(usize::MAX).unwrap();
        assert!(!settled.more);
        assert_eq!(r.unapplied().unwrap(), 0);
    }
    let accepted = accepted(&r, &s.doc);
    Outcome {
        accepted,
        heads: heads(&r, &s.doc),
        quarantine: r
            .store()
            .quarantined(&s.doc)
            .unwrap()
            .into_iter()
            .map(|q| (q.change.hash(), q.reason))
            .collect(),
        value: value(&r, &s.doc, "标题"),
    }
}

#[test]
fn the_reference_outcome_is_what_the_rule_says() {
    let s = scenario();
    let all: Vec<usize> = (0..s.items.len()).collect();
    let o = deliver(&s, &all, &[s.items.len()], Apply::Eager);
    // c1 c2 h1 h2 c3 e1a accepted; h3 (outside cut), c4 (depends on h3),
    // fork_x, fork_y (equivocation), s1 (not a write key), bad (automerge
    // cannot apply it), after_bad (depends on it) rejected.
    assert_eq!(o.accepted.len(), 6, "{o:?}");
    assert_eq!(o.quarantine.len(), 7, "{o:?}");
    assert_eq!(o.value.as_deref(), Some("三"));
    let reasons: Vec<&String> = o.quarantine.values().collect();
    for needle in [
        "apply-failed",
        "revoked",
        "depends on rejected",
        "equivocated",
        "not a write key",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(needle)),
            "no `{needle}` in {reasons:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]
    #[test]
    fn every_delivery_order_gives_the_same_result(
        rest in Just((1..16usize).collect::<Vec<_>>()).prop_shuffle(),
        sizes in proptest::collection::vec(1usize..5, 1..6),
        settle_every in 0usize..4,
    ) {
        let s = scenario();
        prop_assert_eq!(s.items.len(), 16);
        // The genesis comes first, as sync sends it: before it, a node cannot
        // place an uncertified write key and refuses its changes outright.
        let mut perm = vec![0];
        perm.extend(rest);
        let all: Vec<usize> = (0..s.items.len()).collect();
        let reference = deliver(&s, &all, &[s.items.len()], Apply::Eager);
        let got = deliver(&s, &perm, &sizes, Apply::Eager);
        prop_assert_eq!(&got, &reference);
        // A node that defers application (a hub) ends with the same, once
        // settled, however its settling falls between the deliveries
        // (0: only at the end).
        let settle_every = if settle_every == 0 { usize::MAX } else { settle_every };
        let deferred = deliver(&s, &perm, &sizes, Apply::Deferred { settle_every });
        prop_assert_eq!(deferred, reference);
    }
}

#[test]
fn a_deferred_node_holds_rules_1_to_7_until_settled_then_the_whole_rule() {
    let s = scenario();
    let all: Vec<usize> = (0..s.items.len()).collect();
    let reference = deliver(&s, &all, &[s.items.len()], Apply::Eager);
    let dir = tempdir().unwrap();
    let mut r = replica(dir.path(), &s.fed, None);
    r.defer_application(true);
    let mut records = Vec::new();
    let mut changes = Vec::new();
    for item in &s.items {
        match item {
            Item::Record(rec) => records.push(rec.clone()),
            Item::Change(c) => changes.push(c.clone()),
        }
    }
    r.insert_records(records).unwrap();
    let report = r
        .ingest(changes.iter().map(SignedChange::encode).collect())
        .unwrap();
    // The unappliable change and its descendant pass rules 1-7: accepted,
    // stored, the document marked, nothing built.
    let (bad, after_bad) = (&changes[changes.len() - 2], &changes[changes.len() - 1]);
    assert!(report.accepted.contains(&bad.hash()), "{report:?}");
    assert!(report.accepted.contains(&after_bad.hash()), "{report:?}");
    assert_eq!(r.unapplied().unwrap(), 1);
    // Its heads come from the hash links, and the scrub checks them so.
    assert!(heads(&r, &s.doc).contains(&after_bad.hash()));
    let scrub = r.scrub(false).unwrap();
    assert!(scrub.problems.is_empty(), "{:?}", scrub.problems);
    // The marks survive a restart; a local write settles its document first.
    drop(r);
    // (A new epoch for the local writes: epoch 1 of the key wrote above.)
    gongjian_store::Store::open(dir.path())
        .unwrap()
        .bump_epoch(1000)
        .unwrap();
    let mut r = reopen_with(dir.path(), &s.fed, &s.fed.community, s.fed.community_id);
    r.defer_application(true);
    assert_eq!(r.unapplied().unwrap(), 1);
    r.local_change(&s.doc, NOW, |am| {
        gongjian_model::NeedsDoc(am).add("n1", "本地写入", "助老", "", NOW as i64)
    })
    .unwrap();
    assert_eq!(r.unapplied().unwrap(), 0);
    let quarantine = r.store().quarantined(&s.doc).unwrap();
    let reasons: BTreeMap<Hash, String> = quarantine
        .into_iter()
        .map(|q| (q.change.hash(), q.reason))
        .collect();
    assert_eq!(reasons, reference.quarantine);
}

/// A change whose op names an object made by a concurrent change (not in
/// its causal past) is refused by automerge until that change is in, then
/// taken (rule 8 is tried again at every evaluation): a deferred node, its
/// settling between the two arrivals, ends as one that applied at once.
#[test]
fn a_change_refused_until_a_concurrent_one_arrives_is_taken_after_settling_too() {
    use automerge::transaction::Transactable;
    let fed = fed();
    let g = genesis(fed.community_id, &fed.community, &[]);
    let doc = DocId(g.hash());
    let mut c = Author::new(&fed.community, 1, doc);
    let c1 = c.put("标题", "一");
    // Epoch 3 makes a map; epoch 4, having seen it, writes into it.
    let mut y = Author::new(&fed.community, 3, doc);
    y.merge(std::slice::from_ref(&c1));
    let mut tx = y.doc.transaction();
    let room = tx
        .put_object(automerge::ROOT, "会议室", automerge::ObjType::Map)
        .unwrap();
    tx.commit();
    let y1 = SignedChange::sign(
        doc,
        y.doc.get_last_local_change().unwrap().raw_bytes().to_vec(),
        &fed.community,
    )
    .unwrap();
    let mut x = Author::new(&fed.community, 4, doc);
    x.merge(&[c1.clone(), y1.clone()]);
    let mut tx = x.doc.transaction();
    tx.put(&room, "预约", "周三").unwrap();
    tx.commit();
    let mut e = x.doc.get_last_local_change().unwrap().decode();
    // Its dependency on the map's change taken away: concurrent with it.
    e.deps = vec![automerge::ChangeHash(c1.hash().0)];
    e.hash = None;
    let x1 = SignedChange::sign(
        doc,
        automerge::Change::from(e).raw_bytes().to_vec(),
        &fed.community,
    )
    .unwrap();

    let outcome = |defer: bool| {
        let dir = tempdir().unwrap();
        let mut r = replica(dir.path(), &fed, None);
        r.insert_records(vec![g.clone()]).unwrap();
        r.defer_application(defer);
        r.ingest(wire(&[c1.clone(), x1.clone()])).unwrap();
        r.settle(usize::MAX).unwrap();
        let refused: Vec<String> = r
            .store()
            .quarantined(&doc)
            .unwrap()
            .into_iter()
            .map(|q| q.reason)
            .collect();
        r.ingest(wire(std::slice::from_ref(&y1))).unwrap();
        r.settle(usize::MAX).unwrap();
        assert_eq!(r.unapplied().unwrap(), 0);
        let accepted = accepted(&r, &doc);
        (
            refused,
            accepted,
            heads(&r, &doc),
            r.store().quarantined(&doc).unwrap().len(),
        )
    };
    let eager = outcome(false);
    assert_eq!(eager.0, vec!["apply-failed".to_owned()], "refused at first");
    assert_eq!(eager.1.len(), 3, "taken once the map's change is in");
    assert_eq!(eager.3, 0);
    assert_eq!(outcome(true), eager);
}
