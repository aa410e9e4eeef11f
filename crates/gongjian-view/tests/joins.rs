//! The view joins to a record only the acts their author may make, and
//! shows an escalated problem with its handler's status: whatever a unit
//! writes in its own acts document, the merged answer follows the rules.
//! Real replicas on RocksDB; each unit writes with its own key.

#[path = "../../gongjian-engine/tests/common/mod.rs"]
mod common;

use common::*;
use gongjian_engine::{LocalIdentity, Replica};
use gongjian_identity::{DocId, DocType, Secret, UnitId, UnitKind};
use gongjian_model::{Act, ActKind, ActsDoc, ItemFields, ListDoc, ProblemLevel, Target};
use gongjian_store::Store;
use gongjian_view::{ItemQuery, View, global_id};
use tempfile::TempDir;

/// One unit's node: its replica and every change it made, to hand on.
struct Writer {
    _dir: TempDir,
    r: Replica,
    unit: UnitId,
    out: Vec<Vec<u8>>,
}

impl Writer {
    fn new(
        fed: &Fed,
        secret: &Secret,
        unit: UnitId,
        extra: &[gongjian_identity::SignedRecord],
    ) -> Writer {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        store.bump_epoch(1).unwrap();
        let mut r = Replica::open(
            store,
            fed.root.public(),
            Some(LocalIdentity {
                secret: secret.clone(),
                unit,
            }),
        )
        .unwrap();
        r.insert_records(fed.records.clone()).unwrap();
        r.insert_records(extra.to_vec()).unwrap();
        Writer {
            _dir: dir,
            r,
            unit,
            out: Vec::new(),
        }
    }

    fn doc(&mut self, t: DocType) -> DocId {
        match self.r.documents_of(&self.unit, t).first() {
            Some(d) => *d,
            None => self.r.create_document(t, NOW).unwrap(),
        }
    }

    fn add(&mut self, t: DocType, id: &str, fields: ItemFields) -> String {
        let doc = self.doc(t);
        let c = self
            .r
            .local_change(&doc, NOW, |am| {
                ListDoc::open(am, t)?.add(id, &fields, NOW as i64)
            })
            .unwrap();
        self.out.push(c.encode());
        global_id(&doc, id)
    }

    fn escalate(&mut self, id: &str, to: ProblemLevel, handler: UnitId) {
        let doc = self.doc(DocType::Problems);
        let c = self
            .r
            .local_change(&doc, NOW + 1, |am| {
                ListDoc::open(am, DocType::Problems)?.escalate(
                    id,
                    to,
                    Some(handler),
                    NOW as i64 + 1,
                )
            })
            .unwrap();
        self.out.push(c.encode());
    }

    fn act(
        &mut self,
        n: u32,
        kind: ActKind,
        target: &str,
        owner: UnitId,
        note: &str,
        resolved: bool,
    ) {
        let (doc, record) = gongjian_view::split_global_id(target).unwrap();
        let act = Act {
            note: note.into(),
            resolved,
            ..Act::new(
                &format!("act{n}"),
                kind,
                Target {
                    unit: owner,
                    doc,
                    record: record.into(),
                },
                NOW as i64 + 10 + n as i64,
            )
        };
        let acts = self.doc(DocType::Acts);
        let unit = self.unit;
        let c = self
            .r
            .local_change(&acts, NOW + 10 + n as u64, |am| {
                ActsDoc { doc: am, unit }.record(&act, NOW as i64 + 10 + n as i64)
            })
            .unwrap();
        self.out.push(c.encode());
    }
}

