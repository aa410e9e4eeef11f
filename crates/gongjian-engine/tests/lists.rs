//! Every list kind through automerge and RocksDB, and two nodes of one unit
//! (two keys of the same unit) editing offline and merging without loss.

mod common;

use common::*;
use gongjian_engine::EngineError;
use gongjian_identity::{DocId, KeyAdd, RecordBody, Secret, SignedChange};
use gongjian_model::{ItemError, ItemFields, ItemStatus, ListDoc, ListKind};
use tempfile::tempdir;

fn fields(title: &str) -> ItemFields {
    ItemFields {
        title: Some(title.into()),
        category: Some("志愿服务".into()),
        area: Some("颐和路片区".into()),
        ..ItemFields::default()
    }
}

#[test]
fn every_list_kind_round_trips_through_the_store() {
    let dir = tempdir().unwrap();
    let f = fed();
    let mut r = node(dir.path(), &f, &[], &f.community, f.community_id);
    let mut docs = Vec::new();
    for kind in ListKind::ALL {
        let doc = r.create_document(kind.doc_type(), NOW).unwrap();
        let title = format!("{}：第一条", kind.label_zh());
        r.local_change(&doc, NOW, |am| {
            ListDoc::new(am, kind).add("rec-1", &fields(&title), NOW as i64)
        })
        .unwrap();
        r.local_change(&doc, NOW + 60, |am| {
            ListDoc::new(am, kind).edit(
                "rec-1",
                &ItemFields {
                    description: Some("已联系驻区单位".into()),
                    ..ItemFields::default()
                },
                NOW as i64 + 60,
            )
        })
        .unwrap();
        r.local_change(&doc, NOW + 120, |am| {
            ListDoc::new(am, kind).set_status("rec-1", ItemStatus::InProgress, NOW as i64 + 120)
        })
        .unwrap();
        docs.push((kind, doc, title));
    }
    drop(r);
    let r = reopen(dir.path(), &f);
    for (kind, doc, title) in docs {
        let mut am = r.load(&doc).unwrap();
        // The kind comes from the signed genesis, not from the caller.
        let doc_type = r.trust().genesis(&doc).unwrap().doc_type;
        let items = ListDoc::open(&mut am, doc_type).unwrap().list();
        assert_eq!(items.len(), 1, "{kind}");
        assert!(ListDoc::open(&mut am, gongjian_identity::DocType::Grids).is_err());
        let it = &items[0];
        assert_eq!(it.title, title);
        assert_eq!(it.kind, kind);
        assert_eq!(it.area, "颐和路片区");
        assert_eq!(it.description, "已联系驻区单位");
        assert_eq!(it.status, ItemStatus::InProgress);
        assert_eq!(it.status.label_zh(), "办理中");
        assert_eq!(
            (it.created_at, it.updated_at),
            (NOW as i64, NOW as i64 + 120)
        );
        assert_eq!(it.last_author, Some(f.community.public()));
        assert_eq!(r.trust().genesis(&doc).unwrap().doc_type, kind.doc_type());
    }
}

#[test]
fn only_projects_are_urgent_and_ids_are_unique() {
    let dir = tempdir().unwrap();
    let f = fed();
    let mut r = node(dir.path(), &f, &[], &f.community, f.community_id);
    let needs = r.create_document(ListKind::Need.doc_type(), NOW).unwrap();
    let urgent = ItemFields {
        urgent: Some(true),
        ..fields("急需")
    };
    let err = r
        .local_change(&needs, NOW, |am| {
            ListDoc::new(am, ListKind::Need).add("a", &urgent, NOW as i64)
        })
        .unwrap_err();
    assert!(matches!(
        err,
        EngineError::Need(ItemError::UrgentNotProject)
    ));
    let called = ItemFields {
        levels: Some(vec![gongjian_identity::UnitKind::Street]),
        ..fields("只有吹哨才点名")
    };
    let err = r
        .local_change(&needs, NOW, |am| {
            ListDoc::new(am, ListKind::Need).add("b", &called, NOW as i64)
        })
        .unwrap_err();
    assert!(matches!(
        err,
        EngineError::Need(ItemError::LevelsNotWhistle)
    ));
    assert!(heads(&r, &needs).is_empty(), "nothing written");
    let projects = r
        .create_document(ListKind::Project.doc_type(), NOW)
        .unwrap();
    r.local_change(&projects, NOW, |am| {
        ListDoc::new(am, ListKind::Project).add("p", &urgent, NOW as i64)
    })
    .unwrap();
    let err = r
        .local_change(&projects, NOW, |am| {
            ListDoc::new(am, ListKind::Project).add("p", &urgent, NOW as i64)
        })
        .unwrap_err();
    assert!(matches!(err, EngineError::Need(ItemError::Exists(_))));
    let mut am = r.load(&projects).unwrap();
    assert!(
        ListDoc::new(&mut am, ListKind::Project)
            .get("p")
            .unwrap()
            .urgent
    );
}

