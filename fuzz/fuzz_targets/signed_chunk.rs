//! An authorised author can sign anything. Two ways in, both signed with a
//! valid key and then checked and applied as the node does (header parsed
//! and hashed by us, then automerge under `catch_unwind`):
//! * arbitrary bytes as a whole chunk (the header checks themselves);
//! * a well-formed change header whose actor IS the signer (so the
//!   signature verifies and the change is the author's), with arbitrary
//!   bytes after it: start op, time, message, other actors and the op
//!   columns automerge reads.
#![no_main]
use gongjian_identity::{DocId, Hash, Secret, SignedChange};
use libfuzzer_sys::fuzz_target;

fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A change chunk: magic, checksum, type 1, length, then `deps = 0`, the
/// signer's actor id (key ‖ epoch 0), `seq`, and `rest`.
fn framed(secret: &Secret, seq: u64, rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    uleb(&mut body, 0);
    uleb(&mut body, 36);
    body.extend_from_slice(secret.public().as_bytes());
    body.extend_from_slice(&0u32.to_be_bytes());
    uleb(&mut body, seq);
    body.extend_from_slice(rest);
    let mut len = Vec::new();
    uleb(&mut len, body.len() as u64);
    let hash = Hash::of_parts(&[&[1], &len, &body]);
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83];
    chunk.extend_from_slice(&hash.as_bytes()[..4]);
    chunk.push(1);
    chunk.extend_from_slice(&len);
    chunk.extend_from_slice(&body);
    chunk
}

fn check(doc: DocId, chunk: Vec<u8>, secret: &Secret, authored: bool) {
    let Ok(c) = SignedChange::sign(doc, chunk, secret) else {
        return;
    };
    let wire = c.encode();
    let back = SignedChange::decode(&wire).expect("a signed chunk decodes");
    if authored {
        assert!(back.verify().is_ok(), "the author's own signature verifies");
    } else {
        assert!(back.verify().is_ok() || back.header().actor.key != secret.public());
    }
    let mut am = automerge::Automerge::new();
    let _ = gongjian_model::apply_accepted(
        &mut am,
        &[(back.hash(), back.chunk())],
        automerge::Automerge::new,
    );
}

static QUIET: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // The node applies changes under `catch_unwind` (PROTOCOL.md §3): a
    // panic inside automerge is a rejected change, not a crash. libFuzzer's
    // hook would abort at any panic, caught or not; without it, a panic that
    // escapes still aborts (libfuzzer-sys checks every run for one).
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let secret = Secret::from_seed([7; 32]);
    let doc = DocId(Hash([9; 32]));
    check(doc, data.to_vec(), &secret, false);
    if let Some((&seq, rest)) = data.split_first() {
        check(doc, framed(&secret, u64::from(seq % 4) + 1, rest), &secret, true);
    }
});
