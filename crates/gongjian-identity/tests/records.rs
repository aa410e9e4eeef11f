//! Round trips, strict verification and refusals of identity's encodings.

use gongjian_identity::{
    ActorId, Certificate, DecodeError, DocId, DocType, Genesis, Hash, KeyParseError, PublicKey,
    RecordBody, RecordKind, Secret, SignatureFailure, SignedChange, SignedRecord, UnitKind,
    VerifyItem, read_secret, verify_many, write_secret,
};
use proptest::prelude::*;

fn change_chunk(secret: &Secret, epoch: u32, text: &str) -> Vec<u8> {
    use automerge::transaction::Transactable;
    let actor = ActorId {
        key: secret.public(),
        epoch,
    };
    let mut am = automerge::Automerge::new().with_actor(automerge::ActorId::from(actor.to_bytes()));
    let mut tx = am.transaction();
    tx.put(automerge::ROOT, "k", text).unwrap();
    tx.commit();
    am.get_last_local_change().unwrap().raw_bytes().to_vec()
}

fn doc(n: u8) -> DocId {
    DocId(Hash([n; 32]))
}

#[test]
fn every_flipped_byte_of_a_signed_change_is_caught() {
    let s = Secret::from_seed([9; 32]);
    let c = SignedChange::sign(doc(1), change_chunk(&s, 1, "需要志愿者"), &s).unwrap();
    let bytes = c.encode();
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let caught = match SignedChange::decode(&bad) {
            Err(_) => true,
            Ok(d) => d.verify().is_err(),
        };
        assert!(caught, "flipping byte {i} went unnoticed");
    }
}

#[test]
fn a_change_replayed_into_another_document_fails() {
    let s = Secret::from_seed([9; 32]);
    let c = SignedChange::sign(doc(1), change_chunk(&s, 1, "x"), &s).unwrap();
    let mut bytes = c.encode();
    bytes[3..35].copy_from_slice(&[2; 32]); // the doc id field
    let moved = SignedChange::decode(&bytes).unwrap();
    assert_eq!(moved.verify(), Err(SignatureFailure::Invalid));
}

#[test]
fn a_signature_cannot_be_replayed_as_another_record_type() {
    let s = Secret::from_seed([9; 32]);
    let rec = Genesis {
        doc_type: DocType::Needs,
        unit: "320106002000".parse().unwrap(),
        parties: vec![],
        created_at: 1,
        write_keys: vec![s.public()],
    }
    .sign(&s);
    let mut bytes = rec.encode();
    for kind in RecordKind::ALL {
        if kind == RecordKind::Genesis {
            continue;
        }
        bytes[2] = kind as u8;
        let other = SignedRecord::decode(&bytes).unwrap();
        assert_eq!(other.verify(), Err(SignatureFailure::Invalid), "{kind:?}");
    }
}

#[test]
fn actor_must_be_the_signer() {
    let author = Secret::from_seed([9; 32]);
    let other = Secret::from_seed([8; 32]);
    // Chunk by `author`, signed by `other`.
    let c = SignedChange::sign(doc(1), change_chunk(&author, 1, "x"), &other).unwrap();
    assert_eq!(c.verify(), Err(SignatureFailure::ActorNotSigner));
}

#[test]
fn weak_keys_are_refused() {
    // Small-order points: the identity, and a point of order 8.
    let identity = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };
    let order8 = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ];
    for weak in [identity, order8, [0u8; 32]] {
        assert_eq!(PublicKey::from_bytes(weak), Err(KeyParseError::Weak));
        let text = format!(
            "ed25519:{}",
            weak.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        assert_eq!(text.parse::<PublicKey>(), Err(KeyParseError::Weak));
    }
    // A certificate naming a weak key does not decode.
    let root = Secret::from_seed([1; 32]);
    let good = Certificate {
        subject: Secret::from_seed([5; 32]).public(),
        unit: "320106002000".parse().unwrap(),
        kind: UnitKind::Street,
        parent: Some("320106000000".parse().unwrap()),
        name: "街道".into(),
        not_before: 0,
        not_after: 10,
    };
    let mut body = postcard::to_stdvec(&good).unwrap();
    body[..32].copy_from_slice(&identity);
    assert!(postcard::from_bytes::<Certificate>(&body).is_err());
    let _ = root;
}

