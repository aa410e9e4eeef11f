//! The scrub behind `gongjian verify`: a healthy store checks clean; a
//! stored change whose signature no longer verifies (a flipped byte) is
//! found and named; repair drops the document, which then comes back whole
//! from a peer's copy.

mod common;

use common::*;
use gongjian_identity::SignedChange;
use gongjian_store::Batch;

#[test]
fn a_flipped_signature_is_found_and_repair_refetches_the_document() {
    let (_dir, fed, mut r, doc) = community_doc();
    let mut a = Author::new(&fed.community, 3, doc);
    let changes = vec![
        a.put("标题", "独居老人助餐"),
        a.put("类别", "助老"),
        a.put("片区", "颐和路"),
    ];
    let report = r.ingest(wire(&changes)).unwrap();
    assert_eq!(report.accepted.len(), 3);
    let before = heads(&r, &doc);

    let clean = r.scrub(false).unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!((clean.documents, clean.changes), (1, 3));
    assert_eq!(clean.signatures_checked, 3);

    // A byte of the second change's stored signature flips on disk.
    let mut bytes = changes[1].encode();
    bytes[1 + 1 + 1 + 32 + 32 + 10] ^= 0x01;
    let tampered = SignedChange::decode(&bytes).expect("the envelope still parses");
    let mut b = Batch::new();
    b.put_change(&tampered);
    r.store().commit_blocking(b).unwrap();

    let found = r.scrub(false).unwrap();
    assert_eq!(found.problems.len(), 1, "{found:?}");
    assert_eq!(found.problems[0].doc, Some(doc.to_string()));
    assert!(
        found.problems[0]
            .what
            .contains(&changes[1].hash().to_string()),
        "{found:?}"
    );
    assert!(found.dropped.is_empty(), "nothing dropped without repair");
    assert!(r.store().doc_meta(&doc).unwrap().is_some());

    let repaired = r.scrub(true).unwrap();
    assert_eq!(repaired.dropped, vec![doc.to_string()]);
    assert!(r.store().doc_meta(&doc).unwrap().is_none());
    assert!(r.store().doc_changes(&doc).unwrap().is_empty());
    assert!(
        r.trust().genesis(&doc).is_some(),
        "the genesis stays, so sync asks for the document again"
    );
    assert!(r.scrub(false).unwrap().is_clean());

    // A peer's copy brings it back whole.
    let report = r.ingest(wire(&changes)).unwrap();
    assert_eq!(report.accepted.len(), 3, "{report:?}");
    assert_eq!(heads(&r, &doc), before);
    assert!(r.scrub(false).unwrap().is_clean());
}
