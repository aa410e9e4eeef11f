//! The acceptance rule end to end: real RocksDB, real automerge, real keys.
//! Every rejection asserts that nothing was accepted or stored as a change.

mod common;

use common::*;
use gongjian_engine::InvalidChange;
use gongjian_identity::{
    CutEntry, DocId, RecordBody, Revocation, RevocationCut, RevocationTarget, SignatureFailure,
    SignedChange,
};
use gongjian_model::Rejection;
use tempfile::tempdir;

#[test]
fn received_changes_are_accepted_and_survive_reopen() {
    let (dir, fed, mut r, doc) = community_doc();
    let mut a = Author::new(&fed.community, 7, doc);
    let c1 = a.put("标题", "社区需要志愿者");
    let c2 = a.put("类别", "志愿服务");
    let report = r.ingest(wire(&[c2.clone(), c1.clone()])).unwrap();
    assert_eq!(report.accepted.len(), 2, "{report:?}");
    let before = heads(&r, &doc);
    assert_eq!(before, vec![c2.hash()]);
    drop(r);
    let r = reopen(dir.path(), &fed);
    assert_eq!(heads(&r, &doc), before);
    assert_eq!(value(&r, &doc, "标题").as_deref(), Some("社区需要志愿者"));
}

#[test]
fn forged_changes_are_refused_and_nothing_is_stored() {
    let (_dir, fed, mut r, doc) = community_doc();
    let mut a = Author::new(&fed.community, 1, doc);
    let good = a.put("k", "v");
    let before = r.store().stats().unwrap();

    // A flipped byte in the signature.
    let mut bytes = good.encode();
    let n = bytes.len();
    bytes[n / 2] ^= 0x10;
    let mut sig_flip = good.encode();
    sig_flip[3 + 32 + 32 + 5] ^= 0x01;
    // The change replayed into another document.
    let mut other_doc = good.encode();
    other_doc[3..35].copy_from_slice(&[0xab; 32]);
    // Actor ≠ signer: the community's chunk signed by the street.
    let stolen = SignedChange::sign(doc, good.chunk().to_vec(), &fed.street).unwrap();

    let report = r
        .ingest(vec![bytes, sig_flip, other_doc, stolen.encode()])
        .unwrap();
    assert_eq!(report.invalid.len(), 4, "{report:?}");
    assert!(report.accepted.is_empty());
    assert!(matches!(
        report.invalid[3].1,
        InvalidChange::Signature {
            failure: SignatureFailure::ActorNotSigner,
            ..
        }
    ));
    assert_eq!(r.store().stats().unwrap(), before, "nothing stored");
    assert!(heads(&r, &doc).is_empty());
}

#[test]
fn the_parent_cannot_write_a_units_document() {
    let (_dir, fed, mut r, doc) = community_doc();
    let before = r.store().stats().unwrap();
    let mut parent = Author::new(&fed.street, 1, doc);
    let c = parent.put("标题", "街道代写");
    let report = r.ingest(wire(std::slice::from_ref(&c))).unwrap();
    assert_eq!(
        report.rejected,
        vec![(c.hash(), Rejection::NotWriteKey(fed.street.public()))]
    );
    let after = r.store().stats().unwrap();
    assert_eq!(
        (after.changes, after.index),
        (before.changes, before.index),
        "no change stored"
    );
    assert!(heads(&r, &doc).is_empty());
    let q = r
        .store()
        .quarantine_entry(&doc, &c.hash())
        .unwrap()
        .unwrap();
    assert!(q.reason.contains("not a write key"), "{}", q.reason);
}

#[test]
fn an_unknown_author_is_refused_outright() {
    let (_dir, _fed, mut r, doc) = community_doc();
    let stranger = gongjian_identity::Secret::from_seed([99; 32]);
    let mut a = Author::new(&stranger, 1, doc);
    let c = a.put("k", "v");
    let before = r.store().stats().unwrap();
    let report = r.ingest(wire(&[c])).unwrap();
    assert!(matches!(
        report.invalid[0].1,
        InvalidChange::UnknownAuthor { .. }
    ));
    assert_eq!(r.store().stats().unwrap(), before);
}