#[test]
fn two_nodes_of_one_unit_edit_offline_and_merge_without_loss() {
    let f = fed();
    let (d1, d2) = (tempdir().unwrap(), tempdir().unwrap());
    let tablet = Secret::from_seed([70; 32]);
    let mut office = node(d1.path(), &f, &[], &f.community, f.community_id);
    // The office's node names the tablet a writer of the unit's documents.
    let key_add = KeyAdd {
        unit: f.community_id,
        key: tablet.public(),
        issued_at: NOW,
    }
    .sign(&f.community);
    let doc = office
        .create_document(ListKind::Resource.doc_type(), NOW)
        .unwrap();
    // Its certificate comes from the street (a second node of the unit).
    let tablet_cert = cert(
        &f.street,
        &tablet,
        f.community_id,
        gongjian_identity::UnitKind::Community,
        Some(f.street_id),
        "颐和路社区",
    );
    office
        .insert_records(vec![tablet_cert, key_add.clone()])
        .unwrap();
    office
        .local_change(&doc, NOW, |am| {
            ListDoc::new(am, ListKind::Resource).add("room", &fields("会议室"), NOW as i64)
        })
        .unwrap();
    // The tablet's node gets everything so far.
    let mut field = node(d2.path(), &f, &[], &tablet, f.community_id);
    field
        .insert_records(office.store().records().unwrap())
        .unwrap();
    field
        .ingest(wire(&office.store().doc_changes(&doc).unwrap()))
        .unwrap();
    // Offline, both edit: different fields, and the same field.
    office
        .local_change(&doc, NOW + 10, |am| {
            ListDoc::new(am, ListKind::Resource).edit(
                "room",
                &ItemFields {
                    description: Some("可容纳四十人".into()),
                    title: Some("社区会议室".into()),
                    ..ItemFields::default()
                },
                NOW as i64 + 10,
            )
        })
        .unwrap();
    field
        .local_change(&doc, NOW + 20, |am| {
            ListDoc::new(am, ListKind::Resource).edit(
                "room",
                &ItemFields {
                    area: Some("北京西路片区".into()),
                    title: Some("党群服务中心会议室".into()),
                    ..ItemFields::default()
                },
                NOW as i64 + 20,
            )
        })
        .unwrap();
    field
        .local_change(&doc, NOW + 30, |am| {
            ListDoc::new(am, ListKind::Resource).add("doctor", &fields("义诊医生"), NOW as i64 + 30)
        })
        .unwrap();
    // Reconnect: each sends what it has.
    let a: Vec<SignedChange> = office.store().doc_changes(&doc).unwrap();
    let b: Vec<SignedChange> = field.store().doc_changes(&doc).unwrap();
    let ra = field.ingest(wire(&a)).unwrap();
    let rb = office.ingest(wire(&b)).unwrap();
    assert!(
        ra.rejected.is_empty()
            && rb.rejected.is_empty()
            && ra.invalid.is_empty()
            && rb.invalid.is_empty()
    );
    assert_eq!(heads(&office, &doc), heads(&field, &doc));
    let mut am = office.load(&doc).unwrap();
    let list = ListDoc::new(&mut am, ListKind::Resource);
    let room = list.get("room").unwrap();
    assert_eq!(room.description, "可容纳四十人");
    assert_eq!(room.area, "北京西路片区");
    let mut titles = room.title_conflicts.clone();
    titles.push(room.title.clone());
    titles.sort();
    assert_eq!(
        titles,
        vec!["党群服务中心会议室".to_owned(), "社区会议室".to_owned()],
        "both concurrent titles kept"
    );
    assert!(list.get("doctor").is_some());
    let _ = DocId(key_add.hash());
}
