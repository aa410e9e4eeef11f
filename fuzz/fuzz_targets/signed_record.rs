//! The record decoder (certificates, revocations, key records, geneses,
//! heads announcements) and record verification: any bytes a peer sends in
//! `Records` or a hello, or a file an operator installs. Arbitrary bytes
//! rarely carry a valid signature, so the same bytes are also signed as
//! the body of each kind of record with a valid key: then the body
//! decoders behind the signature (postcard, canonical re-encoding, the
//! checks of each kind) see them too.
#![no_main]
use gongjian_identity::{RecordKind, Secret, SignedRecord};
use libfuzzer_sys::fuzz_target;

fn signed(secret: &Secret, kind: RecordKind, body: &[u8]) -> Vec<u8> {
    let mut msg = kind.tag().to_vec();
    msg.push(0);
    msg.push(1);
    msg.extend_from_slice(body);
    let mut out = vec![1, 1, kind as u8];
    out.extend_from_slice(secret.public().as_bytes());
    out.extend_from_slice(&secret.sign(&msg).0);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SignedRecord::decode(data) {
        let again = SignedRecord::decode(&r.encode()).expect("re-decodes");
        assert_eq!(again.hash(), r.hash());
        let _ = gongjian_model::verify_record(r);
    }
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let Ok(kind) = RecordKind::from_u8(k % 6 + 1) else {
        return;
    };
    let secret = Secret::from_seed([11; 32]);
    let bytes = signed(&secret, kind, body);
    let r = SignedRecord::decode(&bytes).expect("a signed record decodes");
    assert!(r.verify().is_ok(), "signed like the node signs");
    let _ = gongjian_model::verify_record(r);
});