#[test]
fn a_seq_gap_is_rejected() {
    let (_dir, fed, mut r, doc) = community_doc();
    let mut a = Author::new(&fed.community, 1, doc);
    let c1 = a.put("k", "1");
    let c2 = a.put("k", "2");
    // Re-encode c2 as seq 3 (still depending on seq 1) and sign it.
    let mut expanded = automerge::Change::try_from(c2.chunk()).unwrap().decode();
    expanded.seq = 3;
    expanded.hash = None;
    let bad_chunk = automerge::Change::from(expanded).raw_bytes().to_vec();
    let bad = SignedChange::sign(doc, bad_chunk, &fed.community).unwrap();
    let report = r.ingest(wire(&[c1.clone(), bad.clone()])).unwrap();
    assert_eq!(report.accepted, vec![c1.hash()]);
    assert_eq!(
        report.rejected,
        vec![(
            bad.hash(),
            Rejection::SeqGap {
                seq: 3,
                expected_prev: 2
            }
        )]
    );
    assert_eq!(heads(&r, &doc), vec![c1.hash()]);
}

#[test]
fn missing_dependencies_wait_then_apply() {
    let (_dir, fed, mut r, doc) = community_doc();
    let mut a = Author::new(&fed.community, 1, doc);
    let c1 = a.put("k", "1");
    let c2 = a.put("k", "2");
    let report = r.ingest(wire(std::slice::from_ref(&c2))).unwrap();
    assert_eq!(report.pending, vec![c2.hash()]);
    assert!(heads(&r, &doc).is_empty());
    let report = r.ingest(wire(std::slice::from_ref(&c1))).unwrap();
    assert_eq!(report.accepted, vec![c1.hash()]);
    assert_eq!(
        heads(&r, &doc),
        vec![c2.hash()],
        "the waiting change was applied too"
    );
    assert_eq!(r.store().stats().unwrap().quarantine, 0);
}

#[test]
fn a_revoked_key_outside_its_cut_is_rejected_in_either_order() {
    for revocation_first in [false, true] {
        let (_dir, fed, mut r, doc) = community_doc();
        let mut a = Author::new(&fed.community, 1, doc);
        let c1 = a.put("k", "before");
        let c2 = a.put("k", "after the leak");
        let revocation = Revocation {
            target: RevocationTarget::Key(fed.community.public()),
            cut: RevocationCut {
                changes: vec![CutEntry::new(&doc, c1.header().actor, 1, c1.hash())],
                records: vec![gongjian_identity::Blinded::of(
                    &genesis(fed.community_id, &fed.community, &[]).hash(),
                )],
            },
            reason: "密钥泄露".into(),
            issued_at: NOW,
        }
        .sign(&fed.street);
        if revocation_first {
            r.insert_records(vec![revocation.clone()]).unwrap();
        }
        r.ingest(wire(&[c1.clone(), c2.clone()])).unwrap();
        if !revocation_first {
            assert_eq!(heads(&r, &doc), vec![c2.hash()]);
            r.insert_records(vec![revocation.clone()]).unwrap();
        }
        assert_eq!(
            heads(&r, &doc),
            vec![c1.hash()],
            "revocation_first = {revocation_first}"
        );
        assert_eq!(value(&r, &doc, "k").as_deref(), Some("before"));
        assert!(
            r.store().change(&doc, &c2.hash()).unwrap().is_none(),
            "cut-off change not kept as accepted"
        );
        let q = r
            .store()
            .quarantine_entry(&doc, &c2.hash())
            .unwrap()
            .unwrap();
        assert!(q.reason.contains("revoked"), "{}", q.reason);
    }
}

#[test]
fn equivocation_freezes_the_forked_actor_without_aborting_honest_changes() {
    let dir = tempdir().unwrap();
    let fed = fed();
    let mut r = replica(dir.path(), &fed, None);
    let helper = gongjian_identity::Secret::from_seed([44; 32]);
    let g = genesis(fed.community_id, &fed.community, &[helper.public()]);
    let doc = DocId(g.hash());
    r.insert_records(vec![g]).unwrap();

    let mut a = Author::new(&fed.community, 1, doc);
    let base = a.put("k", "base");
    // A restored backup that forgot to bump its epoch: two different seq 2.
    let mut clone = Author::new(&fed.community, 1, doc);
    clone.merge(std::slice::from_ref(&base));
    let fork_a = a.put("k", "branch a");
    let fork_b = clone.put("k", "branch b");
    assert_eq!(fork_a.header().seq, fork_b.header().seq);
    let mut honest = Author::new(&helper, 1, doc);
    honest.merge(std::slice::from_ref(&base));
    let h1 = honest.put("其他", "诚实的修改");

    let report = r
        .ingest(wire(&[
            base.clone(),
            fork_a.clone(),
            h1.clone(),
            fork_b.clone(),
        ]))
        .unwrap();
    let mut accepted = report.accepted.clone();
    accepted.sort();
    let mut expected = vec![base.hash(), h1.hash()];
    expected.sort();
    assert_eq!(accepted, expected, "{report:?}");
    assert_eq!(report.rejected.len(), 2);
    assert!(
        report
            .rejected
            .iter()
            .all(|(_, why)| matches!(why, Rejection::Equivocation { fork_seq: 2, .. }))
    );
    assert_eq!(value(&r, &doc, "其他").as_deref(), Some("诚实的修改"));
    assert_eq!(value(&r, &doc, "k").as_deref(), Some("base"));
}

