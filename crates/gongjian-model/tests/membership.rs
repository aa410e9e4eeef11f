//! Membership evaluation: chains to the pinned root, expiry at admission,
//! revocation cuts over issued certificates, recoveries, order independence.

use gongjian_identity::{
    Certificate, DocId, DocType, Genesis, KeyAdd, RecordBody, Recovery, Revocation, RevocationCut,
    RevocationTarget, Secret, SignedRecord, UnitId, UnitKind,
};
use gongjian_model::{CertChainError, Membership, Trust, verify_record};
use proptest::prelude::*;

const NOW: u64 = 1_780_000_000;

fn cert(
    signer: &Secret,
    subject: &Secret,
    unit: &str,
    kind: UnitKind,
    parent: Option<&str>,
    nb: u64,
    na: u64,
) -> SignedRecord {
    Certificate {
        subject: subject.public(),
        unit: unit.parse().unwrap(),
        kind,
        parent: parent.map(|p| p.parse().unwrap()),
        name: format!("单位{unit}"),
        not_before: nb,
        not_after: na,
    }
    .sign(signer)
}

fn evaluate(root: &Secret, records: &[SignedRecord]) -> Trust {
    let mut m = Membership::new(root.public());
    for r in records {
        m.insert(verify_record(r.clone()).unwrap());
    }
    m.evaluate()
}

struct Keys {
    root: Secret,
    district: Secret,
    street: Secret,
    community: Secret,
}

fn keys() -> Keys {
    Keys {
        root: Secret::from_seed([1; 32]),
        district: Secret::from_seed([2; 32]),
        street: Secret::from_seed([3; 32]),
        community: Secret::from_seed([4; 32]),
    }
}

fn tree(k: &Keys) -> Vec<SignedRecord> {
    vec![
        cert(
            &k.root,
            &k.district,
            "320106000000",
            UnitKind::District,
            None,
            0,
            NOW * 2,
        ),
        cert(
            &k.root,
            &k.street,
            "320106002000",
            UnitKind::Street,
            Some("320106000000"),
            0,
            NOW * 2,
        ),
        cert(
            &k.street,
            &k.community,
            "320106002001",
            UnitKind::Community,
            Some("320106002000"),
            0,
            NOW * 2,
        ),
    ]
}

#[test]
fn a_chain_to_the_pinned_root_admits() {
    let k = keys();
    let t = evaluate(&k.root, &tree(&k));
    let info = t.admit(&k.community.public(), NOW).unwrap();
    assert_eq!(info.name, "单位320106002001");
    assert_eq!(info.kind, UnitKind::Community);
    assert_eq!(
        t.children_of(&"320106002000".parse().unwrap()).len(),
        1,
        "the street's roster"
    );
}

#[test]
fn a_chain_ending_at_another_root_is_not_admitted() {
    let k = keys();
    let foreign = Secret::from_seed([66; 32]);
    let records = vec![
        cert(
            &foreign,
            &k.street,
            "320106002000",
            UnitKind::Street,
            Some("320106000000"),
            0,
            NOW * 2,
        ),
        cert(
            &k.street,
            &k.community,
            "320106002001",
            UnitKind::Community,
            Some("320106002000"),
            0,
            NOW * 2,
        ),
    ];
    let t = evaluate(&k.root, &records);
    assert_eq!(
        t.admit(&k.community.public(), NOW),
        Err(CertChainError::NotRooted(k.community.public()))
    );
}

#[test]
fn the_district_node_key_cannot_admit_streets() {
    let k = keys();
    let mut records = tree(&k);
    records[1] = cert(
        &k.district,
        &k.street,
        "320106002000",
        UnitKind::Street,
        Some("320106000000"),
        0,
        NOW * 2,
    );
    let t = evaluate(&k.root, &records);
    assert!(t.admit(&k.street.public(), NOW).is_err());
    assert!(
        t.admit(&k.community.public(), NOW).is_err(),
        "nor anything below it"
    );
}

