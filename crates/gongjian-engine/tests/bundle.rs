//! Sneakernet bundles: a community's edits carried to the district on a
//! file; tampered, foreign, misaddressed and insider-forged bundles refused
//! whole with nothing stored.

mod common;

use common::*;
use gongjian_engine::{Bundle, BundleError, Replica};
use gongjian_identity::{DocId, DocType, Hash, Secret};
use gongjian_model::NeedsDoc;
use tempfile::tempdir;

fn add_need(r: &mut Replica, doc: &DocId, id: &str, title: &str) {
    r.local_change(doc, NOW, |am| {
        NeedsDoc(am).add(id, title, "助老", "", NOW as i64)
    })
    .unwrap();
}

fn titles(r: &Replica, doc: &DocId) -> Vec<String> {
    let mut am = r.load(doc).unwrap();
    let mut t: Vec<String> = NeedsDoc(&mut am)
        .list()
        .into_iter()
        .map(|n| n.title)
        .collect();
    t.sort();
    t
}

fn counts(r: &Replica) -> (u64, u64, u64, u64) {
    let s = r.store().stats().unwrap();
    (s.docs, s.changes, s.records, s.quarantine)
}

#[test]
fn a_bundle_carries_a_communitys_edits_to_the_district_and_then_only_what_it_lacks() {
    let tmp = tempdir().unwrap();
    let f = fed();
    let mut c = node(&tmp.path().join("c"), &f, &[], &f.community, f.community_id);
    let mut d = node(&tmp.path().join("d"), &f, &[], &f.district, f.district_id);
    let doc = c.create_document(DocType::Needs, NOW).unwrap();
    add_need(&mut c, &doc, "n1", "独居老人助餐志愿者");
    add_need(&mut c, &doc, "n2", "楼道灯维修");
    c.announce_heads(NOW).unwrap();

    let (bytes, summary) = c.export_bundle(f.district_id, None, NOW).unwrap();
    assert_eq!(summary.documents, 1);
    assert_eq!(summary.changes, 2, "two needs (the genesis is a record)");
    let bundle = Bundle::parse(&bytes).unwrap();
    assert_eq!(bundle.from_unit(), f.community_id);
    let got = d
        .import_bundle(&bundle, &tmp.path().join("scratch"), NOW)
        .unwrap();
    assert_eq!(got.changes_accepted, 2);
    assert_eq!(got.changes_rejected + got.changes_pending, 0);
    assert!(!tmp.path().join("scratch").exists(), "scratch removed");
    assert_eq!(titles(&d, &doc), titles(&c, &doc));
    assert_eq!(heads(&d, &doc), heads(&c, &doc));
    assert_eq!(
        d.heads_of(&f.community_id).map(|h| h.docs),
        c.heads_of(&f.community_id).map(|h| h.docs),
        "the community's signed heads travel with the data"
    );

    // The same bundle again: nothing new.
    let again = d
        .import_bundle(&bundle, &tmp.path().join("scratch"), NOW)
        .unwrap();
    assert_eq!(again.changes_accepted, 0);
    assert_eq!(again.changes_already_held, 2);
    assert_eq!(again.records_new, 0);

    // With the district's state, only what it lacks.
    let state = d.peer_state(&f.community_id).unwrap();
    let state = gongjian_engine::PeerState::decode(&state.encode()).unwrap();
    add_need(&mut c, &doc, "n3", "社区花园认领");
    let (bytes, summary) = c.export_bundle(f.district_id, Some(&state), NOW).unwrap();
    assert_eq!(summary.changes, 1, "only the new change");
    assert_eq!(summary.records, 0, "the district holds every record");
    let got = d
        .import_bundle(
            &Bundle::parse(&bytes).unwrap(),
            &tmp.path().join("scratch"),
            NOW,
        )
        .unwrap();
    assert_eq!(got.changes_accepted, 1);
    assert_eq!(titles(&d, &doc).len(), 3);
    assert_eq!(heads(&d, &doc), heads(&c, &doc));
}

