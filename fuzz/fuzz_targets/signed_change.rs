//! The signed change decoders (the full envelope and the compact form a
//! `Changes` message carries) and automerge's loading of the chunk they
//! admit: any bytes a peer relays as a change.
#![no_main]
use gongjian_identity::{DocId, Hash, SignedChange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let doc = DocId(Hash([7; 32]));
    // The compact form: the document from the message, the signer the actor.
    if let Ok(c) = SignedChange::decode_compact(doc, data) {
        assert_eq!(c.encode_compact(), data, "compact round trip");
        let full = SignedChange::decode(&c.encode()).expect("its envelope decodes");
        assert_eq!(full, c);
    }
    let Ok(c) = SignedChange::decode(data) else {
        return;
    };
    let again = SignedChange::decode(&c.encode()).expect("re-decodes");
    assert_eq!(again.hash(), c.hash());
    let compact = SignedChange::decode_compact(*c.doc(), &c.encode_compact())
        .expect("the compact form of a valid change decodes");
    assert_eq!(compact.hash(), c.hash());
    let _ = c.verify();
    // What the node hands automerge once the envelope and header passed.
    if let Ok(change) = automerge::Change::try_from(c.chunk()) {
        let mut doc = automerge::Automerge::new();
        let _ = doc.apply_changes([change]);
    }
});
