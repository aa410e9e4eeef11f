//! Claims and responses are written by the acting unit in its own document,
//! pointing at the other's record, and joined back; writing them into the
//! other unit's document is refused.

mod common;

use common::*;
use gongjian_engine::{EngineError, LocalIdentity, Replica};
use gongjian_identity::{DocType, Secret, UnitId, UnitKind};
use gongjian_model::{
    Act, ActError, ActKind, ActsDoc, ItemFields, ListDoc, ListKind, Rejection, Target, acts_on,
};
use gongjian_store::Store;
use tempfile::tempdir;

fn node(
    dir: &std::path::Path,
    f: &Fed,
    extra: &[gongjian_identity::SignedRecord],
    secret: &Secret,
    unit: UnitId,
) -> Replica {
    let store = Store::create(dir).unwrap();
    store.bump_epoch(NOW).unwrap();
    let mut r = Replica::open(
        store,
        f.root.public(),
        Some(LocalIdentity {
            secret: secret.clone(),
            unit,
        }),
    )
    .unwrap();
    let mut records = f.records.clone();
    records.extend_from_slice(extra);
    r.insert_records(records).unwrap();
    r
}

#[test]
fn a_claim_lives_in_the_claimants_document_and_joins_back() {
    let f = fed();
    let hospital = Secret::from_seed([80; 32]);
    let hospital_id: UnitId = "91350100M000100Y43".parse().unwrap();
    let hcert = cert(
        &f.community,
        &hospital,
        hospital_id,
        UnitKind::Resident,
        Some(f.community_id),
        "江苏省人民医院",
    );
    let (dc, dh) = (tempdir().unwrap(), tempdir().unwrap());
    let mut community = node(
        dc.path(),
        &f,
        std::slice::from_ref(&hcert),
        &f.community,
        f.community_id,
    );
    let mut hosp = node(
        dh.path(),
        &f,
        std::slice::from_ref(&hcert),
        &hospital,
        hospital_id,
    );

    // The community lists an urgent project.
    let projects = community.create_document(DocType::Projects, NOW).unwrap();
    let urgent = ItemFields {
        title: Some("独居老人健康体检".into()),
        urgent: Some(true),
        ..ItemFields::default()
    };
    community
        .local_change(&projects, NOW, |am| {
            ListDoc::new(am, ListKind::Project).add("p1", &urgent, NOW as i64)
        })
        .unwrap();
    // The hospital learns of it and claims it in its own acts document.
    hosp.insert_records(community.store().records().unwrap())
        .unwrap();
    hosp.ingest(wire(&community.store().doc_changes(&projects).unwrap()))
        .unwrap();
    let acts = hosp.create_document(DocType::Acts, NOW).unwrap();
    let target = Target {
        unit: f.community_id,
        doc: projects,
        record: "p1".into(),
    };
    let claim = Act {
        id: "c1".into(),
        kind: ActKind::Claim,
        target: target.clone(),
        note: "派出三名医生".into(),
        resolved: false,
        created_at: NOW as i64,
    };
    hosp.local_change(&acts, NOW, |am| {
        ActsDoc {
            doc: am,
            unit: hospital_id,
        }
        .record(&claim, NOW as i64)
    })
    .unwrap();
    // A handling cannot be resolved unless it is a handling; no self-acts.
    let bad = Act {
        resolved: true,
        id: "c2".into(),
        ..claim.clone()
    };
    let err = hosp
        .local_change(&acts, NOW, |am| {
            ActsDoc {
                doc: am,
                unit: hospital_id,
            }
            .record(&bad, NOW as i64)
        })
        .unwrap_err();
    assert!(matches!(
        err,
        EngineError::Act(ActError::ResolvedNotHandling)
    ));

    // The community receives the hospital's document and joins the claim.
    community
        .insert_records(hosp.store().records().unwrap())
        .unwrap();
    let report = community
        .ingest(wire(&hosp.store().doc_changes(&acts).unwrap()))
        .unwrap();
    assert_eq!(report.accepted.len(), 1, "{report:?}");
    let mut am = community.load(&acts).unwrap();
    let held: Vec<(UnitId, Act)> = ActsDoc {
        doc: &mut am,
        unit: hospital_id,
    }
    .list()
    .into_iter()
    .map(|a| (hospital_id, a))
    .collect();
    let joined = acts_on(&target, &held);
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].0, hospital_id);
    assert_eq!(joined[0].1.note, "派出三名医生");
    assert_eq!(joined[0].1.kind.label_zh(), "认领");

    // Writing the claim into the community's project list is refused: the
    // hospital is not a writer of the community's documents.
    let err = hosp
        .local_change(&projects, NOW, |am| {
            ListDoc::new(am, ListKind::Project).edit(
                "p1",
                &ItemFields {
                    description: Some("已被医院认领".into()),
                    ..ItemFields::default()
                },
                NOW as i64,
            )
        })
        .unwrap_err();
    assert!(matches!(err, EngineError::NotWriter(_)));
    let mut forger = Author::new(&hospital, 9, projects);
    let forged = forger.put("p1-claim", "医院认领");
    let report = community.ingest(wire(&[forged])).unwrap();
    assert_eq!(
        report.rejected[0].1,
        Rejection::NotWriteKey(hospital.public())
    );
}
