//! Agreement status is derived: signed only when every party signed the same
//! heads (each in its own document), active within the term, unsigned again
//! after a change to the terms, terminated by a party.

mod common;

use common::*;
use gongjian_engine::Replica;
use gongjian_identity::{DocId, DocType, Hash, UnitId};
use gongjian_model::{
    Act, ActKind, ActsDoc, AgreementDoc, AgreementStatus, Target, Terms, agreement_parts_digest,
    agreement_status,
};
use tempfile::tempdir;

/// `unit` signs the terms of `owner`'s agreement as it holds them now.
#[allow(clippy::too_many_arguments)] // a test helper that names every input
fn sign(
    r: &mut Replica,
    unit: UnitId,
    owner: UnitId,
    acts: &DocId,
    agreement: &DocId,
    id: &str,
    at: i64,
    parts: Hash,
) {
    let heads = {
        let mut am = r.load(agreement).unwrap();
        AgreementDoc(&mut am).heads()
    };
    let act = Act {
        heads,
        parts: Some(parts),
        ..Act::new(
            id,
            ActKind::Sign,
            Target {
                unit: owner,
                doc: *agreement,
                record: String::new(),
            },
            at,
        )
    };
    r.local_change(acts, at as u64, |am| {
        ActsDoc { doc: am, unit }.record(&act, at)
    })
    .unwrap();
}