/// A node that accepted a long branch (more changes past the fork than the
/// quarantine takes of one author) still takes the first changes of the
/// other, which prove the fork: the changes it had accepted move to the
/// quarantine without counting against its bound. Asked then by a peer
/// whose changes reach the fork, it answers with both branches, each its
/// own group; a peer whose chain is another than its own at that seq gets
/// its whole chain.
#[test]
fn a_long_branch_does_not_keep_out_the_proof_of_its_fork() {
    let (_dir, fed, mut r, doc) = community_doc();
    let mut a = Author::new(&fed.community, 1, doc);
    let base = a.put("k", "base");
    let mut clone = Author::new(&fed.community, 1, doc);
    clone.merge(std::slice::from_ref(&base));
    let long: Vec<SignedChange> = (0..150).map(|i| a.put("k", &format!("甲{i}"))).collect();
    let short: Vec<SignedChange> = (0..5).map(|i| clone.put("k", &format!("乙{i}"))).collect();
    let mut first = vec![base.clone()];
    first.extend(long.iter().cloned());
    // Another node, which holds the long branch only.
    let dir2 = tempdir().unwrap();
    let mut other = replica(dir2.path(), &fed, None);
    other.insert_records(r.store().records().unwrap()).unwrap();
    for n in [&mut r, &mut other] {
        assert_eq!(n.ingest(wire(&first)).unwrap().accepted.len(), 151);
    }

    let report = r.ingest(wire(&short)).unwrap();
    assert!(report.invalid.is_empty(), "none refused: {report:?}");
    assert_eq!(report.forked.len(), 5, "{report:?}");
    assert!(report.cut_off.contains(&doc));
    assert_eq!(heads(&r, &doc), vec![base.hash()]);
    assert_eq!(value(&r, &doc, "k").as_deref(), Some("base"));
    // A third branch later, in another call: the 155 changes held as the
    // fork's proof do not count against the bound, so it is taken too.
    let mut third = Author::new(&fed.community, 1, doc);
    third.merge(std::slice::from_ref(&base));
    let c = third.put("k", "丙");
    let later = r.ingest(wire(std::slice::from_ref(&c))).unwrap();
    assert!(later.invalid.is_empty(), "{later:?}");
    assert_eq!(later.forked, [c.hash()]);
    // And the other way: a node holding the short branch takes all 150
    // of the long one (new changes, rejected as the fork's proof).
    let dir3 = tempdir().unwrap();
    let mut short_side = replica(dir3.path(), &fed, None);
    short_side
        .insert_records(r.store().records().unwrap())
        .unwrap();
    let mut b = vec![base.clone()];
    b.extend(short.iter().cloned());
    assert_eq!(short_side.ingest(wire(&b)).unwrap().accepted.len(), 6);
    let took = short_side.ingest(wire(&long)).unwrap();
    assert!(took.invalid.is_empty(), "none refused: {took:?}");
    assert_eq!(took.forked.len(), 150);
    assert_eq!(heads(&short_side, &doc), vec![base.hash()]);
    // The long branch sent again: held, and reported as a fork's branch.
    let again = r.ingest(wire(&long[..3])).unwrap();
    assert_eq!((again.accepted.len(), again.forked.len()), (0, 3));
    assert!(again.cut_off.is_empty(), "nothing more moved");

    let actor = base.header().actor;
    let branch_sizes = |groups: Vec<Vec<SignedChange>>| {
        let mut n: Vec<usize> = groups.iter().map(Vec::len).collect();
        n.sort();
        n
    };
    // A peer at the long branch's head: two of the three branches, each
    // from the fork to its first signature.
    let have = gongjian_sync::Have::from([(actor, (151, long[149].hash()))]);
    let proof = r.answer_want(&doc, &have, &Default::default()).unwrap();
    assert_eq!(proof.len(), 2);
    for line in &proof {
        assert_eq!(line[0].header().seq, 2, "from the fork");
        let signed: Vec<bool> = line.iter().map(|c| c.signature().is_some()).collect();
        assert_eq!(
            signed.iter().position(|s| *s),
            Some(line.len() - 1),
            "{signed:?}"
        );
    }
    // A peer that knows the fork (its changes stop before it): nothing.
    let have = gongjian_sync::Have::from([(actor, (1, base.hash()))]);
    assert!(
        r.answer_want(&doc, &have, &Default::default())
            .unwrap()
            .is_empty()
    );
    // The node holding the long branch only, asked by one at the short
    // branch's head: its chain from the first change.
    let have = gongjian_sync::Have::from([(actor, (6, short[4].hash()))]);
    assert_eq!(
        branch_sizes(other.answer_want(&doc, &have, &Default::default()).unwrap()),
        [151]
    );
    let have = gongjian_sync::Have::from([(actor, (6, long[4].hash()))]);
    assert_eq!(
        branch_sizes(other.answer_want(&doc, &have, &Default::default()).unwrap()),
        [145]
    );
}