#[test]
fn acts_join_only_where_the_rules_allow_and_handlers_set_the_status() {
    let f = fed();
    let h = hospital(&f, 40);
    let extra = vec![h.cert.clone()];
    let mut community = Writer::new(&f, &f.community, f.community_id, &extra);
    let mut street = Writer::new(&f, &f.street, f.street_id, &extra);
    let mut district = Writer::new(&f, &f.district, f.district_id, &extra);
    let mut hosp = Writer::new(&f, &h.secret, h.id, &extra);

    let problem = community.add(
        DocType::Problems,
        "p1",
        ItemFields {
            title: Some("楼道堆物占用消防通道".into()),
            ..Default::default()
        },
    );
    community.escalate("p1", ProblemLevel::Street, f.street_id);
    let whistle = community.add(
        DocType::Whistles,
        "w1",
        ItemFields {
            title: Some("汛期排水点位巡查".into()),
            levels: Some(vec![UnitKind::Street]),
            ..Default::default()
        },
    );
    let project = community.add(
        DocType::Projects,
        "j1",
        ItemFields {
            title: Some("老年助餐点共建".into()),
            ..Default::default()
        },
    );
    // Allowed: the street handles the problem it was escalated to and
    // answers the whistle that calls streets; the hospital claims the
    // project.
    street.act(
        1,
        ActKind::Handling,
        &problem,
        f.community_id,
        "in_progress",
        false,
    );
    street.act(
        2,
        ActKind::Handling,
        &problem,
        f.community_id,
        "resolved",
        true,
    );
    street.act(
        3,
        ActKind::Response,
        &whistle,
        f.community_id,
        "已到岗",
        false,
    );
    hosp.act(
        4,
        ActKind::Claim,
        &project,
        f.community_id,
        "派出医护志愿者",
        false,
    );
    // Not allowed: the district "handles" a problem never escalated to it
    // (and later than the street, so it would win if it counted); the
    // hospital answers a whistle calling only streets, and "handles" the
    // problem too.
    district.act(
        5,
        ActKind::Handling,
        &problem,
        f.community_id,
        "closed",
        true,
    );
    hosp.act(6, ActKind::Response, &whistle, f.community_id, "", false);
    hosp.act(
        7,
        ActKind::Handling,
        &problem,
        f.community_id,
        "open",
        false,
    );

    // A district node holding everything.
    let dir = tempfile::tempdir().unwrap();
    let mut r = replica(dir.path(), &f, None);
    for w in [&community, &street, &district, &hosp] {
        r.insert_records(w.r.store().records().unwrap()).unwrap();
    }
    for w in [&community, &street, &district, &hosp] {
        let report = r.ingest(w.out.clone()).unwrap();
        assert!(
            report.invalid.is_empty() && report.rejected.is_empty() && report.pending.is_empty(),
            "{report:?}"
        );
    }
    let view = View::build(&r);
    let all = |q: ItemQuery| view.items(&f.district_id, &q).unwrap().items;

    // The same node fed one change per call, its view folded from the rows
    // ingest hands over as it builds each document (as the daemon does),
    // holds the same rows as one built from the store afterwards.
    let dir2 = tempfile::tempdir().unwrap();
    let mut fed_r = replica(dir2.path(), &f, None);
    for w in [&community, &street, &district, &hosp] {
        fed_r
            .insert_records(w.r.store().records().unwrap())
            .unwrap();
    }
    let pending = gongjian_view::PendingRows::default();
    fed_r.on_built(pending.hook());
    let mut folded = View::build(&fed_r);
    let mut handed = 0;
    for w in [&hosp, &district, &street, &community] {
        for c in &w.out {
            fed_r.ingest(vec![c.clone()]).unwrap();
            let waiting = pending.len();
            let now = pending.fold_into(&mut folded, &fed_r);
            assert_eq!(now.len(), waiting, "rows of the state stored");
            handed += now.len();
        }
    }
    assert!(handed >= 10, "ingest handed its documents over ({handed})");
    assert_eq!(folded.len(), view.len());
    assert_eq!(folded.digest(&f.district_id), view.digest(&f.district_id));
    let fp = folded.item_view(&f.district_id, &problem).unwrap();
    assert_eq!((fp.row.status, fp.acts.len()), ("resolved", 2));

    let p = view.item_view(&f.district_id, &problem).unwrap();
    assert_eq!(p.row.status, "resolved", "the street's latest handling act");
    assert_eq!(p.row.status_zh, "已解决");
    assert_eq!(p.owner_status, "open");
    assert_eq!(p.acts.len(), 2, "{:?}", p.acts);
    assert!(p.acts.iter().all(|a| a.unit == f.street_id));
    assert_eq!(p.acts_ignored, 2, "the district's and the hospital's");

    let w = view.item_view(&f.district_id, &whistle).unwrap();
    assert_eq!(w.acts.len(), 1);
    assert_eq!(w.acts[0].unit, f.street_id);
    assert_eq!(w.acts_ignored, 1);
    assert!(w.claimed);

    let j = view.item_view(&f.district_id, &project).unwrap();
    assert!(j.claimed);
    assert_eq!(j.acts[0].unit, h.id);

    // Filters and counts use the status shown.
    let resolved = all(ItemQuery {
        status: Some("resolved".into()),
        ..Default::default()
    });
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].row.id, problem);
    let stats = view.stats(&f.district_id, gongjian_view::StatsBy::Street);
    assert!(
        stats
            .iter()
            .any(|s| s.list == "problem" && s.status == "resolved" && s.count == 1),
        "{stats:?}"
    );
    assert!(
        !stats
            .iter()
            .any(|s| s.list == "problem" && s.status == "open")
    );
    // Only the whistle's rightful response makes it claimed; the hospital's
    // alone would not.
    let unclaimed = all(ItemQuery {
        claimed: Some(false),
        ..Default::default()
    });
    assert!(
        unclaimed
            .iter()
            .all(|i| i.row.id != whistle && i.row.id != project)
    );
}