#[test]
fn expiry_is_checked_at_admission_only() {
    let k = keys();
    let mut records = tree(&k);
    records[2] = cert(
        &k.street,
        &k.community,
        "320106002001",
        UnitKind::Community,
        Some("320106002000"),
        0,
        NOW - 1,
    );
    let t = evaluate(&k.root, &records);
    assert!(
        matches!(t.admit(&k.community.public(), NOW), Err(CertChainError::Expired { not_after, .. }) if not_after == NOW - 1)
    );
    assert!(t.admit(&k.community.public(), NOW - 10).is_ok());
    // The certificate itself stays valid for accepting stored records.
    assert!(
        t.keys_of(&"320106002001".parse().unwrap())
            .contains(&k.community.public())
    );
    // A parent's expiry breaks the chain too.
    let mut records = tree(&k);
    records[1] = cert(
        &k.root,
        &k.street,
        "320106002000",
        UnitKind::Street,
        Some("320106000000"),
        0,
        NOW - 1,
    );
    let t = evaluate(&k.root, &records);
    assert!(matches!(
        t.admit(&k.community.public(), NOW),
        Err(CertChainError::Expired { .. })
    ));
}

#[test]
fn certificates_issued_by_a_revoked_key_need_the_cut() {
    let k = keys();
    let mut records = tree(&k);
    let late = Secret::from_seed([77; 32]);
    // Issued by the street key after it leaked.
    records.push(cert(
        &k.street,
        &late,
        "320106002009",
        UnitKind::Community,
        Some("320106002000"),
        0,
        NOW * 2,
    ));
    let cut = RevocationCut {
        changes: vec![],
        records: {
            let mut v = vec![gongjian_identity::Blinded::of(&records[2].hash())];
            v.sort();
            v
        },
    };
    records.push(
        Revocation {
            target: RevocationTarget::Key(k.street.public()),
            cut,
            reason: "泄露".into(),
            issued_at: NOW,
        }
        .sign(&k.root),
    );
    let t = evaluate(&k.root, &records);
    assert!(matches!(
        t.admit(&k.street.public(), NOW),
        Err(CertChainError::Revoked { .. })
    ));
    assert!(
        t.keys_of(&"320106002001".parse().unwrap())
            .contains(&k.community.public()),
        "kept by the cut"
    );
    assert!(
        t.keys_of(&"320106002009".parse().unwrap()).is_empty(),
        "issued outside the cut"
    );
}

#[test]
fn only_ancestors_may_revoke() {
    let k = keys();
    let mut records = tree(&k);
    // A community cannot revoke its own parent's key.
    records.push(
        Revocation {
            target: RevocationTarget::Key(k.street.public()),
            cut: RevocationCut::default(),
            reason: String::new(),
            issued_at: NOW,
        }
        .sign(&k.community),
    );
    let t = evaluate(&k.root, &records);
    assert!(!t.is_revoked(&k.street.public()));
}

#[test]
fn write_keys_come_from_the_genesis_key_records_and_recoveries() {
    let k = keys();
    let mut records = tree(&k);
    let g = Genesis {
        doc_type: DocType::Needs,
        unit: "320106002001".parse().unwrap(),
        parties: vec![],
        created_at: NOW,
        write_keys: vec![k.community.public()],
    }
    .sign(&k.community);
    let doc = DocId(g.hash());
    let tablet = Secret::from_seed([50; 32]);
    let spare = Secret::from_seed([51; 32]);
    records.push(g);
    records.push(
        KeyAdd {
            unit: "320106002001".parse().unwrap(),
            key: tablet.public(),
            issued_at: NOW,
        }
        .sign(&k.community),
    );
    // A key record signed by a non-writer adds nothing.
    records.push(
        KeyAdd {
            unit: "320106002001".parse().unwrap(),
            key: k.street.public(),
            issued_at: NOW,
        }
        .sign(&k.street),
    );
    let t = evaluate(&k.root, &records);
    let w = t.write_keys(&doc).unwrap();
    assert!(w.contains(&k.community.public()) && w.contains(&tablet.public()));
    assert!(
        !w.contains(&k.street.public()),
        "the parent is not a writer"
    );
    assert!(t.recoveries().is_empty());
    // The parent's recovery adds keys, and shows.
    records.push(
        Recovery {
            unit: "320106002001".parse().unwrap(),
            keys: vec![spare.public()],
            reason: "社区电脑损坏".into(),
            issued_at: NOW,
        }
        .sign(&k.street),
    );
    let t = evaluate(&k.root, &records);
    assert!(t.write_keys(&doc).unwrap().contains(&spare.public()));
    assert_eq!(t.recoveries().len(), 1);
}