#[test]
fn a_change_that_makes_automerge_fail_is_quarantined_and_the_node_restarts() {
    let (dir, fed, mut r, doc) = community_doc();
    let mut a = Author::new(&fed.community, 1, doc);
    let c1 = a.put("k", "ok");
    // A change whose op targets an object that does not exist.
    let mut scratch = Author::new(&fed.community, 1, doc);
    scratch.merge(std::slice::from_ref(&c1));
    let c2 = scratch.put("k2", "x");
    let mut expanded = automerge::Change::try_from(c2.chunk()).unwrap().decode();
    let bogus = format!("99@{}", hex_actor(&c2));
    let json = serde_json::to_value(&expanded.operations[0]).unwrap();
    let mut json = json;
    json["obj"] = serde_json::Value::String(bogus);
    expanded.operations[0] = serde_json::from_value(json).unwrap();
    expanded.hash = None;
    let bad_chunk = automerge::Change::from(expanded).raw_bytes().to_vec();
    let bad = SignedChange::sign(doc, bad_chunk, &fed.community).unwrap();

    let report = r.ingest(wire(&[c1.clone(), bad.clone()])).unwrap();
    assert_eq!(report.accepted, vec![c1.hash()], "{report:?}");
    assert_eq!(report.rejected, vec![(bad.hash(), Rejection::ApplyFailed)]);
    assert_eq!(heads(&r, &doc), vec![c1.hash()]);
    drop(r);
    let r = reopen(dir.path(), &fed);
    assert_eq!(value(&r, &doc, "k").as_deref(), Some("ok"));
    assert_eq!(r.store().quarantined(&doc).unwrap().len(), 1);
}

