//! Attacks found in review, each shown to fail: co-certification, unsigned
//! floods, thieves inside a revocation cut, cross-document chunks.

mod common;

use common::*;
use gongjian_engine::{EngineError, InvalidChange};
use gongjian_identity::{
    CutEntry, DocId, Hash, RecordBody, Recovery, Revocation, RevocationCut, RevocationTarget,
    Secret, SignedChange, UnitKind,
};
use gongjian_model::Rejection;
use tempfile::tempdir;

#[test]
fn certifying_someone_elses_key_gives_no_power_over_it() {
    let dir = tempdir().unwrap();
    let f = fed();
    let mut r = replica(dir.path(), &f, None);
    // A second street, honest-looking, then malicious.
    let other = Secret::from_seed([30; 32]);
    let other_id = "320106003000".parse().unwrap();
    r.insert_records(vec![cert(
        &f.root,
        &other,
        other_id,
        UnitKind::Street,
        Some(f.district_id),
        "华侨路街道",
    )])
    .unwrap();
    // It certifies the community's key for a made-up resident unit of its own…
    let fake_unit = "91350100M000100Y43".parse().unwrap();
    r.insert_records(vec![cert(
        &other,
        &f.community,
        fake_unit,
        UnitKind::Resident,
        Some(other_id),
        "虚构单位",
    )])
    .unwrap();
    // …then revokes that key with an empty cut.
    let attack = Revocation {
        target: RevocationTarget::Key(f.community.public()),
        cut: RevocationCut::default(),
        reason: "攻击".into(),
        issued_at: NOW,
    }
    .sign(&other);
    r.insert_records(vec![attack]).unwrap();
    assert!(
        !r.trust().is_revoked(&f.community.public()),
        "no authority over the community"
    );
    assert!(r.trust().admit(&f.community.public(), NOW).is_ok());

    // It also certifies a key of its own under a real resident unit's id and
    // signs a recovery: the resident's documents do not get its key.
    let hospital = Secret::from_seed([31; 32]);
    let mine = Secret::from_seed([32; 32]);
    let hospital_id = "91320106MA1MXXXXX0".parse::<gongjian_identity::UnitId>();
    assert!(hospital_id.is_err(), "check character enforced");
    let hospital_id = fake_unit; // reuse a valid credit code for the real unit
    r.insert_records(vec![cert(
        &f.street,
        &hospital,
        hospital_id,
        UnitKind::Resident,
        Some(f.street_id),
        "江苏省人民医院",
    )])
    .unwrap();
    let g = genesis(hospital_id, &hospital, &[]);
    let doc = DocId(g.hash());
    r.insert_records(vec![g]).unwrap();
    r.insert_records(vec![cert(
        &other,
        &mine,
        hospital_id,
        UnitKind::Resident,
        Some(other_id),
        "冒名",
    )])
    .unwrap();
    let takeover = Recovery {
        unit: hospital_id,
        keys: vec![mine.public()],
        reason: "接管".into(),
        issued_at: NOW,
    }
    .sign(&other);
    r.insert_records(vec![takeover]).unwrap();
    assert!(!r.trust().write_keys(&doc).unwrap().contains(&mine.public()));
    let mut thief = Author::new(&mine, 1, doc);
    let c = thief.put("标题", "冒名写入");
    let report = r.ingest(wire(std::slice::from_ref(&c))).unwrap();
    assert_eq!(
        report.rejected,
        vec![(c.hash(), Rejection::NotWriteKey(mine.public()))]
    );
    // The real parent's recovery does count.
    let real = Recovery {
        unit: hospital_id,
        keys: vec![mine.public()],
        reason: "医院电脑损坏".into(),
        issued_at: NOW + 1,
    }
    .sign(&f.street);
    r.insert_records(vec![real]).unwrap();
    assert!(r.trust().write_keys(&doc).unwrap().contains(&mine.public()));
    assert_eq!(
        heads(&r, &doc),
        vec![c.hash()],
        "the quarantined change is accepted once authorised"
    );
}

