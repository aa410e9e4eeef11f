//! The replica as a sync host: records batched across messages are kept
//! whatever the batching; foreign or malformed ones are counted, not kept.

mod common;

use common::*;
use gongjian_identity::Secret;
use gongjian_sync::Host;
use tempfile::tempdir;

#[test]
fn records_in_any_batching_get_in() {
    let f = fed();
    let dir = tempdir().unwrap();
    // A replica that knows the district and the street, not the community.
    let store = gongjian_store::Store::create(dir.path()).unwrap();
    let mut r = gongjian_engine::Replica::open(store, f.root.public(), None).unwrap();
    r.insert_records(f.records[..2].to_vec()).unwrap();
    let community_cert = f.records[2].clone();
    let community_genesis = genesis(f.community_id, &f.community, &[]);
    let hospital_cert = hospital(&f, 77).cert;
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
    // ...and a malformed record refuses its whole batch.
    let mut bad = community_genesis.encode();
    bad.truncate(bad.len() - 3);
    let s = r.ingest_records(vec![bad]).unwrap();
    assert_eq!(s.invalid, 1);
    assert_eq!(r.store().records().unwrap().len(), 5);
}
