//! Claims and responses are written by the acting unit in its own document,
//! pointing at the other's record, and joined back; writing them into the
//! other unit's document is refused.

mod common;

use common::*;
use gongjian_engine::EngineError;
use gongjian_identity::{DocType, UnitId, UnitKind};
use gongjian_model::{
    Act, ActError, ActKind, ActsDoc, ItemFields, ListDoc, ListKind, Rejection, Target, acts_on,
    whistle_responders,
};
use tempfile::tempdir;

#[test]
fn a_claim_lives_in_the_claimants_document_and_joins_back() {
    let f = fed();
    let Resident {
        secret: hospital,
        id: hospital_id,
        cert: hcert,
    } = hospital(&f, 80);
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
        note: "派出三名医生".into(),
        ..Act::new("c1", ActKind::Claim, target.clone(), NOW as i64)
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
    let meta = ActsDoc {
        doc: &mut am,
        unit: hospital_id,
    }
    .meta("c1")
    .unwrap();
    assert_eq!(meta.last_author, Some(hospital.public()));
    assert_eq!((meta.created_at, meta.updated_at), (NOW as i64, NOW as i64));
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

/// 小事不出网格、难事不出片区、大事不出街道: a problem escalated twice is seen
/// at street level; the street handles it in its own document, never in the
/// community's; the community closes it.
#[test]
fn a_problem_escalated_twice_is_handled_by_the_street_in_its_own_document() {
    use gongjian_model::{ItemStatus, ProblemLevel};
    let f = fed();
    let (dc, ds) = (tempdir().unwrap(), tempdir().unwrap());
    let mut community = node(dc.path(), &f, &[], &f.community, f.community_id);
    let mut street = node(ds.path(), &f, &[], &f.street, f.street_id);
    let problems = community.create_document(DocType::Problems, NOW).unwrap();
    let found = ItemFields {
        title: Some("小区消防通道被占用".into()),
        grid: Some("r1".into()),
        ..ItemFields::default()
    };
    community
        .local_change(&problems, NOW, |am| {
            ListDoc::new(am, ListKind::Problem).add("q1", &found, NOW as i64)
        })
        .unwrap();
    community
        .local_change(&problems, NOW + 1, |am| {
            ListDoc::new(am, ListKind::Problem).escalate(
                "q1",
                ProblemLevel::Community,
                None,
                NOW as i64 + 1,
            )
        })
        .unwrap();
    // Levels only go up.
    let err = community
        .local_change(&problems, NOW + 2, |am| {
            ListDoc::new(am, ListKind::Problem).escalate(
                "q1",
                ProblemLevel::Zone,
                None,
                NOW as i64 + 2,
            )
        })
        .unwrap_err();
    assert!(err.to_string().contains("only move up"), "{err}");
    community
        .local_change(&problems, NOW + 3, |am| {
            ListDoc::new(am, ListKind::Problem).escalate(
                "q1",
                ProblemLevel::Street,
                Some(f.street_id),
                NOW as i64 + 3,
            )
        })
        .unwrap();

    // The street sees it at its level.
    street
        .insert_records(community.store().records().unwrap())
        .unwrap();
    street
        .ingest(wire(&community.store().doc_changes(&problems).unwrap()))
        .unwrap();
    let mut am = street.load(&problems).unwrap();
    let q = ListDoc::new(&mut am, ListKind::Problem).get("q1").unwrap();
    assert_eq!(q.level, Some(ProblemLevel::Street));
    assert_eq!(q.level.unwrap().label_zh(), "街道");
    assert_eq!(q.escalations.len(), 2);
    assert_eq!(q.escalations[1].handler, Some(f.street_id));

    // It handles it in its own acts document.
    let acts = street.create_document(DocType::Acts, NOW).unwrap();
    let handling = Act {
        note: "联合执法清理通道".into(),
        resolved: true,
        ..Act::new(
            "h1",
            ActKind::Handling,
            Target {
                unit: f.community_id,
                doc: problems,
                record: "q1".into(),
            },
            NOW as i64 + 10,
        )
    };
    street
        .local_change(&acts, NOW + 10, |am| {
            ActsDoc {
                doc: am,
                unit: f.street_id,
            }
            .record(&handling, NOW as i64 + 10)
        })
        .unwrap();
    // It cannot mark the community's problem resolved itself.
    let err = street
        .local_change(&problems, NOW + 11, |am| {
            ListDoc::new(am, ListKind::Problem).set_status(
                "q1",
                ItemStatus::Resolved,
                NOW as i64 + 11,
            )
        })
        .unwrap_err();
    assert!(matches!(err, EngineError::NotWriter(_)));
    let before = heads(&community, &problems);

    // The community receives the handling and closes its problem.
    community
        .insert_records(street.store().records().unwrap())
        .unwrap();
    community
        .ingest(wire(&street.store().doc_changes(&acts).unwrap()))
        .unwrap();
    assert_eq!(
        heads(&community, &problems),
        before,
        "the street's act did not touch the community's document"
    );
    let mut am = community.load(&acts).unwrap();
    let held: Vec<(UnitId, Act)> = ActsDoc {
        doc: &mut am,
        unit: f.street_id,
    }
    .list()
    .into_iter()
    .map(|a| (f.street_id, a))
    .collect();
    let on = acts_on(&handling.target, &held);
    assert!(on.len() == 1 && on[0].1.resolved);
    // Only the handler of the highest step counts: the same act claimed by
    // another unit (here the district) is ignored.
    let q = {
        let mut am = community.load(&problems).unwrap();
        ListDoc::new(&mut am, ListKind::Problem).get("q1").unwrap()
    };
    let trust = community.trust().clone();
    let kind_of = |u: &UnitId| trust.unit(u).map(|i| i.kind);
    let below = |u: &UnitId, a: &UnitId| trust.is_below(u, a);
    let mut with_stranger = held.clone();
    let mut forged = handling.clone();
    forged.id = "d1".into();
    with_stranger.push((f.district_id, forged));
    let counted =
        gongjian_model::problem_handlings(&q, &handling.target, &with_stranger, kind_of, below);
    assert_eq!(counted.len(), 1);
    assert_eq!(counted[0].0, f.street_id);
    // Escalating to the street level with a handler that is not a street
    // is refused.
    let err = community
        .local_change(&problems, NOW + 12, |am| {
            ListDoc::new(am, ListKind::Problem).escalate(
                "q1",
                ProblemLevel::District,
                Some(f.street_id),
                NOW as i64 + 12,
            )
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("not a unit of the district level"),
        "{err}"
    );
    community
        .local_change(&problems, NOW + 20, |am| {
            ListDoc::new(am, ListKind::Problem).set_status(
                "q1",
                ItemStatus::Closed,
                NOW as i64 + 20,
            )
        })
        .unwrap();
    let mut am = community.load(&problems).unwrap();
    assert_eq!(
        ListDoc::new(&mut am, ListKind::Problem)
            .get("q1")
            .unwrap()
            .status,
        ItemStatus::Closed
    );
}

/// 吹哨 · 应哨 · 派单 · 接单: the community blows a whistle, units answer in
/// their own documents, the community dispatches, the chosen unit takes it.
#[test]
fn whistle_response_dispatch_take() {
    let f = fed();
    let Resident {
        secret: hospital,
        id: hospital_id,
        cert: hcert,
    } = hospital(&f, 81);
    let dirs: Vec<_> = (0..3).map(|_| tempdir().unwrap()).collect();
    let mut community = node(
        dirs[0].path(),
        &f,
        std::slice::from_ref(&hcert),
        &f.community,
        f.community_id,
    );
    let mut street = node(
        dirs[1].path(),
        &f,
        std::slice::from_ref(&hcert),
        &f.street,
        f.street_id,
    );
    let mut hosp = node(
        dirs[2].path(),
        &f,
        std::slice::from_ref(&hcert),
        &hospital,
        hospital_id,
    );

    let whistles = community.create_document(DocType::Whistles, NOW).unwrap();
    let whistle = ItemFields {
        title: Some("暴雨后地下车库积水".into()),
        grid: Some("m2".into()),
        levels: Some(vec![UnitKind::Street, UnitKind::Resident]),
        ..ItemFields::default()
    };
    community
        .local_change(&whistles, NOW, |am| {
            ListDoc::new(am, ListKind::Whistle).add("w1", &whistle, NOW as i64)
        })
        .unwrap();
    let target = Target {
        unit: f.community_id,
        doc: whistles,
        record: "w1".into(),
    };
    // Two units answer, each in its own acts document.
    let mut answers = Vec::new();
    for (r, unit, id) in [
        (&mut street, f.street_id, "s1"),
        (&mut hosp, hospital_id, "h1"),
    ] {
        r.insert_records(community.store().records().unwrap())
            .unwrap();
        r.ingest(wire(&community.store().doc_changes(&whistles).unwrap()))
            .unwrap();
        let acts = r.create_document(DocType::Acts, NOW).unwrap();
        let act = Act {
            note: "可以派人".into(),
            ..Act::new(id, ActKind::Response, target.clone(), NOW as i64 + 1)
        };
        r.local_change(&acts, NOW + 1, |am| {
            ActsDoc { doc: am, unit }.record(&act, NOW as i64 + 1)
        })
        .unwrap();
        answers.push((unit, acts));
    }
    // The street cannot dispatch the community's whistle.
    let err = street
        .local_change(&whistles, NOW + 2, |am| {
            ListDoc::new(am, ListKind::Whistle).dispatch(
                "w1",
                f.street_id,
                &[f.street_id],
                NOW as i64 + 2,
            )
        })
        .unwrap_err();
    assert!(matches!(err, EngineError::NotWriter(_)));
    // The community gathers the responses and dispatches to the hospital.
    let mut held = Vec::new();
    for (unit, acts) in &answers {
        let from = if *unit == f.street_id { &street } else { &hosp };
        community
            .insert_records(from.store().records().unwrap())
            .unwrap();
        community
            .ingest(wire(&from.store().doc_changes(acts).unwrap()))
            .unwrap();
        let mut am = community.load(acts).unwrap();
        held.extend(
            ActsDoc {
                doc: &mut am,
                unit: *unit,
            }
            .list()
            .into_iter()
            .map(|a| (*unit, a)),
        );
    }
    let responses = acts_on(&target, &held);
    assert_eq!(responses.len(), 2);
    let whistle_item = {
        let mut am = community.load(&whistles).unwrap();
        ListDoc::new(&mut am, ListKind::Whistle).get("w1").unwrap()
    };
    let trust = community.trust().clone();
    let responders = whistle_responders(&whistle_item, &target, &held, |u| {
        trust.unit(u).map(|i| i.kind)
    });
    assert_eq!(responders.len(), 2, "street and hospital were both called");
    // Only the street answered at a called level once the street level is
    // not called: a whistle calling residents only has one responder.
    let mut residents_only = whistle_item.clone();
    residents_only.levels = vec![UnitKind::Resident];
    assert_eq!(
        whistle_responders(&residents_only, &target, &held, |u| trust
            .unit(u)
            .map(|i| i.kind)),
        vec![hospital_id]
    );
    // The community cannot dispatch to a unit that never responded.
    let err = community
        .local_change(&whistles, NOW + 3, |am| {
            ListDoc::new(am, ListKind::Whistle).dispatch(
                "w1",
                f.district_id,
                &responders,
                NOW as i64 + 3,
            )
        })
        .unwrap_err();
    assert!(format!("{err}").contains("has not responded"), "{err}");
    community
        .local_change(&whistles, NOW + 3, |am| {
            ListDoc::new(am, ListKind::Whistle).dispatch(
                "w1",
                hospital_id,
                &responders,
                NOW as i64 + 3,
            )
        })
        .unwrap();
    // The hospital sees the order and takes it in its own document.
    hosp.ingest(wire(&community.store().doc_changes(&whistles).unwrap()))
        .unwrap();
    let mut am = hosp.load(&whistles).unwrap();
    let w = ListDoc::new(&mut am, ListKind::Whistle).get("w1").unwrap();
    assert_eq!(w.dispatched_to, Some(hospital_id));
    assert!(w.calls(UnitKind::Resident) && w.calls(UnitKind::Street));
    assert!(!w.calls(UnitKind::District), "the district was not called");
    assert_eq!(w.status.label_zh(), "办理中");
    let take = Act {
        note: "已接单".into(),
        ..Act::new("h2", ActKind::Take, target, NOW as i64 + 4)
    };
    let hacts = answers[1].1;
    hosp.local_change(&hacts, NOW + 4, |am| {
        ActsDoc {
            doc: am,
            unit: hospital_id,
        }
        .record(&take, NOW as i64 + 4)
    })
    .unwrap();
    let mut am = hosp.load(&hacts).unwrap();
    let mine: Vec<_> = ActsDoc {
        doc: &mut am,
        unit: hospital_id,
    }
    .list();
    assert_eq!(
        mine.iter().map(|a| a.kind.label_zh()).collect::<Vec<_>>(),
        vec!["应哨", "接单"]
    );
}
