//! The signed change decoder and automerge's loading of the chunk it
//! admits: any bytes a peer relays as a change.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(c) = gongjian_identity::SignedChange::decode(data) else {
        return;
    };
    let again = gongjian_identity::SignedChange::decode(&c.encode()).expect("re-decodes");
    assert_eq!(again.hash(), c.hash());
    let _ = c.verify();
    // What the node hands automerge once the envelope and header passed.
    if let Ok(change) = automerge::Change::try_from(c.chunk()) {
        let mut doc = automerge::Automerge::new();
        let _ = doc.apply_changes([change]);
    }
});