/// Two devices of one unit set a record's status and description at the
/// same time: the view shows one value of each and the other beside it,
/// never dropping one silently.
#[test]
fn concurrent_values_of_any_field_are_shown() {
    use gongjian_identity::{ActorId, SignedChange};
    use gongjian_model::ItemStatus;
    let f = fed();
    let mut community = Writer::new(&f, &f.community, f.community_id, &[]);
    let need = community.add(
        DocType::Needs,
        "n1",
        ItemFields {
            title: Some("楼道照明维修".into()),
            ..Default::default()
        },
    );
    let doc = community.doc(DocType::Needs);
    // The second device: the same key, another actor, from the same state.
    let second = ActorId {
        key: f.community.public(),
        epoch: 9,
    };
    let mut fork = community
        .r
        .load(&doc)
        .unwrap()
        .with_actor(automerge::ActorId::from(second.to_bytes()));
    let there = ItemFields {
        description: Some("二号机：已联系物业".into()),
        ..Default::default()
    };
    let chunk = ListDoc::open(&mut fork, DocType::Needs)
        .unwrap()
        .edit("n1", &there, NOW as i64 + 5)
        .unwrap();
    let theirs = SignedChange::sign(doc, chunk, &f.community).unwrap();
    let chunk = ListDoc::open(&mut fork, DocType::Needs)
        .unwrap()
        .set_status("n1", ItemStatus::Resolved, NOW as i64 + 6)
        .unwrap();
    let theirs2 = SignedChange::sign(doc, chunk, &f.community).unwrap();
    let here = ItemFields {
        description: Some("一号机：等待维修".into()),
        ..Default::default()
    };
    // One local change per commit, as the API makes them.
    for edit in [true, false] {
        let c = community
            .r
            .local_change(&doc, NOW + 5, |am| {
                let mut l = ListDoc::open(am, DocType::Needs)?;
                if edit {
                    l.edit("n1", &here, NOW as i64 + 5)
                } else {
                    l.set_status("n1", ItemStatus::InProgress, NOW as i64 + 6)
                }
            })
            .unwrap();
        community.out.push(c.encode());
    }
    community.out.push(theirs.encode());
    community.out.push(theirs2.encode());

    let dir = tempfile::tempdir().unwrap();
    let mut r = replica(dir.path(), &f, None);
    r.insert_records(community.r.store().records().unwrap())
        .unwrap();
    let report = r.ingest(community.out.clone()).unwrap();
    assert!(
        report.invalid.is_empty() && report.rejected.is_empty() && report.pending.is_empty(),
        "{report:?}"
    );
    let view = View::build(&r);
    let v = view.item_view(&f.district_id, &need).unwrap();
    let shown = (v.row.description.clone(), v.row.status);
    let other_desc = &v.row.conflicts["description"];
    let other_status = &v.row.conflicts["status"];
    assert_eq!(other_desc.len(), 1, "{:?}", v.row.conflicts);
    let descs = [shown.0.as_str(), other_desc[0].as_str()];
    assert!(descs.contains(&"一号机：等待维修") && descs.contains(&"二号机：已联系物业"));
    let statuses = [shown.1, other_status[0].as_str()];
    assert!(statuses.contains(&"in_progress") && statuses.contains(&"resolved"));
    assert!(
        !v.row.conflicts.contains_key("title"),
        "the title was not touched"
    );
}