#[test]
fn unsigned_changes_need_a_signed_voucher() {
    let (_dir, f, mut r, doc) = community_doc();
    let mut a = Author::new(&f.community, 1, doc);
    let c1 = a.put("k", "1");
    let c2 = a.put("k", "2");
    let before = r.store().stats().unwrap();
    // An unsigned copy alone, claiming a certified key: refused, not stored.
    let report = r.ingest(wire(&[c2.without_signature()])).unwrap();
    assert!(matches!(
        report.invalid[0].1,
        InvalidChange::Unvouched { .. }
    ));
    assert_eq!(r.store().stats().unwrap(), before);
    // Edge-signed: c1 unsigned, vouched by signed c2 in the same batch.
    let report = r
        .ingest(wire(&[c1.without_signature(), c2.clone()]))
        .unwrap();
    assert_eq!(report.accepted.len(), 2, "{report:?}");
    assert_eq!(heads(&r, &doc), vec![c2.hash()]);
    // A change for a document whose genesis is not held: refused.
    let mut stray = Author::new(&f.community, 1, DocId(Hash([7; 32])));
    let report = r.ingest(wire(&[stray.put("k", "v")])).unwrap();
    assert!(matches!(
        report.invalid[0].1,
        InvalidChange::UnknownDocument { .. }
    ));
}

#[test]
fn records_from_outside_the_federation_are_refused_whole() {
    let dir = tempdir().unwrap();
    let f = fed();
    let mut r = replica(dir.path(), &f, None);
    let before = r.store().stats().unwrap();
    let foreign_root = Secret::from_seed([60; 32]);
    let stranger = Secret::from_seed([61; 32]);
    let junk = vec![
        cert(
            &foreign_root,
            &stranger,
            "320106009000".parse().unwrap(),
            UnitKind::Street,
            Some(f.district_id),
            "假街道",
        ),
        genesis(f.community_id, &stranger, &[]),
    ];
    let err = r.insert_records(junk).unwrap_err();
    assert!(matches!(err, EngineError::NotMember { .. }), "{err}");
    assert_eq!(r.store().stats().unwrap(), before);
}

#[test]
fn a_thief_cannot_rewrite_history_kept_by_a_cut() {
    let dir = tempdir().unwrap();
    let f = fed();
    let mut r = replica(dir.path(), &f, None);
    let g = genesis(f.community_id, &f.community, &[]);
    let doc = DocId(g.hash());
    let keep = vec![gongjian_identity::Blinded::of(&g.hash())];
    r.insert_records(vec![g]).unwrap();
    let mut honest = Author::new(&f.community, 1, doc);
    let c1 = honest.put("k", "1");
    let c2 = honest.put("k", "2");
    let revocation = Revocation {
        target: RevocationTarget::Key(f.community.public()),
        cut: RevocationCut {
            changes: vec![CutEntry::new(&doc, c2.header().actor, 2, c2.hash())],
            records: keep,
        },
        reason: "密钥泄露".into(),
        issued_at: NOW,
    }
    .sign(&f.street);
    r.insert_records(vec![revocation]).unwrap();
    // The thief signs another seq 2 with the leaked key.
    let mut thief = Author::new(&f.community, 1, doc);
    thief.merge(std::slice::from_ref(&c1));
    let forged = thief.put("k", "forged");
    assert_eq!(forged.header().seq, 2);
    let report = r
        .ingest(wire(&[c1.clone(), forged.clone(), c2.clone()]))
        .unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert!(matches!(report.rejected[0], (h, Rejection::Revoked(_)) if h == forged.hash()));
    assert_eq!(
        heads(&r, &doc),
        vec![c2.hash()],
        "the honest history is not frozen"
    );
}

#[test]
fn one_chunk_signed_for_two_documents_is_kept_apart() {
    let dir = tempdir().unwrap();
    let f = fed();
    let mut r = replica(dir.path(), &f, None);
    let ga = genesis(f.community_id, &f.community, &[]);
    let gb = genesis_at(f.community_id, &f.community, NOW + 1);
    let (a, b) = (DocId(ga.hash()), DocId(gb.hash()));
    r.insert_records(vec![ga, gb]).unwrap();
    let mut author = Author::new(&f.community, 1, a);
    let ca = author.put("k", "v");
    let cb = SignedChange::sign(b, ca.chunk().to_vec(), &f.community).unwrap();
    r.ingest(wire(&[ca.clone(), cb.clone()])).unwrap();
    assert_eq!(heads(&r, &a), heads(&r, &b));
    // Cut it off in b only: a keeps it.
    let rev = Revocation {
        target: RevocationTarget::Key(f.community.public()),
        cut: RevocationCut {
            changes: vec![CutEntry::new(&a, ca.header().actor, 1, ca.hash())],
            records: {
                let mut v: Vec<gongjian_identity::Blinded> = r
                    .trust()
                    .documents()
                    .map(|(d, _)| gongjian_identity::Blinded::of(&d.0))
                    .collect();
                v.sort();
                v
            },
        },
        reason: String::new(),
        issued_at: NOW,
    }
    .sign(&f.street);
    r.insert_records(vec![rev]).unwrap();
    assert_eq!(heads(&r, &a), vec![ca.hash()]);
    assert!(heads(&r, &b).is_empty());
    assert_eq!(
        value(&r, &a, "k").as_deref(),
        Some("v"),
        "doc a still loads"
    );
}

