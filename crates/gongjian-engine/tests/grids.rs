//! Grid trees across units: the street's zone, the community's grids below
//! it; sums up the tree count each grid once; only the owner writes its grids.

mod common;

use common::*;
use gongjian_engine::EngineError;
use gongjian_identity::{DocType, UnitId};
use gongjian_model::{Grid, GridCounts, GridLevel, GridRef, GridsDoc, grid_tree};
use tempfile::tempdir;

fn grid(
    id: &str,
    level: GridLevel,
    name: &str,
    parent: Option<(UnitId, &str)>,
    counts: GridCounts,
) -> Grid {
    Grid {
        id: id.into(),
        level,
        name: name.into(),
        parent: parent.map(|(unit, id)| GridRef {
            unit,
            id: id.into(),
        }),
        leader: "王网格长".into(),
        party_branch: format!("{name}党支部"),
        staff: vec!["李明".into(), "张华".into()],
        counts,
    }
}

fn counts(households: u64, members: u64) -> GridCounts {
    GridCounts {
        households,
        compounds: 1,
        resident_units: 1,
        posts: 1,
        members,
    }
}

#[test]
fn sums_up_the_tree_count_each_grid_once_and_only_owners_write() {
    let f = fed();
    let (ds, dc) = (tempdir().unwrap(), tempdir().unwrap());
    let mut street = node(ds.path(), &f, &[], &f.street, f.street_id);
    let mut community = node(dc.path(), &f, &[], &f.community, f.community_id);

    let zone = grid(
        "zone-4",
        GridLevel::Zone,
        "良城片区四",
        None,
        GridCounts::default(),
    );
    let sdoc = street.create_document(DocType::Grids, NOW).unwrap();
    street
        .local_change(&sdoc, NOW, |am| GridsDoc(am).put(&zone, NOW as i64))
        .unwrap();

    let cdoc = community.create_document(DocType::Grids, NOW).unwrap();
    let mine = [
        grid(
            "r1",
            GridLevel::Residential,
            "颐和路居民区网格",
            Some((f.street_id, "zone-4")),
            counts(0, 10),
        ),
        grid(
            "m1",
            GridLevel::Micro,
            "微网格一",
            Some((f.community_id, "r1")),
            counts(120, 30),
        ),
        grid(
            "m2",
            GridLevel::Micro,
            "微网格二",
            Some((f.community_id, "r1")),
            counts(80, 20),
        ),
        grid(
            "b1",
            GridLevel::Building,
            "1号楼",
            Some((f.community_id, "m1")),
            counts(40, 5),
        ),
    ];
    for g in &mine {
        community
            .local_change(&cdoc, NOW, |am| GridsDoc(am).put(g, NOW as i64))
            .unwrap();
    }
    // A building cannot hang under a zone: it becomes a root, counted once.
    let stray = grid(
        "b9",
        GridLevel::Building,
        "9号楼",
        Some((f.street_id, "zone-4")),
        counts(7, 1),
    );
    community
        .local_change(&cdoc, NOW, |am| GridsDoc(am).put(&stray, NOW as i64))
        .unwrap();

    // The street receives the community's grids (as sync would carry them).
    street
        .insert_records(community.store().records().unwrap())
        .unwrap();
    street
        .ingest(wire(&community.store().doc_changes(&cdoc).unwrap()))
        .unwrap();
    drop(street);
    let mut street = reopen_with(ds.path(), &f, &f.street, f.street_id);
    let mut all = Vec::new();
    for (unit, doc) in [(f.street_id, sdoc), (f.community_id, cdoc)] {
        let mut am = street.load(&doc).unwrap();
        all.extend(GridsDoc(&mut am).list().into_iter().map(|g| (unit, g)));
    }
    assert_eq!(all.len(), 6);
    let trust = street.trust().clone();
    let below = |u: &UnitId, a: &UnitId| trust.is_below(u, a);
    assert!(below(&f.community_id, &f.street_id));
    assert!(below(&f.community_id, &f.district_id));
    assert!(!below(&f.street_id, &f.community_id));
    let tree = grid_tree(&all, below);
    assert_eq!(
        tree.len(),
        2,
        "the zone, and the misplaced building as its own root"
    );
    let zone_node = tree.iter().find(|n| n.grid.id == "zone-4").unwrap();
    assert_eq!(zone_node.name, "良城片区四");
    let total = zone_node.totals;
    assert_eq!(total.households, 120 + 80 + 40);
    assert_eq!(total.members, 10 + 30 + 20 + 5);
    assert_eq!(total.compounds, 4, "each grid once");
    let r1 = &zone_node.children[0];
    assert_eq!(r1.level, GridLevel::Residential);
    assert_eq!(r1.children.len(), 2);
    let grand: u64 = tree.iter().map(|n| n.totals.households).sum();
    assert_eq!(
        grand, 247,
        "every grid counted exactly once across the forest"
    );
    let mut am = street.load(&cdoc).unwrap();
    let meta = GridsDoc(&mut am).meta("m1").unwrap();
    assert_eq!(meta.created_at, NOW as i64);
    assert_eq!(
        meta.last_author,
        Some(f.community.public()),
        "who last changed it, from the op ids"
    );
    // `all` was read by the street after a restart (empty cache): the
    // round trip through automerge and RocksDB.
    let read_back = all.iter().find(|(_, g)| g.id == "m1").unwrap();
    assert_eq!(
        read_back.1, mine[1],
        "round trip through automerge and RocksDB"
    );

    // The owner edits a grid: totals follow.
    let mut m1 = mine[1].clone();
    m1.counts.households = 150;
    m1.leader = "赵网格长".into();
    community
        .local_change(&cdoc, NOW + 5, |am| GridsDoc(am).put(&m1, NOW as i64 + 5))
        .unwrap();
    street
        .ingest(wire(&community.store().doc_changes(&cdoc).unwrap()))
        .unwrap();
    let mut all2: Vec<(UnitId, Grid)> = Vec::new();
    for (unit, doc) in [(f.street_id, sdoc), (f.community_id, cdoc)] {
        let mut am = street.load(&doc).unwrap();
        all2.extend(GridsDoc(&mut am).list().into_iter().map(|g| (unit, g)));
    }
    let tree2 = grid_tree(&all2, below);
    // A unit that is not below the street (here the district) cannot hang
    // a grid under the street's zone to swell its totals: it stays a root.
    let mut intruder = all2.clone();
    intruder.push((
        f.district_id,
        grid(
            "r-x",
            GridLevel::Residential,
            "外来网格",
            Some((f.street_id, "zone-4")),
            counts(1000, 0),
        ),
    ));
    let t3 = grid_tree(&intruder, below);
    let z3 = t3.iter().find(|n| n.grid.id == "zone-4").unwrap();
    assert_eq!(z3.totals.households, 150 + 80 + 40, "intruder not summed");
    assert!(
        t3.iter()
            .any(|n| n.grid.id == "r-x" && n.totals.households == 1000)
    );
    let z2 = tree2.iter().find(|n| n.grid.id == "zone-4").unwrap();
    assert_eq!(z2.totals.households, 150 + 80 + 40);
    let mut am = street.load(&cdoc).unwrap();
    let meta = GridsDoc(&mut am).meta("m1").unwrap();
    assert_eq!(
        (meta.created_at, meta.updated_at),
        (NOW as i64, NOW as i64 + 5)
    );

    // Nobody else writes the community's grids: not the street, not the district.
    let err = street
        .local_change(&cdoc, NOW, |am| GridsDoc(am).put(&zone, NOW as i64))
        .unwrap_err();
    assert!(matches!(err, EngineError::NotWriter(_)), "{err}");
    let mut intruder = Author::new(&f.district, 1, cdoc);
    let forged = intruder.put("r1", "区里改写");
    let report = community.ingest(wire(&[forged])).unwrap();
    assert_eq!(report.rejected.len(), 1);
    assert!(report.accepted.is_empty());
}

#[test]
fn malformed_grids_are_refused() {
    let f = fed();
    let d = tempdir().unwrap();
    let mut community = node(d.path(), &f, &[], &f.community, f.community_id);
    let doc = community.create_document(DocType::Grids, NOW).unwrap();
    let orphan = grid("x", GridLevel::Micro, "无上级", None, GridCounts::default());
    let err = community
        .local_change(&doc, NOW, |am| GridsDoc(am).put(&orphan, NOW as i64))
        .unwrap_err();
    assert!(err.to_string().contains("needs a parent"), "{err}");
    let zone_with_parent = grid(
        "z",
        GridLevel::Zone,
        "片区",
        Some((f.street_id, "x")),
        GridCounts::default(),
    );
    assert!(
        community
            .local_change(&doc, NOW, |am| GridsDoc(am)
                .put(&zone_with_parent, NOW as i64))
            .is_err()
    );
    let unnamed = grid("y", GridLevel::Zone, "", None, GridCounts::default());
    assert!(
        community
            .local_change(&doc, NOW, |am| GridsDoc(am).put(&unnamed, NOW as i64))
            .is_err()
    );
    assert!(heads(&community, &doc).is_empty(), "nothing written");
}
