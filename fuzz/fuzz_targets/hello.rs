//! The hello: the first frame a node reads from a peer it may never have
//! heard of, before anything admits it. Decoded, re-encoded, and each
//! certificate of its chain decoded and verified as admission does
//! (crates/gongjian-net/src/hello.rs built in by path: the net crate
//! itself would bring all of libp2p into the fuzz build).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/gongjian-net/src/hello.rs"]
#[allow(dead_code)]
mod hello;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = hello::Hello::decode(data) else {
        return;
    };
    assert!(h.chain.len() <= hello::MAX_CHAIN);
    let again = hello::Hello::decode(&h.encode()).expect("a decoded hello re-decodes");
    assert_eq!(again, h);
    for raw in &h.chain {
        if let Ok(r) = gongjian_identity::SignedRecord::decode(raw) {
            let _ = gongjian_model::verify_record(r);
        }
    }
});