/// A second review: co-certifying the genesis signer itself, a shallower
/// junk certificate shielding a deeper key, keys added by recovery.
#[test]
fn lineage_rules_hold_against_co_certification() {
    let dir = tempdir().unwrap();
    let f = fed();
    let mut r = replica(dir.path(), &f, None);
    // A hospital under the community (depth 3).
    let hospital_id: gongjian_identity::UnitId = "91350100M000100Y43".parse().unwrap();
    let g_key = Secret::from_seed([33; 32]);
    r.insert_records(vec![cert(
        &f.community,
        &g_key,
        hospital_id,
        UnitKind::Resident,
        Some(f.community_id),
        "江苏省人民医院",
    )])
    .unwrap();
    let g = genesis(hospital_id, &g_key, &[]);
    let doc = DocId(g.hash());
    r.insert_records(vec![g]).unwrap();
    // Another community of the street certifies the hospital's own key
    // under itself, then tries a recovery and a revocation.
    let c2 = Secret::from_seed([34; 32]);
    let c2_id: gongjian_identity::UnitId = "320106002002".parse().unwrap();
    let takeover = Secret::from_seed([35; 32]);
    r.insert_records(vec![cert(
        &f.street,
        &c2,
        c2_id,
        UnitKind::Community,
        Some(f.street_id),
        "北京西路社区",
    )])
    .unwrap();
    r.insert_records(vec![cert(
        &c2,
        &g_key,
        hospital_id,
        UnitKind::Resident,
        Some(c2_id),
        "江苏省人民医院",
    )])
    .unwrap();
    r.insert_records(vec![
        Recovery {
            unit: hospital_id,
            keys: vec![takeover.public()],
            reason: "接管".into(),
            issued_at: NOW,
        }
        .sign(&c2),
        Revocation {
            target: RevocationTarget::Key(g_key.public()),
            cut: RevocationCut::default(),
            reason: String::new(),
            issued_at: NOW,
        }
        .sign(&c2),
    ])
    .unwrap();
    assert!(
        !r.trust()
            .write_keys(&doc)
            .unwrap()
            .contains(&takeover.public()),
        "no recovery by a second parent"
    );
    assert!(
        !r.trust().is_revoked(&g_key.public()),
        "no revocation by a second parent"
    );

    // A junk certificate for the hospital at depth 2 does not shield the
    // depth-3 key from the root.
    let junk = Secret::from_seed([36; 32]);
    r.insert_records(vec![cert(
        &f.street,
        &junk,
        hospital_id,
        UnitKind::Resident,
        Some(f.street_id),
        "垃圾",
    )])
    .unwrap();
    r.insert_records(vec![
        Revocation {
            target: RevocationTarget::Key(g_key.public()),
            cut: RevocationCut::default(),
            reason: "根撤销".into(),
            issued_at: NOW,
        }
        .sign(&f.root),
    ])
    .unwrap();
    assert!(r.trust().is_revoked(&g_key.public()));
}

#[test]
fn keys_added_by_a_recovery_can_be_revoked_by_the_parent() {
    let dir = tempdir().unwrap();
    let f = fed();
    let mut r = replica(dir.path(), &f, None);
    let g = genesis(f.community_id, &f.community, &[]);
    let doc = DocId(g.hash());
    let spare = Secret::from_seed([37; 32]);
    r.insert_records(vec![
        g,
        Recovery {
            unit: f.community_id,
            keys: vec![spare.public()],
            reason: "电脑损坏".into(),
            issued_at: NOW,
        }
        .sign(&f.street),
    ])
    .unwrap();
    assert!(
        r.trust()
            .write_keys(&doc)
            .unwrap()
            .contains(&spare.public())
    );
    r.insert_records(vec![
        Revocation {
            target: RevocationTarget::Key(spare.public()),
            cut: RevocationCut::default(),
            reason: "备用机丢失".into(),
            issued_at: NOW,
        }
        .sign(&f.street),
    ])
    .unwrap();
    assert!(r.trust().is_revoked(&spare.public()));
    let mut a = Author::new(&spare, 1, doc);
    let c = a.put("k", "v");
    let report = r.ingest(wire(&[c])).unwrap();
    assert!(matches!(report.rejected[0].1, Rejection::Revoked(_)));
}