#[test]
fn status_follows_signatures_terms_and_time() {
    let f = fed();
    let Resident {
        secret: hospital,
        id: hospital_id,
        cert: hcert,
    } = hospital(&f, 90);
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

    let agreement = community
        .create_document_with_parties(DocType::Agreement, vec![hospital_id], NOW)
        .unwrap();
    let parties = gongjian_model::agreement_parties(f.community_id, &[hospital_id]).unwrap();
    assert!(gongjian_model::agreement_parties(f.community_id, &[]).is_none());
    assert!(gongjian_model::agreement_parties(f.community_id, &[f.community_id]).is_none());
    assert!(matches!(
        community.create_document_with_parties(DocType::Agreement, vec![], NOW),
        Err(gongjian_engine::EngineError::Parties(_))
    ));
    assert_eq!(
        agreement_status(&agreement, &[], None, &[], &[], NOW as i64).status,
        AgreementStatus::Draft,
        "no parties, never signed"
    );
    assert_eq!(
        community.trust().genesis(&agreement).unwrap().parties,
        vec![hospital_id]
    );
    let mut terms = Terms {
        title: "颐和路社区与江苏省人民医院共建协议".into(),
        start: NOW as i64,
        end: NOW as i64 + 365 * 86_400,
        services: vec!["每月义诊一次".into(), "健康讲座".into()],
        contact: "社区书记 王某".into(),
    };
    community
        .local_change(&agreement, NOW, |am| {
            AgreementDoc(am).set_terms(&terms, NOW as i64)
        })
        .unwrap();
    let c_acts = community.create_document(DocType::Acts, NOW).unwrap();
    let h_acts = hosp.create_document(DocType::Acts, NOW).unwrap();
    let sync = |from: &Replica, to: &mut Replica, doc: &DocId| {
        to.insert_records(from.store().records().unwrap()).unwrap();
        let report = to
            .ingest(wire(&from.store().doc_changes(doc).unwrap()))
            .unwrap();
        assert!(
            report.rejected.is_empty() && report.invalid.is_empty(),
            "{report:?}"
        );
    };
    let held = |r: &Replica| {
        let mut acts = Vec::new();
        for (unit, d) in [(f.community_id, c_acts), (hospital_id, h_acts)] {
            if r.store().doc_meta(&d).unwrap().is_some() {
                let mut am = r.load(&d).unwrap();
                acts.extend(
                    ActsDoc { doc: &mut am, unit }
                        .list()
                        .into_iter()
                        .map(|a| (unit, a)),
                );
            }
        }
        acts
    };
    let digest = |r: &Replica| agreement_parts_digest(&agreement, &parties, &held(r));
    let state = |r: &Replica, now: i64| {
        let mut am = r.load(&agreement).unwrap();
        let doc = AgreementDoc(&mut am);
        let (t, heads) = (doc.terms(), doc.heads());
        agreement_status(&agreement, &parties, t.as_ref(), &heads, &held(r), now)
    };

    // Draft until both sign the same heads.
    let dg = digest(&community);
    sign(
        &mut community,
        f.community_id,
        f.community_id,
        &c_acts,
        &agreement,
        "s1",
        NOW as i64 + 1,
        dg,
    );
    assert_eq!(
        state(&community, NOW as i64 + 2).status,
        AgreementStatus::Draft
    );
    sync(&community, &mut hosp, &agreement);
    let dg = digest(&hosp);
    sign(
        &mut hosp,
        hospital_id,
        f.community_id,
        &h_acts,
        &agreement,
        "s1",
        NOW as i64 + 3,
        dg,
    );
    sync(&community, &mut hosp, &c_acts);
    let s = state(&hosp, NOW as i64 + 4);
    assert_eq!(s.status, AgreementStatus::Active);
    assert_eq!(s.status.label_zh(), "履行中");
    assert_eq!(s.signed_by.len(), 2);
    // Before the term starts it is signed, after it, expired.
    assert_eq!(
        state(&hosp, NOW as i64 - 10).status,
        AgreementStatus::Signed
    );
    assert_eq!(
        state(&hosp, NOW as i64 + 400 * 86_400).status,
        AgreementStatus::Expired
    );

    // The community changes the terms: unsigned again, everywhere.
    terms.services.push("急救培训".into());
    community
        .local_change(&agreement, NOW + 5, |am| {
            AgreementDoc(am).set_terms(&terms, NOW as i64 + 5)
        })
        .unwrap();
    sync(&hosp, &mut community, &h_acts);
    let s = state(&community, NOW as i64 + 6);
    assert_eq!(s.status, AgreementStatus::Draft);
    assert!(s.changed_after_signing);
    // Both sign the new terms.
    let dg = digest(&community);
    sign(
        &mut community,
        f.community_id,
        f.community_id,
        &c_acts,
        &agreement,
        "s2",
        NOW as i64 + 7,
        dg,
    );
    sync(&community, &mut hosp, &agreement);
    let dg = digest(&hosp);
    sign(
        &mut hosp,
        hospital_id,
        f.community_id,
        &h_acts,
        &agreement,
        "s2",
        NOW as i64 + 8,
        dg,
    );
    sync(&hosp, &mut community, &h_acts);
    assert_eq!(
        state(&community, NOW as i64 + 9).status,
        AgreementStatus::Active
    );
    // The hospital cannot change the terms: it is not a writer of them.
    assert!(
        hosp.local_change(&agreement, NOW + 10, |am| AgreementDoc(am)
            .set_terms(&terms, NOW as i64 + 10))
            .is_err()
    );
    // The hospital writes its own part in its own document; the community
    // joins it, and the hospital's part does not touch the terms' heads.
    let part = Act {
        services: vec!["每月义诊一次".into(), "急救培训".into()],
        contact: "医务处 李某".into(),
        ..Act::new(
            "part",
            ActKind::Part,
            Target {
                unit: f.community_id,
                doc: agreement,
                record: String::new(),
            },
            NOW as i64 + 10,
        )
    };
    hosp.local_change(&h_acts, NOW + 10, |am| {
        ActsDoc {
            doc: am,
            unit: hospital_id,
        }
        .record(&part, NOW as i64 + 10)
    })
    .unwrap();
    sync(&hosp, &mut community, &h_acts);
    let mut am = community.load(&h_acts).unwrap();
    let held: Vec<(UnitId, Act)> = ActsDoc {
        doc: &mut am,
        unit: hospital_id,
    }
    .list()
    .into_iter()
    .map(|a| (hospital_id, a))
    .collect();
    let parts = gongjian_model::agreement_parts(&agreement, &parties, &held);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].1.contact, "医务处 李某");
    assert_eq!(parts[0].1.services.len(), 2);
    let s = state(&community, NOW as i64 + 10);
    assert_eq!(
        s.status,
        AgreementStatus::Draft,
        "a part written after signing shows the agreement unsigned"
    );
    assert!(s.changed_after_signing);
    // Both sign the terms with the parts as they stand.
    sync(&hosp, &mut community, &h_acts);
    let dg = digest(&community);
    sign(
        &mut community,
        f.community_id,
        f.community_id,
        &c_acts,
        &agreement,
        "s3",
        NOW as i64 + 10,
        dg,
    );
    sync(&community, &mut hosp, &c_acts);
    assert_eq!(digest(&hosp), dg, "both read the same parts");
    sign(
        &mut hosp,
        hospital_id,
        f.community_id,
        &h_acts,
        &agreement,
        "s3",
        NOW as i64 + 10,
        dg,
    );
    sync(&hosp, &mut community, &h_acts);
    assert_eq!(
        state(&community, NOW as i64 + 10).status,
        AgreementStatus::Active
    );
    // The hospital adds to its part after signing: unsigned again.
    let mut part2 = part.clone();
    part2.id = "part2".into();
    part2.services.push("志愿者培训".into());
    hosp.local_change(&h_acts, NOW + 10, |am| {
        ActsDoc {
            doc: am,
            unit: hospital_id,
        }
        .record(&part2, NOW as i64 + 10)
    })
    .unwrap();
    sync(&hosp, &mut community, &h_acts);
    assert_eq!(
        state(&community, NOW as i64 + 10).status,
        AgreementStatus::Draft,
        "a changed part needs new signatures"
    );
    let meta = {
        let mut am = community.load(&agreement).unwrap();
        AgreementDoc(&mut am).meta()
    };
    assert_eq!(
        (meta.created_at, meta.updated_at),
        (NOW as i64, NOW as i64 + 5)
    );
    assert_eq!(meta.last_author, Some(f.community.public()));
    // A party terminates it, in its own document.
    let end = Act {
        note: "医院搬迁".into(),
        ..Act::new(
            "t1",
            ActKind::Terminate,
            Target {
                unit: f.community_id,
                doc: agreement,
                record: String::new(),
            },
            NOW as i64 + 11,
        )
    };
    hosp.local_change(&h_acts, NOW + 11, |am| {
        ActsDoc {
            doc: am,
            unit: hospital_id,
        }
        .record(&end, NOW as i64 + 11)
    })
    .unwrap();
    sync(&hosp, &mut community, &h_acts);
    assert_eq!(
        state(&community, NOW as i64 + 12).status,
        AgreementStatus::Terminated
    );
}