/// A unit's documents signed by its second key are flagged as minted by a
/// key other than its enrolment key once the enrolment key's (earlier)
/// certificate is held. When that certificate arrives after the
/// documents, nothing in them moves: the view sets their provenance again
/// from the records.
#[test]
fn provenance_follows_the_records_without_the_documents_moving() {
    use gongjian_identity::{Certificate, RecordBody};
    let f = fed();
    let second = Secret::from_seed([61; 32]);
    let second_cert = Certificate {
        subject: second.public(),
        unit: f.community_id,
        kind: UnitKind::Community,
        parent: Some(f.street_id),
        name: "颐和路社区".into(),
        not_before: NOW - 500,
        not_after: NOW + 86_400 * 365,
    }
    .sign(&f.street);
    let mut w = Writer::new(&f, &second, f.community_id, &[second_cert]);
    let id = w.add(
        DocType::Needs,
        "n1",
        ItemFields {
            title: Some("助餐点志愿者".into()),
            ..Default::default()
        },
    );

    // A district node that holds the second key's certificate, not yet the
    // enrolment key's.
    let enrolment = f.records[2].clone();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path()).unwrap();
    let mut r = Replica::open(store, f.root.public(), None).unwrap();
    let records: Vec<_> =
        w.r.store()
            .records()
            .unwrap()
            .into_iter()
            .filter(|x| x.hash() != enrolment.hash())
            .collect();
    r.insert_records(records).unwrap();
    let report = r.ingest(w.out.clone()).unwrap();
    assert!(
        report.invalid.is_empty() && report.rejected.is_empty(),
        "{report:?}"
    );
    let mut view = View::build(&r);
    let row = view.item_view(&f.district_id, &id).unwrap().row;
    assert!(
        !row.provenance.minted_by_other,
        "the second key is the only one known"
    );

    let before = gongjian_store::Store::doc_meta(r.store(), &split(&id)).unwrap();
    r.insert_records(vec![enrolment]).unwrap();
    assert_eq!(
        gongjian_store::Store::doc_meta(r.store(), &split(&id))
            .unwrap()
            .map(|m| m.heads),
        before.map(|m| m.heads),
        "the document did not move"
    );
    view.records_changed(&r);
    let row = view.item_view(&f.district_id, &id).unwrap().row;
    assert!(row.provenance.minted_by_other, "now flagged");
    assert_eq!(
        row.provenance.genesis_signer,
        Some(second.public().to_string())
    );
}

fn split(id: &str) -> DocId {
    gongjian_view::split_global_id(id).unwrap().0
}

/// The view's lag for metrics: documents whose stored heads it has not
/// folded in, counted from a copy of its heads (off the sync thread).
#[test]
fn behind_counts_the_documents_not_folded_in() {
    let f = fed();
    let mut community = Writer::new(&f, &f.community, f.community_id, &[]);
    let titled = |t: &str| ItemFields {
        title: Some(t.into()),
        ..Default::default()
    };
    community.add(DocType::Needs, "n1", titled("楼道照明"));
    let view = View::build(&community.r);
    assert_eq!(view.behind(&community.r), 0);
    community.add(DocType::Needs, "n2", titled("助餐"));
    community.add(DocType::Resources, "r1", titled("活动室"));
    let folded = view.folded_heads();
    let behind = gongjian_view::behind(&folded, community.r.store(), &community.r.trust_shared());
    assert_eq!(behind, 2, "the needs moved, the resources are new");
    assert_eq!(view.behind(&community.r), 2);
    let mut view = view;
    let needs = community.doc(DocType::Needs);
    view.refresh(&community.r, &needs);
    assert_eq!(view.behind(&community.r), 1);
}