#[test]
fn compressed_chunks_are_refused_before_any_decompression() {
    // A type-2 (DEFLATE) chunk claiming to inflate to a huge change.
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    let body = vec![0x78u8; 64 * 1024];
    let mut len = Vec::new();
    let mut n = body.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            len.push(b);
            break;
        }
        len.push(b | 0x80);
    }
    chunk.extend_from_slice(&len);
    chunk.extend_from_slice(&body);
    let s = Secret::from_seed([9; 32]);
    assert_eq!(
        SignedChange::sign(doc(1), chunk, &s).unwrap_err(),
        DecodeError::CompressedChunk
    );
}

#[test]
fn oversized_and_truncated_inputs_are_refused() {
    let s = Secret::from_seed([9; 32]);
    let c = SignedChange::sign(doc(1), change_chunk(&s, 1, "x"), &s).unwrap();
    let bytes = c.encode();
    for cut in [0, 1, 10, bytes.len() - 1] {
        assert!(SignedChange::decode(&bytes[..cut]).is_err());
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        SignedChange::decode(&long).unwrap_err(),
        DecodeError::Trailing { extra: 1 }
    );
    let huge = vec![0u8; 2 << 20];
    assert!(matches!(
        SignedRecord::decode(&huge),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn key_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let s = Secret::generate();
    write_secret(&path, &s).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(read_secret(&path).unwrap().public(), s.public());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = read_secret(&path).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
    assert!(write_secret(&path, &s).is_err(), "never overwrites");
    assert!(
        !format!("{s:?}").contains(&hex::encode(s.seed())),
        "Debug never prints the secret"
    );
}

#[test]
fn peer_id_is_derived_from_the_same_key() {
    let s = Secret::from_seed([4; 32]);
    assert_eq!(
        s.public().peer_id(),
        s.libp2p_keypair().public().to_peer_id()
    );
}

/// Small batches, and one large enough to be split over two threads: each
/// result is `verify_strict`'s for its own item, in the items' order.
#[test]
fn batch_verification_agrees_with_strict() {
    for n in [8usize, 600] {
        let keys: Vec<Secret> = (0..8u8).map(|i| Secret::from_seed([i + 10; 32])).collect();
        let msgs: Vec<Vec<u8>> = (0..n)
            .map(|i| (i as u32).to_be_bytes().repeat(10))
            .collect();
        let mut sigs: Vec<_> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| keys[i % 8].sign(m))
            .collect();
        let bad = [3, 6, n - 1];
        sigs[3].0[5] ^= 1; // corrupt R
        sigs[6].0[40] ^= 1; // corrupt S
        sigs[n - 1].0[40] ^= 1; // in the second half
        let publics: Vec<PublicKey> = (0..n).map(|i| keys[i % 8].public()).collect();
        let items: Vec<VerifyItem> = (0..n)
            .map(|i| VerifyItem {
                key: &publics[i],
                msg: &msgs[i],
                sig: &sigs[i],
            })
            .collect();
        let batch = verify_many(&items);
        assert_eq!(batch.len(), n);
        for i in 0..n {
            assert_eq!(
                batch[i],
                publics[i].verify(&msgs[i], &sigs[i]),
                "item {i} of {n}"
            );
            assert_eq!(batch[i].is_err(), bad.contains(&i), "item {i} of {n}");
        }
    }
}

proptest! {
    #[test]
    fn certificates_round_trip(name in "\\PC{1,40}", nb in 0u64..u64::MAX / 2, len in 0u64..1_000_000) {
        let root = Secret::from_seed([1; 32]);
        let c = Certificate {
            subject: Secret::from_seed([2; 32]).public(),
            unit: "320106002001".parse().unwrap(),
            kind: UnitKind::Community,
            parent: Some("320106002000".parse().unwrap()),
            name: name.clone(),
            not_before: nb,
            not_after: nb + len,
        };
        let r = c.sign(&root);
        let back = SignedRecord::decode(&r.encode()).unwrap();
        prop_assert!(back.verify().is_ok());
        let opened: Certificate = back.open().unwrap();
        prop_assert_eq!(&opened.name, &name);
        prop_assert_eq!(opened, c);
    }

    #[test]
    fn changes_round_trip_with_chinese_text(text in "[\\u4e00-\\u9fa5a-z ]{0,60}", epoch in any::<u32>()) {
        let s = Secret::from_seed([7; 32]);
        let c = SignedChange::sign(doc(3), change_chunk(&s, epoch, &text), &s).unwrap();
        let back = SignedChange::decode(&c.encode()).unwrap();
        prop_assert!(back.verify().is_ok());
        prop_assert_eq!(back.header().actor, ActorId { key: s.public(), epoch });
        prop_assert_eq!(back.header().seq, 1);
        prop_assert_eq!(back, c);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedChange::decode(&bytes);
        let _ = SignedRecord::decode(&bytes);
        let _ = gongjian_identity::ChangeHeader::parse(&bytes);
    }
}

/// A change whose run-length columns declare 2^40 ops in a few bytes is
/// refused before automerge would expand it.
#[test]
fn op_count_bombs_are_refused_before_automerge() {
    let s = Secret::from_seed([9; 32]);
    let honest = change_chunk(&s, 1, "x");
    assert!(gongjian_identity::ChangeHeader::parse(&honest).is_ok());
    // Rebuild the body: header fields from the honest change, then one
    // integer column (spec 2) holding a single run of 2^40 copies of 0.
    let mut body = Vec::new();
    let uleb = |out: &mut Vec<u8>, mut v: u64| loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    };
    let sleb_pos = |out: &mut Vec<u8>, v: u64| {
        // positive sLEB: like uLEB but the last group's bit 6 must be clear
        let mut v = v;
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 && b & 0x40 == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    };
    uleb(&mut body, 0); // no deps
    let actor = ActorId {
        key: s.public(),
        epoch: 1,
    }
    .to_bytes();
    uleb(&mut body, 36);
    body.extend_from_slice(&actor);
    uleb(&mut body, 1); // seq
    uleb(&mut body, 1); // start op
    body.push(0); // time 0
    uleb(&mut body, 0); // no message
    uleb(&mut body, 0); // no other actors
    let mut column = Vec::new();
    sleb_pos(&mut column, 1 << 40);
    uleb(&mut column, 0);
    uleb(&mut body, 1); // one column
    uleb(&mut body, 2 << 4 | 2); // id 2, integer
    uleb(&mut body, column.len() as u64);
    body.extend_from_slice(&column);
    let mut prefix = vec![1u8];
    uleb(&mut prefix, body.len() as u64);
    let hash = Hash::of_parts(&[&prefix, &body]);
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83];
    chunk.extend_from_slice(&hash.0[..4]);
    chunk.extend_from_slice(&prefix);
    chunk.extend_from_slice(&body);
    assert_eq!(
        gongjian_identity::ChangeHeader::parse(&chunk).unwrap_err(),
        DecodeError::Chunk("an op column decodes to more entries than the chunk's size allows")
    );
}

