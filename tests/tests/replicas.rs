//! Several replicas, each writing only its own documents, exchange every
//! signed record and change (as a carried file would) and converge to
//! identical heads, with each unit's writes accepted everywhere.

use gongjian_engine::{LocalIdentity, Replica};
use gongjian_identity::{Certificate, DocType, RecordBody, Secret, SignedRecord, UnitId, UnitKind};
use gongjian_model::NeedsDoc;
use gongjian_store::Store;
use gongjian_tests::everything;

const NOW: u64 = 1_780_000_000;

struct Unit {
    _dir: tempfile::TempDir,
    replica: Replica,
}

fn cert(
    signer: &Secret,
    subject: &Secret,
    unit: &str,
    kind: UnitKind,
    parent: Option<&str>,
    name: &str,
) -> SignedRecord {
    Certificate {
        subject: subject.public(),
        unit: unit.parse().unwrap(),
        kind,
        parent: parent.map(|p| p.parse().unwrap()),
        name: name.into(),
        not_before: NOW - 10,
        not_after: NOW + 86_400,
    }
    .sign(signer)
}

#[test]
fn units_converge_after_exchanging_everything() {
    let root = Secret::from_seed([1; 32]);
    let specs = [
        ("320106000000", UnitKind::District, None, "南京市鼓楼区"),
        (
            "320106002000",
            UnitKind::Street,
            Some("320106000000"),
            "宁海路街道",
        ),
        (
            "320106002001",
            UnitKind::Community,
            Some("320106002000"),
            "颐和路社区",
        ),
        (
            "320106002002",
            UnitKind::Community,
            Some("320106002000"),
            "北京西路社区",
        ),
        (
            "91350100M000100Y43",
            UnitKind::Resident,
            Some("320106002001"),
            "江苏省人民医院",
        ),
    ];
    let secrets: Vec<Secret> = (0..specs.len())
        .map(|i| Secret::from_seed([10 + i as u8; 32]))
        .collect();
    let mut certs = Vec::new();
    for (i, (unit, kind, parent, name)) in specs.iter().enumerate() {
        let issuer = match parent {
            None | Some("320106000000") => &root,
            Some(p) => &secrets[specs.iter().position(|s| s.0 == *p).unwrap()],
        };
        certs.push(cert(issuer, &secrets[i], unit, *kind, *parent, name));
    }
    let mut units: Vec<Unit> = specs
        .iter()
        .enumerate()
        .map(|(i, (unit, ..))| {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::create(dir.path()).unwrap();
            store.bump_epoch(NOW).unwrap();
            let mut replica = Replica::open(
                store,
                root.public(),
                Some(LocalIdentity {
                    secret: secrets[i].clone(),
                    unit: unit.parse::<UnitId>().unwrap(),
                }),
            )
            .unwrap();
            replica.insert_records(certs.clone()).unwrap();
            Unit { _dir: dir, replica }
        })
        .collect();

    // Each unit writes needs in its own document, offline.
    for (i, u) in units.iter_mut().enumerate() {
        let doc = u.replica.create_document(DocType::Needs, NOW).unwrap();
        for n in 0..3 {
            let title = format!("{}的需求{n}", specs[i].3);
            u.replica
                .local_change(&doc, NOW, |am| {
                    NeedsDoc(am).add(&format!("{i}-{n}"), &title, "志愿服务", "", NOW as i64)
                })
                .unwrap();
        }
    }
    // Exchange in a ring twice: every unit ends up with everything.
    for _ in 0..2 {
        for i in 0..units.len() {
            let (records, changes) = everything(&units[i].replica);
            let next = &mut units[(i + 1) % specs.len()].replica;
            next.insert_records(records).unwrap();
            let report = next.ingest(changes).unwrap();
            assert!(
                report.invalid.is_empty() && report.rejected.is_empty(),
                "{report:?}"
            );
        }
    }
    let reference: Vec<_> = units[0].replica.store().docs().unwrap();
    assert_eq!(reference.len(), specs.len());
    for u in &units[1..] {
        assert_eq!(u.replica.store().docs().unwrap(), reference);
    }
    // And the district reads every unit's needs, in Chinese.
    let district = &units[0].replica;
    let mut titles = Vec::new();
    for (doc, g) in district.trust().documents() {
        assert_eq!(g.doc_type, DocType::Needs);
        let mut am = district.load(doc).unwrap();
        titles.extend(NeedsDoc(&mut am).list().into_iter().map(|n| n.title));
    }
    assert_eq!(titles.len(), 15);
    assert!(titles.contains(&"江苏省人民医院的需求2".to_owned()));
}