/// A change whose op names an object made by a concurrent change (not one of
/// its dependencies) gets the same verdict whatever the arrival order.
#[test]
fn apply_failures_do_not_depend_on_arrival_order() {
    use automerge::transaction::Transactable;
    let f = fed();
    let helper = Secret::from_seed([45; 32]);
    let g = genesis(f.community_id, &f.community, &[helper.public()]);
    let doc = DocId(g.hash());
    // Y: the community creates a map object.
    let mut a = Author::new(&f.community, 1, doc);
    let mut tx = a.doc.transaction();
    let obj = tx
        .put_object(automerge::ROOT, "m", automerge::ObjType::Map)
        .unwrap();
    tx.commit();
    let y_chunk = a.doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    let y = SignedChange::sign(doc, y_chunk, &f.community).unwrap();
    // X: the helper, not knowing Y, writes into that object.
    let mut b = Author::new(&helper, 1, doc);
    let x0 = b.put("k", "v");
    let mut expanded = automerge::Change::try_from(x0.chunk()).unwrap().decode();
    let mut op = serde_json::to_value(&expanded.operations[0]).unwrap();
    op["obj"] = serde_json::Value::String(obj.to_string());
    expanded.operations[0] = serde_json::from_value(op).unwrap();
    expanded.hash = None;
    let x = SignedChange::sign(
        doc,
        automerge::Change::from(expanded).raw_bytes().to_vec(),
        &helper,
    )
    .unwrap();

    let mut outcomes = Vec::new();
    for order in [
        vec![vec![&y], vec![&x]],
        vec![vec![&x], vec![&y]],
        vec![vec![&x, &y]],
        vec![vec![&y, &x]],
    ] {
        let dir = tempdir().unwrap();
        let mut r = replica(dir.path(), &f, None);
        r.insert_records(vec![g.clone()]).unwrap();
        for batch in order {
            let owned: Vec<SignedChange> = batch.into_iter().cloned().collect();
            r.ingest(wire(&owned)).unwrap();
        }
        let accepted = accepted(&r, &doc);
        outcomes.push((accepted, heads(&r, &doc)));
    }
    for o in &outcomes[1..] {
        assert_eq!(o, &outcomes[0]);
    }
    assert_eq!(outcomes[0].0.len(), 2, "once Y is in, X applies everywhere");
}

/// One member cannot fill another unit's quarantine: past 100 changes per
/// author and document, its changes are refused and not stored, and the
/// owner's own writes still go through.
#[test]
fn quarantine_is_bounded_per_author() {
    let (_dir, f, mut r, doc) = community_doc();
    let mut spammer = Author::new(&f.street, 1, doc);
    let spam: Vec<SignedChange> = (0..150)
        .map(|i| spammer.put("垃圾", &i.to_string()))
        .collect();
    let report = r.ingest(wire(&spam)).unwrap();
    assert_eq!(report.rejected.len(), 100);
    assert_eq!(report.invalid.len(), 50);
    assert!(
        report
            .invalid
            .iter()
            .all(|(_, e)| matches!(e, InvalidChange::QuarantineFull { .. }))
    );
    assert_eq!(r.store().quarantined(&doc).unwrap().len(), 100);
    let mut owner = Author::new(&f.community, 1, doc);
    let c = owner.put("标题", "照常写入");
    let report = r.ingest(wire(std::slice::from_ref(&c))).unwrap();
    assert_eq!(report.accepted, vec![c.hash()]);
}

#[test]
fn an_edge_signed_flood_past_the_quarantine_bound_stores_nothing_unvouched() {
    let (_dir, f, mut r, doc) = community_doc();
    let mut a = Author::new(&f.community, 1, doc);
    let chain: Vec<SignedChange> = (0..150).map(|i| a.put("k", &format!("v{i}"))).collect();
    // The first change withheld; the rest edge-signed: only the newest
    // keeps its signature, vouching for the 148 below it.
    let n = chain.len();
    let flood: Vec<Vec<u8>> = chain[1..]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i + 2 == n {
                c.encode()
            } else {
                c.without_signature().encode()
            }
        })
        .collect();
    let report = r.ingest(flood).unwrap();
    assert!(report.accepted.is_empty());
    // The signed tip is past the bound; what it vouched for goes with it.
    assert!(report.pending.is_empty(), "{:?}", report.pending.len());
    assert_eq!(report.invalid.len(), 149);
    assert!(
        report
            .invalid
            .iter()
            .all(|(_, why)| matches!(why, InvalidChange::QuarantineFull { .. }))
    );
    assert!(r.store().quarantined(&doc).unwrap().is_empty());
    // The whole chain, signed, later: accepted, nothing lost.
    let report = r.ingest(wire(&chain)).unwrap();
    assert_eq!(report.accepted.len(), 150);
}

