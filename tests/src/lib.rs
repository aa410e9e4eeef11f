//! Multi-node tests of gongjian. `sim` is the seeded sync simulator: real
//! replicas (RocksDB in temp dirs, the real acceptance rule) exchanging the
//! real sync protocol over a simulated network that drops, duplicates,
//! reorders and partitions, with node restarts. Tests live in tests/; the
//! `sim` binary runs thousands of seeds.

pub mod sim;

use gongjian_engine::Replica;
use gongjian_identity::SignedRecord;

/// Every record and every accepted change a replica holds, in their wire
/// encoding: what a carried file or a full sync would hand another node.
pub fn everything(r: &Replica) -> (Vec<SignedRecord>, Vec<Vec<u8>>) {
    let records = r.store().records().expect("records");
    let mut changes = Vec::new();
    for (doc, _) in r.store().docs().expect("documents") {
        let held = r.store().doc_changes(&doc).expect("changes");
        changes.extend(held.iter().map(|c| c.encode()));
    }
    (records, changes)
}