#[test]
fn a_genesis_by_a_key_of_another_unit_is_invalid() {
    let k = keys();
    let mut records = tree(&k);
    let g = Genesis {
        doc_type: DocType::Needs,
        unit: "320106002001".parse().unwrap(),
        parties: vec![],
        created_at: NOW,
        write_keys: vec![k.street.public()],
    }
    .sign(&k.street);
    let doc = DocId(g.hash());
    records.push(g);
    let t = evaluate(&k.root, &records);
    assert!(t.write_keys(&doc).is_none());
}

proptest! {
    #[test]
    fn evaluation_does_not_depend_on_insertion_order(perm in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle()) {
        let k = keys();
        let mut records = tree(&k);
        records.push(cert(&k.street, &Secret::from_seed([9; 32]), "91350100M000100Y43", UnitKind::Resident, Some("320106002000"), 0, NOW * 2));
        records.push(
            Revocation {
                target: RevocationTarget::Key(k.community.public()),
                cut: RevocationCut::default(),
                reason: String::new(),
                issued_at: NOW,
            }
            .sign(&k.street),
        );
        records.push(cert(&k.community, &Secret::from_seed([10; 32]), "91350100M000100Y43", UnitKind::Resident, Some("320106002001"), 0, NOW * 2));
        let shuffled: Vec<SignedRecord> = perm.iter().map(|&i| records[i].clone()).collect();
        let a = evaluate(&k.root, &records);
        let b = evaluate(&k.root, &shuffled);
        let units_a: Vec<_> = a.units().collect();
        let units_b: Vec<_> = b.units().collect();
        prop_assert_eq!(units_a, units_b);
        prop_assert!(b.is_revoked(&k.community.public()));
        let resident: UnitId = "91350100M000100Y43".parse().unwrap();
        prop_assert_eq!(b.keys_of(&resident).len(), 1, "the revoked community's certificate (outside the cut) is void");
    }
}

#[test]
fn a_unit_s_street_comes_from_its_code_or_its_certified_parent() {
    let k = keys();
    let resident = Secret::from_seed([5; 32]);
    let mut records = tree(&k);
    records.push(cert(
        &k.community,
        &resident,
        "91350100M000100Y43",
        UnitKind::Resident,
        Some("320106002001"),
        0,
        NOW * 2,
    ));
    let t = evaluate(&k.root, &records);
    let street: UnitId = "320106002000".parse().unwrap();
    let of = |u: &str| t.street_of(&u.parse().unwrap());
    assert_eq!(of("320106002001"), Some(street), "a community's street");
    assert_eq!(of("320106002000"), Some(street));
    assert_eq!(of("320106000000"), Some("320106000000".parse().unwrap()));
    assert_eq!(of("91350100M000100Y43"), Some(street), "through its parent");
    assert_eq!(
        of("91320106MA1MXXXXXR"),
        None,
        "a resident unit not certified"
    );
    // A community code needs no certificate: its digits say its street.
    assert_eq!(of("320106003007"), Some("320106003000".parse().unwrap()));
}
