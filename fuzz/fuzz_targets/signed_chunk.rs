//! An authorised author can sign anything: arbitrary bytes as a change
//! chunk, signed with a valid key, then checked and applied as the node
//! does (header parsed and hashed by us, then automerge).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let secret = gongjian_identity::Secret::from_seed([7; 32]);
    let doc = gongjian_identity::DocId(gongjian_identity::Hash([9; 32]));
    let Ok(c) = gongjian_identity::SignedChange::sign(doc, data.to_vec(), &secret) else {
        return;
    };
    let wire = c.encode();
    let back = gongjian_identity::SignedChange::decode(&wire).expect("a signed chunk decodes");
    assert!(back.verify().is_ok() || back.header().actor.key != secret.public());
    let mut am = automerge::Automerge::new();
    let _ = gongjian_model::apply_accepted(&mut am, &[(back.hash(), back.chunk())], automerge::Automerge::new);
});