/// A copy of `c` whose own signature has one byte flipped (the envelope
/// still parses; the signature no longer verifies).
fn forged_signature(c: &SignedChange) -> SignedChange {
    let mut bytes = c.encode();
    bytes[1 + 1 + 1 + 32 + 32 + 10] ^= 0x01;
    let forged = SignedChange::decode(&bytes).expect("the envelope still parses");
    assert!(forged.verify().is_err());
    forged
}

/// Of an author's run in one batch only the newest signature is checked:
/// it vouches for the run through the hash links (PROTOCOL.md §3). The
/// signatures not checked are not stored, so none is ever relayed; if the
/// newest one fails, each is checked on its own.
#[test]
fn only_the_newest_signature_of_a_run_is_checked_and_no_unchecked_one_is_kept() {
    let (_dir, f, mut r, doc) = community_doc();
    let mut a = Author::new(&f.community, 1, doc);
    let c: Vec<SignedChange> = (0..3).map(|i| a.put("k", &format!("v{i}"))).collect();
    // A relayer flipped a byte of the middle signature: the hash links
    // still tie it to the newest one, whose signature holds.
    let batch = vec![c[0].clone(), forged_signature(&c[1]), c[2].clone()];
    let report = r.ingest(wire(&batch)).unwrap();
    assert_eq!(report.accepted.len(), 3, "{report:?}");
    assert!(report.invalid.is_empty(), "{report:?}");
    let stored = r.store().doc_changes(&doc).unwrap();
    let signed: Vec<_> = stored
        .iter()
        .filter(|s| s.signature().is_some())
        .map(|s| s.hash())
        .collect();
    assert_eq!(
        signed,
        vec![c[2].hash()],
        "only the verified signature kept"
    );
    let scrub = r.scrub(false).unwrap();
    assert!(scrub.is_clean(), "{scrub:?}");
    assert_eq!(scrub.signatures_checked, 1);

    // The newest signature forged: refused, and the others, each checked on
    // its own, are accepted with their signatures.
    let (_dir2, f2, mut r2, doc2) = community_doc();
    let mut b = Author::new(&f2.community, 1, doc2);
    let d: Vec<SignedChange> = (0..3).map(|i| b.put("k", &format!("v{i}"))).collect();
    let batch = vec![d[0].clone(), d[1].clone(), forged_signature(&d[2])];
    let report = r2.ingest(wire(&batch)).unwrap();
    assert_eq!(
        report.accepted,
        vec![d[0].hash(), d[1].hash()],
        "{report:?}"
    );
    assert_eq!(report.invalid.len(), 1);
    assert!(matches!(
        report.invalid[0],
        (2, InvalidChange::Signature { .. })
    ));
    assert!(
        r2.store()
            .doc_changes(&doc2)
            .unwrap()
            .iter()
            .all(|s| s.signature().is_some())
    );
    assert_eq!(heads(&r2, &doc2), vec![d[1].hash()]);

    // A long run keeps a signature every CHECKPOINT_SEQ changes, so it can
    // be relayed again in batches that each end on a signature.
    let (_dir4, f4, mut r4, doc4) = community_doc();
    let mut h = Author::new(&f4.community, 1, doc4);
    let run: Vec<SignedChange> = (0..130).map(|i| h.put("k", &format!("v{i}"))).collect();
    let report = r4.ingest(wire(&run)).unwrap();
    assert_eq!(report.accepted.len(), 130);
    let mut kept: Vec<u64> = r4
        .store()
        .doc_changes(&doc4)
        .unwrap()
        .iter()
        .filter(|s| s.signature().is_some())
        .map(|s| s.header().seq)
        .collect();
    kept.sort();
    let k = gongjian_engine::CHECKPOINT_SEQ;
    assert_eq!(kept, vec![k, 2 * k, 130]);

    // Both the newest and a middle one forged: only the first gets in.
    let (_dir3, f3, mut r3, doc3) = community_doc();
    let mut e = Author::new(&f3.community, 1, doc3);
    let g: Vec<SignedChange> = (0..3).map(|i| e.put("k", &format!("v{i}"))).collect();
    let batch = vec![
        g[0].clone(),
        forged_signature(&g[1]),
        forged_signature(&g[2]),
    ];
    let report = r3.ingest(wire(&batch)).unwrap();
    assert_eq!(report.accepted, vec![g[0].hash()], "{report:?}");
    assert_eq!(report.invalid.len(), 2);
    assert_eq!(heads(&r3, &doc3), vec![g[0].hash()]);
}