fn hex_actor(c: &SignedChange) -> String {
    c.header()
        .actor
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A change of `a`'s document whose op names an object that does not exist:
/// automerge refuses it (rule 8).
fn unappliable(a: &mut Author, secret: &gongjian_identity::Secret) -> SignedChange {
    let c = a.put("坏", "x");
    let mut expanded = automerge::Change::try_from(c.chunk()).unwrap().decode();
    let json = serde_json::to_value(&expanded.operations[0]).unwrap();
    let mut json = json;
    json["obj"] = serde_json::Value::String(format!("99@{}", hex_actor(&c)));
    expanded.operations[0] = serde_json::from_value(json).unwrap();
    expanded.hash = None;
    let chunk = automerge::Change::from(expanded).raw_bytes().to_vec();
    SignedChange::sign(*c.doc(), chunk, secret).unwrap()
}

#[test]
fn documents_applied_on_two_cores_are_judged_as_one_at_a_time() {
    // Six documents, each written 40 times. The first 16 changes of each in
    // one call; the node reopened (nothing cached); the 17th of the first
    // three in another call (those three built from the store and cached);
    // then the rest of all in one call: three cached documents and three
    // built from the store first, applied on either core; the fourth with a
    // change automerge refuses at its end, the second without its 18th
    // change (the rest of it waits: the whole rule, between the others). A
    // node taking the same changes one document per call must end the same.
    let fed = fed();
    let (d1, d2) = (tempdir().unwrap(), tempdir().unwrap());
    let mut shared = replica(d1.path(), &fed, None);
    let mut alone = replica(d2.path(), &fed, None);
    let mut docs = Vec::new();
    for i in 0..6u64 {
        let g = genesis_at(fed.community_id, &fed.community, NOW + i);
        docs.push(DocId(g.hash()));
        shared.insert_records(vec![g.clone()]).unwrap();
        alone.insert_records(vec![g]).unwrap();
    }
    let mut calls: [Vec<Vec<SignedChange>>; 3] = Default::default();
    let mut bad = None;
    for (i, doc) in docs.iter().enumerate() {
        let mut a = Author::new(&fed.community, 1, *doc);
        let changes: Vec<SignedChange> = (0..40)
            .map(|j| a.put(&format!("第{j}项"), &format!("文档{i}的值{j}")))
            .collect();
        let cached = i < 3;
        calls[0].push(changes[..16].to_vec());
        calls[1].push(if cached {
            vec![changes[16].clone()]
        } else {
            vec![]
        });
        let mut last = changes[if cached { 17 } else { 16 }..].to_vec();
        if i == 1 {
            last.remove(0);
        }
        if i == 3 {
            let b = unappliable(&mut a, &fed.community);
            bad = Some(b.hash());
            last.push(b);
        }
        calls[2].push(last);
    }
    let bad = bad.unwrap();

    let all = |call: &Vec<Vec<SignedChange>>| -> Vec<SignedChange> {
        call.iter().flatten().cloned().collect()
    };
    assert_eq!(
        shared.ingest(wire(&all(&calls[0]))).unwrap().accepted.len(),
        96
    );
    drop(shared);
    let mut shared = reopen(d1.path(), &fed);
    assert_eq!(
        shared.ingest(wire(&all(&calls[1]))).unwrap().accepted.len(),
        3
    );
    let before = shared.counters().applied_on_two_cores;
    let report = shared.ingest(wire(&all(&calls[2]))).unwrap();
    if gongjian_identity::two_cores() {
        // The second document splits the five fast ones in two runs at
        // most, one of three or more: over `APPLY_ON_TWO_CORES`.
        assert!(
            shared.counters().applied_on_two_cores > before,
            "{:?}",
            shared.counters()
        );
    }

    let mut last_alone = gongjian_engine::IngestReport::default();
    for i in 0..docs.len() {
        for call in &calls {
            if !call[i].is_empty() {
                let r = alone.ingest(wire(&call[i])).unwrap();
                if std::ptr::eq(call, &calls[2]) {
                    last_alone.accepted.extend(r.accepted);
                    last_alone.pending.extend(r.pending);
                    last_alone.rejected.extend(r.rejected);
                }
            }
        }
    }
    assert_eq!(
        alone.counters().applied_on_two_cores,
        0,
        "one document a call"
    );
    let sorted = |mut v: Vec<gongjian_identity::Hash>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(report.accepted.clone()),
        sorted(last_alone.accepted),
        "the same changes accepted"
    );
    assert_eq!(report.accepted.len(), 2 * 23 + 3 * 24);
    assert_eq!(report.accepted_docs.len(), report.accepted.len());
    assert_eq!(sorted(report.pending.clone()), sorted(last_alone.pending));
    assert_eq!(report.pending.len(), 22, "the second document's rest waits");
    assert_eq!(report.rejected, vec![(bad, Rejection::ApplyFailed)]);
    assert_eq!(last_alone.rejected, report.rejected);
    for (i, doc) in docs.iter().enumerate() {
        assert_eq!(heads(&shared, doc), heads(&alone, doc), "document {i}");
        assert_eq!(
            accepted(&shared, doc),
            accepted(&alone, doc),
            "document {i}"
        );
        let quarantined = [0, 22, 0, 1, 0, 0][i];
        assert_eq!(
            shared.store().quarantined(doc).unwrap().len(),
            quarantined,
            "document {i}"
        );
        let want = (i != 1).then(|| format!("文档{i}的值39"));
        assert_eq!(value(&shared, doc, "第39项"), want, "document {i}");
        assert_eq!(value(&alone, doc, "第39项"), want, "document {i}");
    }
}
