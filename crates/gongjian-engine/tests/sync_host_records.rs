//! The replica as a sync host, its records set: records batched across
//! messages are kept whatever the batching; foreign or malformed ones are
//! counted, not kept; each record is keyed by its street.

mod common;

use common::*;
use gongjian_identity::{RecordBody, Secret};
use gongjian_sync::Host;
use tempfile::tempdir;

/// A replica that knows the district and the street, not the community;
/// the community's certificate and genesis, and a hospital's certificate
/// signed by the community.
fn knows_the_street() -> (
    tempfile::TempDir,
    Fed,
    gongjian_engine::Replica,
    [gongjian_identity::SignedRecord; 3],
) {
    let f = fed();
    let dir = tempdir().unwrap();
    let store = gongjian_store::Store::create(dir.path()).unwrap();
    let mut r = gongjian_engine::Replica::open(store, f.root.public(), None).unwrap();
    r.insert_records(f.records[..2].to_vec()).unwrap();
    let records = [
        f.records[2].clone(),
        genesis(f.community_id, &f.community, &[]),
        hospital(&f, 77).cert,
    ];
    (dir, f, r, records)
}

#[test]
fn records_in_any_batching_get_in() {
    let (_dir, f, mut r, [community_cert, community_genesis, hospital_cert]) = knows_the_street();
    // One batch: the hospital's certificate (signed by the community, not
    // yet known here) before the community's own certificate.
    let s = r
        .ingest_records(vec![hospital_cert.encode(), community_cert.encode()])
        .unwrap();
    assert_eq!((s.accepted, s.unknown, s.invalid), (2, 0, 0), "{s:?}");
    // A genesis whose signer is unknown waits (not the sender's fault)...
    let stranger = Secret::from_seed([78; 32]);
    let foreign = genesis(f.community_id, &stranger, &[]);
    let s = r
        .ingest_records(vec![foreign.encode(), community_genesis.encode()])
        .unwrap();
    assert_eq!((s.accepted, s.unknown, s.invalid), (1, 1, 0), "{s:?}");
    // Records are tried in the set in place: what was left out is not in
    // memory either, and memory and the store agree.
    assert!(!r.membership().contains(&foreign.hash()));
    assert_eq!(r.membership().len(), r.store().records().unwrap().len());
    // A batch refused whole (a foreign signer) leaves nothing behind.
    let held = r.membership().len();
    let err = r.insert_records(vec![foreign.clone()]).unwrap_err();
    assert!(
        matches!(err, gongjian_engine::EngineError::NotMember { .. }),
        "{err}"
    );
    assert_eq!(r.membership().len(), held);
    assert!(!r.membership().contains(&foreign.hash()));
    // ...and a malformed record refuses its whole batch.
    let mut bad = community_genesis.encode();
    bad.truncate(bad.len() - 3);
    let s = r.ingest_records(vec![bad]).unwrap();
    assert_eq!(s.invalid, 1);
    assert_eq!(r.store().records().unwrap().len(), 5);
}

/// Records frames read together (from different peers) are admitted in
/// one evaluation: a certificate in one frame lets in what it signs in
/// another; each frame is still checked alone, so a malformed record
/// refuses only its own frame, and each gets its own summary.
#[test]
fn folded_records_frames_each_get_their_own_summary() {
    let (_dir, f, mut r, [community_cert, community_genesis, hospital_cert]) = knows_the_street();
    let stranger = Secret::from_seed([78; 32]);
    let foreign = genesis(f.community_id, &stranger, &[]);
    let mut bad = community_genesis.encode();
    bad.truncate(bad.len() - 3);
    let frames = vec![
        // Signed by the community, whose certificate is in the next frame.
        vec![hospital_cert.encode(), community_genesis.encode()],
        vec![community_cert.encode(), foreign.encode()],
        // Malformed: refused whole, the hospital's certificate with it.
        vec![hospital_cert.encode(), bad],
        // Held already (from the first frame): nothing new.
        vec![community_genesis.encode()],
    ];
    let s = r.ingest_records_folded(frames).unwrap();
    let got: Vec<_> = s
        .iter()
        .map(|s| (s.accepted, s.unknown, s.invalid))
        .collect();
    assert_eq!(got, vec![(2, 0, 0), (1, 1, 0), (0, 0, 1), (1, 0, 0)]);
    for rec in [&hospital_cert, &community_cert, &community_genesis] {
        assert!(r.membership().contains(&rec.hash()));
    }
    assert!(!r.membership().contains(&foreign.hash()));
    assert_eq!(r.membership().len(), r.store().records().unwrap().len());
    assert_eq!(r.membership().len(), 5);
}

/// The records set is keyed by street (PROTOCOL.md §8.2): a certificate
/// by its own code or its parent's, a genesis by its unit's (a resident
/// unit's through its certified parent), a key's revocation by none.
#[test]
fn records_are_keyed_by_their_street() {
    let f = fed();
    let dir = tempdir().unwrap();
    let mut r = replica(dir.path(), &f, None);
    let h = hospital(&f, 77);
    let leaver = Secret::from_seed([80; 32]);
    let leaver_cert = cert(
        &f.community,
        &leaver,
        "91320106MA1MXXXXXR".parse().unwrap(),
        gongjian_identity::UnitKind::Resident,
        Some(f.community_id),
        "搬离的单位",
    );
    let revocation = gongjian_identity::Revocation {
        target: gongjian_identity::RevocationTarget::Key(leaver.public()),
        cut: gongjian_identity::RevocationCut::default(),
        reason: "搬离".into(),
        issued_at: NOW,
    }
    .sign(&f.community);
    let hospital_genesis = genesis(h.id, &h.secret, &[]);
    let community_genesis = genesis(f.community_id, &f.community, &[]);
    r.insert_records(vec![
        h.cert.clone(),
        hospital_genesis.clone(),
        community_genesis.clone(),
        leaver_cert.clone(),
        revocation.clone(),
    ])
    .unwrap();
    let items = r
        .items(gongjian_sync::SetId::Records, &f.district_id)
        .unwrap();
    let street = Some(f.street_id);
    let expect = [
        (&f.records[0], Some(f.district_id)),
        (&f.records[1], street),
        (&f.records[2], street),
        (&h.cert, street),
        (&hospital_genesis, street),
        (&community_genesis, street),
        (&leaver_cert, street),
        (&revocation, None),
    ];
    for (record, street) in expect {
        let hash = record.hash();
        let item = items
            .iter()
            .find(|i| i.record_hash() == hash)
            .unwrap_or_else(|| panic!("{:?} is not in the set", record.kind()));
        assert_eq!(
            *item,
            gongjian_sync::Item::record(street.as_ref(), &hash),
            "{:?} keyed by the wrong street",
            record.kind()
        );
    }
    assert_eq!(items.len(), expect.len());
}