#[test]
fn tampered_foreign_misaddressed_and_forged_bundles_are_refused_whole() {
    let tmp = tempdir().unwrap();
    let f = fed();
    let mut c = node(&tmp.path().join("c"), &f, &[], &f.community, f.community_id);
    let mut d = node(&tmp.path().join("d"), &f, &[], &f.district, f.district_id);
    let mut s = node(&tmp.path().join("s"), &f, &[], &f.street, f.street_id);
    let good_doc = c.create_document(DocType::Needs, NOW).unwrap();
    add_need(&mut c, &good_doc, "n1", "独居老人助餐志愿者");
    let other_doc = c.create_document(DocType::Needs, NOW + 1).unwrap();
    add_need(&mut c, &other_doc, "n2", "楼道灯维修");
    let (bytes, _) = c.export_bundle(f.district_id, None, NOW).unwrap();
    let before = counts(&d);
    let scratch = tmp.path().join("scratch");

    // Any byte flipped: the signature no longer verifies.
    for at in [20, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        let e = Bundle::parse(&bad).unwrap_err();
        assert!(
            matches!(e, BundleError::BadSignature | BundleError::Malformed(_)),
            "byte {at}: {e}"
        );
    }
    assert!(matches!(
        Bundle::parse(&bytes[..50]).unwrap_err(),
        BundleError::Malformed(_)
    ));
    assert!(matches!(
        Bundle::parse(b"PK\x03\x04 not a bundle").unwrap_err(),
        BundleError::NotABundle { .. }
    ));

    // Made for the district, carried to the street.
    let e = s
        .import_bundle(&Bundle::parse(&bytes).unwrap(), &scratch, NOW)
        .unwrap_err();
    assert!(matches!(e, BundleError::WrongUnit { .. }), "{e}");
    assert!(e.to_string().contains("--for 320106002000"), "{e}");

    // Signed by a key with no chain to the root.
    let stranger = Secret::from_seed([77; 32]);
    let foreign = Bundle::seal(
        &stranger,
        f.community_id,
        f.district_id,
        NOW,
        vec![],
        vec![],
    )
    .unwrap();
    let e = d
        .import_bundle(&Bundle::parse(&foreign).unwrap(), &scratch, NOW)
        .unwrap_err();
    assert!(matches!(e, BundleError::Foreign { .. }), "{e}");
    // The head comes first: a stranger's changes are never decoded. Its
    // changes section here is garbage (re-signed as PROTOCOL §10 says), and
    // the refusal is still "foreign", not "malformed".
    let head_len = u32::from_be_bytes(foreign[106..110].try_into().unwrap()) as usize;
    let mut garbage = foreign[..110 + head_len].to_vec();
    garbage.extend_from_slice(&[0xff; 4096]);
    let sig = stranger.sign(
        Hash::of_parts(&[
            b"gongjian-bundle-v2".as_slice(),
            &2u16.to_be_bytes(),
            &garbage[106..],
        ])
        .as_bytes(),
    );
    garbage[42..106].copy_from_slice(&sig.0);
    let e = d
        .import_bundle(&Bundle::parse(&garbage).unwrap(), &scratch, NOW)
        .unwrap_err();
    assert!(matches!(e, BundleError::Foreign { .. }), "{e}");
    // A head of a million empty "records" is refused while decoding (no
    // million allocations), before the signer is even looked at.
    let head = postcard::to_stdvec(&(
        f.community_id,
        f.district_id,
        NOW,
        vec![Vec::<u8>::new(); 1_000_000],
    ))
    .unwrap();
    let mut zeros = b"GJBUNDLE".to_vec();
    zeros.extend_from_slice(&2u16.to_be_bytes());
    zeros.extend_from_slice(stranger.public().as_bytes());
    zeros.extend_from_slice(&[0; 64]);
    zeros.extend_from_slice(&(head.len() as u32).to_be_bytes());
    zeros.extend_from_slice(&head);
    let sig = stranger.sign(
        Hash::of_parts(&[
            b"gongjian-bundle-v2".as_slice(),
            &2u16.to_be_bytes(),
            &zeros[106..],
        ])
        .as_bytes(),
    );
    zeros[42..106].copy_from_slice(&sig.0);
    let e = Bundle::parse(&zeros).unwrap_err();
    assert!(
        matches!(&e, BundleError::Malformed(m) if m.starts_with("head")),
        "{e}"
    );

    // Signed by the community's key but claiming to come from the street.
    let liar = Bundle::seal(
        &f.community,
        f.street_id,
        f.district_id,
        NOW,
        vec![],
        vec![],
    )
    .unwrap();
    let e = d
        .import_bundle(&Bundle::parse(&liar).unwrap(), &scratch, NOW)
        .unwrap_err();
    assert!(matches!(e, BundleError::WrongSender { .. }), "{e}");

    // An insider's bundle, validly signed: one good document, then a change
    // whose signature was altered. Nothing of it is imported, not even the
    // good document or the records.
    let records: Vec<Vec<u8>> = c
        .cert_chain(&f.community.public())
        .iter()
        .map(|r| r.encode())
        .chain(
            [good_doc, other_doc]
                .iter()
                .map(|d| c.store().record(&d.0).unwrap().unwrap().encode()),
        )
        .collect();
    let good: Vec<Vec<u8>> = c
        .store()
        .doc_changes(&good_doc)
        .unwrap()
        .iter()
        .map(|c| c.encode())
        .collect();
    let mut forged: Vec<Vec<u8>> = c
        .store()
        .doc_changes(&other_doc)
        .unwrap()
        .iter()
        .map(|c| c.encode())
        .collect();
    // Flip a byte of the signature itself (the chunk stays intact).
    let last = forged.last_mut().unwrap();
    let sig_at = {
        let c = gongjian_identity::SignedChange::decode(last).unwrap();
        let sig = c.signature().unwrap().1.0;
        last.windows(64).position(|w| w == sig).unwrap()
    };
    last[sig_at + 10] ^= 0x01;
    let insider = Bundle::seal(
        &f.community,
        f.community_id,
        f.district_id,
        NOW,
        records,
        vec![(good_doc, vec![good]), (other_doc, vec![forged])],
    )
    .unwrap();
    let e = d
        .import_bundle(&Bundle::parse(&insider).unwrap(), &scratch, NOW)
        .unwrap_err();
    assert!(
        matches!(
            &e,
            BundleError::BadChange {
                why: gongjian_engine::InvalidChange::Signature { .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(!scratch.exists(), "scratch removed after a refusal");

    assert_eq!(counts(&d), before, "nothing stored by any refused bundle");
    assert!(d.store().doc_meta(&good_doc).unwrap().is_none());
    assert!(
        d.trust().unit(&f.community_id).is_some(),
        "the district knew the community before"
    );

    // The honest bundle still imports.
    let got = d
        .import_bundle(&Bundle::parse(&bytes).unwrap(), &scratch, NOW)
        .unwrap();
    assert_eq!(got.documents, 2);
    assert_eq!(titles(&d, &good_doc), vec!["独居老人助餐志愿者".to_owned()]);
}
