//! The golden vectors of PROTOCOL.md, section 7: recomputed and compared byte
//! for byte. `GOLDEN_PRINT=1` prints the computed block (to update the spec
//! after a deliberate format change).

use automerge::transaction::{CommitOptions, Transactable};
use gongjian_identity::{
    ActorId, Blinded, Certificate, CutEntry, DocId, DocType, Genesis, Hash, HeadsAnnouncement,
    KeyAdd, RecordBody, Recovery, Revocation, RevocationCut, RevocationTarget, Secret,
    SignedChange, SignedRecord, UnitKind, change_signing_message,
};

const T0: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const T1: u64 = 1_798_761_600; // 2027-01-01T00:00:00Z

fn computed() -> Vec<(String, String)> {
    let root = Secret::from_seed([1; 32]);
    let node = Secret::from_seed([2; 32]);
    let street = Secret::from_seed([3; 32]);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: String| out.push((k.to_owned(), v));
    push("root.public", hex(root.public().as_bytes()));
    push("node.public", hex(node.public().as_bytes()));
    push("street.public", hex(street.public().as_bytes()));
    push("street.peer_id", street.public().peer_id().to_string());

    let district_id = "320106000000".parse().unwrap();
    let street_id = "320106002000".parse().unwrap();
    let cert_district = Certificate {
        subject: node.public(),
        unit: district_id,
        kind: UnitKind::District,
        parent: None,
        name: "南京市鼓楼区".into(),
        not_before: T0,
        not_after: T1,
    }
    .sign(&root);
    record(&mut push, "certificate.district", &cert_district);
    let cert_street = Certificate {
        subject: street.public(),
        unit: street_id,
        kind: UnitKind::Street,
        parent: Some(district_id),
        name: "宁海路街道".into(),
        not_before: T0,
        not_after: T1,
    }
    .sign(&root);
    record(&mut push, "certificate.street", &cert_street);
    let genesis = Genesis {
        doc_type: DocType::Needs,
        unit: street_id,
        parties: vec![],
        created_at: T0,
        write_keys: vec![street.public()],
    }
    .sign(&street);
    record(&mut push, "genesis", &genesis);
    let doc = DocId(genesis.hash());

    // A change: street's actor at epoch 1 puts 标题 = 需要志愿者 at the root.
    let actor = ActorId {
        key: street.public(),
        epoch: 1,
    };
    let mut am = automerge::Automerge::new().with_actor(automerge::ActorId::from(actor.to_bytes()));
    let mut tx = am.transaction();
    tx.put(automerge::ROOT, "标题", "需要志愿者").unwrap();
    let (hash, _) = tx.commit_with(CommitOptions::default().with_time(T0 as i64));
    let chunk = am.get_last_local_change().unwrap().raw_bytes().to_vec();
    assert_eq!(
        hash.unwrap().0,
        Hash::of_parts(&[&chunk[8..]]).0,
        "hash covers type, length, body"
    );
    let change = SignedChange::sign(doc, chunk.clone(), &street).unwrap();
    push("change.chunk", hex(&chunk));
    push("change.hash", change.hash().to_string());
    push(
        "change.message",
        hex(&change_signing_message(&doc, &change.hash())),
    );
    push("change.envelope", hex(&change.encode()));

    let key_add = KeyAdd {
        unit: street_id,
        key: node.public(),
        issued_at: T0,
    }
    .sign(&street);
    record(&mut push, "key_add", &key_add);
    let mut cut = RevocationCut {
        changes: vec![CutEntry::new(&doc, actor, 1, change.hash())],
        records: vec![Blinded::of(&genesis.hash()), Blinded::of(&key_add.hash())],
    };
    cut.normalize();
    let revocation = Revocation {
        target: RevocationTarget::Key(street.public()),
        cut,
        reason: "密钥泄露".into(),
        issued_at: T0,
    }
    .sign(&root);
    record(&mut push, "revocation", &revocation);
    let recovery = Recovery {
        unit: street_id,
        keys: vec![node.public()],
        reason: "街道更换设备".into(),
        issued_at: T0,
    }
    .sign(&root);
    record(&mut push, "recovery", &recovery);
    let heads = HeadsAnnouncement {
        unit: street_id,
        docs: vec![(doc, vec![change.hash()])],
        at: T0,
    }
    .sign(&street);
    record(&mut push, "heads", &heads);
    out
}

fn record(push: &mut impl FnMut(&str, String), name: &str, r: &SignedRecord) {
    push(&format!("{name}.record"), hex(&r.encode()));
    push(&format!("{name}.id"), r.hash().to_string());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn documented() -> Vec<(String, String)> {
    let spec = include_str!("../../../PROTOCOL.md");
    let section = spec
        .split("## 7. Golden vectors")
        .nth(1)
        .expect("section 7 present");
    let block = section
        .split("```")
        .nth(1)
        .expect("a code block in section 7");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(' ').expect("`name value` lines");
            (k.to_owned(), v.trim().to_owned())
        })
        .collect()
}

#[test]
fn golden_vectors_match_protocol_md() {
    let computed = computed();
    if std::env::var_os("GOLDEN_PRINT").is_some() {
        for (k, v) in &computed {
            println!("{k} {v}");
        }
    }
    let documented = documented();
    assert_eq!(
        documented.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        computed.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "PROTOCOL.md lists exactly the computed vectors, in order"
    );
    for ((k, doc), (_, got)) in documented.iter().zip(&computed) {
        assert_eq!(doc, got, "vector {k}");
    }
}

#[test]
fn golden_records_decode_and_verify() {
    for (k, v) in documented() {
        if k.ends_with(".record") {
            let bytes: Vec<u8> = (0..v.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&v[i..i + 2], 16).unwrap())
                .collect();
            let r = SignedRecord::decode(&bytes).unwrap_or_else(|e| panic!("{k}: {e}"));
            r.verify().unwrap_or_else(|e| panic!("{k}: {e}"));
            assert_eq!(r.encode(), bytes, "{k} round-trips");
        }
        if k == "change.envelope" {
            let bytes: Vec<u8> = (0..v.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&v[i..i + 2], 16).unwrap())
                .collect();
            let c = SignedChange::decode(&bytes).unwrap();
            c.verify().unwrap();
            assert_eq!(c.encode(), bytes);
        }
    }
}