/// The compact form a `Changes` message carries (PROTOCOL.md §8.1): the
/// document from the message, the signer the actor, no length; the same
/// change back, shorter by the fields it leaves out; bad flags refused.
#[test]
fn the_compact_form_is_the_same_change_without_what_the_message_says() {
    let s = Secret::from_seed([7; 32]);
    let signed = SignedChange::sign(doc(3), change_chunk(&s, 1, "独居老人助餐"), &s).unwrap();
    let unsigned = signed.without_signature();
    for (c, saved) in [(&signed, 70), (&unsigned, 38)] {
        let compact = c.encode_compact();
        assert_eq!(c.encode().len() - compact.len(), saved);
        let back = SignedChange::decode_compact(doc(3), &compact).unwrap();
        assert_eq!(&back, c);
        assert_eq!(back.signature().is_some(), c.signature().is_some());
    }
    // Read as another document's change, its signature no longer holds.
    let elsewhere = SignedChange::decode_compact(doc(4), &signed.encode_compact()).unwrap();
    assert!(elsewhere.verify().is_err());
    let mut bad = signed.encode_compact();
    bad[0] = 0x03;
    assert!(matches!(
        SignedChange::decode_compact(doc(3), &bad),
        Err(gongjian_identity::DecodeError::Flags(3))
    ));
    assert!(SignedChange::decode_compact(doc(3), &[]).is_err());
    assert!(SignedChange::decode_compact(doc(3), &[1; 64]).is_err());
}
