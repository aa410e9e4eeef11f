//! Grid trees (网格): zone (片区) → residential grid (居民区网格) → micro-unit
//! grid (微单元网格) → building (楼栋), each grid a record in its owning
//! unit's grids document. A grid's parent may belong to another unit (a
//! community's residential grids under the street's zone); each grid is owned
//! by exactly one unit, so sums up the tree never count a grid twice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ObjType, ReadDoc, ScalarValue, Value};
use gongjian_identity::UnitId;
use serde::{Deserialize, Serialize};

/// The level of a grid in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GridLevel {
    Zone,
    Residential,
    Micro,
    Building,
}

impl GridLevel {
    pub fn as_str(&self) -> &'static str {
        match self {
            GridLevel::Zone => "zone",
            GridLevel::Residential => "residential",
            GridLevel::Micro => "micro",
            GridLevel::Building => "building",
        }
    }
    pub fn label_zh(&self) -> &'static str {
        match self {
            GridLevel::Zone => "片区",
            GridLevel::Residential => "居民区网格",
            GridLevel::Micro => "微单元网格",
            GridLevel::Building => "楼栋",
        }
    }
    /// The level a parent must have.
    pub fn parent_level(&self) -> Option<GridLevel> {
        match self {
            GridLevel::Zone => None,
            GridLevel::Residential => Some(GridLevel::Zone),
            GridLevel::Micro => Some(GridLevel::Residential),
            GridLevel::Building => Some(GridLevel::Micro),
        }
    }
}

impl fmt::Display for GridLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GridLevel {
    type Err = GridError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "zone" => GridLevel::Zone,
            "residential" => GridLevel::Residential,
            "micro" => GridLevel::Micro,
            "building" => GridLevel::Building,
            other => return Err(GridError::Level(other.to_owned())),
        })
    }
}

/// The counts a grid reports for itself (not its children).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GridCounts {
    pub households: u64,
    pub compounds: u64,
    pub resident_units: u64,
    pub posts: u64,
    pub members: u64,
}

impl GridCounts {
    fn add(&mut self, o: &GridCounts) {
        self.households = self.households.saturating_add(o.households);
        self.compounds = self.compounds.saturating_add(o.compounds);
        self.resident_units = self.resident_units.saturating_add(o.resident_units);
        self.posts = self.posts.saturating_add(o.posts);
        self.members = self.members.saturating_add(o.members);
    }
}

/// A reference to a grid: its owning unit and its id there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GridRef {
    pub unit: UnitId,
    pub id: String,
}

/// A grid as written by its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    pub id: String,
    pub level: GridLevel,
    pub name: String,
    pub parent: Option<GridRef>,
    /// 网格长
    pub leader: String,
    /// 网格党支部
    pub party_branch: String,
    pub staff: Vec<String>,
    pub counts: GridCounts,
}

impl Grid {
    /// A total order on content, for choosing deterministically between
    /// two grids of one unit with the same id.
    fn sort_key(&self) -> (GridLevel, String, Option<GridRef>, [u64; 5]) {
        let c = &self.counts;
        (
            self.level,
            self.name.clone(),
            self.parent.clone(),
            [
                c.households,
                c.compounds,
                c.resident_units,
                c.posts,
                c.members,
            ],
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    #[error("unknown grid level `{0}` (zone, residential, micro, building)")]
    Level(String),
    #[error("a {0} has no parent grid")]
    ZoneParent(GridLevel),
    #[error("a {0} needs a parent grid")]
    NoParent(GridLevel),
    #[error("grid id `{0}` must be 1 to 64 letters, digits, `-` or `_`")]
    Id(String),
    #[error("name must be 1 to 100 characters")]
    Name,
    #[error("no grid with id `{0}`")]
    NotFound(String),
    #[error("a grid with id `{0}` exists already")]
    Exists(String),
    #[error("automerge: {0}")]
    Automerge(String),
}

fn am(e: automerge::AutomergeError) -> GridError {
    GridError::Automerge(e.to_string())
}

/// Typed writes and reads of a unit's grids document.
#[derive(Debug)]
pub struct GridsDoc<'a>(pub &'a mut Automerge);

impl GridsDoc<'_> {
    /// Adds or replaces a grid in one local change (each field is its own
    /// register, so concurrent edits of different fields both stay).
    pub fn put(&mut self, g: &Grid, now: i64) -> Result<Vec<u8>, GridError> {
        self.put_by(g, "", now)
    }

    /// [`GridsDoc::put`], naming the person the node writes for (`by` on
    /// a new grid, `updated_by` on every write; empty: nobody).
    pub fn put_by(&mut self, g: &Grid, person: &str, now: i64) -> Result<Vec<u8>, GridError> {
        if person.chars().count() > crate::lists::MAX_PERSON {
            return Err(GridError::Name);
        }
        if !crate::lists::valid_id(&g.id) {
            return Err(GridError::Id(g.id.clone()));
        }
        let n = g.name.chars().count();
        if n == 0 || n > 100 {
            return Err(GridError::Name);
        }
        match (g.level.parent_level(), &g.parent) {
            (None, Some(_)) => return Err(GridError::ZoneParent(g.level)),
            (Some(_), None) => return Err(GridError::NoParent(g.level)),
            _ => {}
        }
        let mut tx = self.0.transaction();
        let obj = match tx.get(automerge::ROOT, g.id.as_str()).map_err(am)? {
            Some((Value::Object(ObjType::Map), obj)) => obj,
            _ => {
                let obj = tx
                    .put_object(automerge::ROOT, g.id.as_str(), ObjType::Map)
                    .map_err(am)?;
                tx.put(&obj, "created_at", crate::meta::stamp(now))
                    .map_err(am)?;
                if !person.is_empty() {
                    tx.put(&obj, "by", person).map_err(am)?;
                }
                obj
            }
        };
        if !person.is_empty() {
            tx.put(&obj, "updated_by", person).map_err(am)?;
        }
        // Only fields whose value changes are written: each field is its own
        // register, so concurrent edits of different fields both stay.
        let (pu, pid) = g
            .parent
            .as_ref()
            .map(|p| (p.unit.to_string(), p.id.clone()))
            .unwrap_or_default();
        let texts = [
            ("level", g.level.as_str().to_owned()),
            ("name", g.name.clone()),
            ("parent_unit", pu),
            ("parent_id", pid),
            ("leader", g.leader.clone()),
            ("party_branch", g.party_branch.clone()),
            ("staff", g.staff.join("\n")),
        ];
        for (k, v) in texts {
            let same = matches!(tx.get(&obj, k).map_err(am)?, Some((Value::Scalar(s), _)) if s.as_str() == Some(v.as_str()));
            if !same {
                tx.put(&obj, k, v).map_err(am)?;
            }
        }
        for (k, v) in [
            ("households", g.counts.households),
            ("compounds", g.counts.compounds),
            ("resident_units", g.counts.resident_units),
            ("posts", g.counts.posts),
            ("members", g.counts.members),
        ] {
            let same = matches!(tx.get(&obj, k).map_err(am)?, Some((Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Uint(n) if *n == v));
            if !same {
                tx.put(&obj, k, ScalarValue::Uint(v)).map_err(am)?;
            }
        }
        tx.put(&obj, "updated_at", crate::meta::stamp(now))
            .map_err(am)?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now));
        crate::meta::local_change_bytes(self.0, hash).map_err(GridError::Automerge)
    }

    /// The persons recorded on grid `id`: who wrote it, who last updated it.
    pub fn persons(&self, id: &str) -> (String, String) {
        crate::meta::record_obj(self.0, id)
            .map(|obj| crate::meta::persons(self.0, &obj))
            .unwrap_or_default()
    }

    /// Created and updated times and last author of grid `id`.
    pub fn meta(&self, id: &str) -> Option<crate::meta::RecordMeta> {
        let obj = crate::meta::record_obj(self.0, id)?;
        Some(crate::meta::read_meta(self.0, &obj))
    }

    /// Every grid of the document, by id.
    pub fn list(&self) -> Vec<Grid> {
        let doc = &*self.0;
        let mut out = Vec::new();
        // One walk over the grids, and one over each grid's fields (a
        // lookup in the op set per field cost the view about twice as much).
        for entry in doc.map_range(automerge::ROOT, ..) {
            if !matches!(entry.value, automerge::ValueRef::Object(ObjType::Map)) {
                continue;
            }
            let obj = entry.id();
            let id = entry.key.into_owned();
            let fields = crate::meta::Fields::read(doc, &obj);
            let text = |k: &str| fields.text(k);
            let num = |k: &str| fields.count(k);
            let Ok(level) = text("level").parse::<GridLevel>() else {
                continue;
            };
            let parent = text("parent_unit")
                .parse::<UnitId>()
                .ok()
                .map(|unit| GridRef {
                    unit,
                    id: text("parent_id"),
                });
            let staff = text("staff");
            out.push(Grid {
                level,
                name: text("name"),
                parent,
                leader: text("leader"),
                party_branch: text("party_branch"),
                staff: staff
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
                counts: GridCounts {
                    households: num("households"),
                    compounds: num("compounds"),
                    resident_units: num("resident_units"),
                    posts: num("posts"),
                    members: num("members"),
                },
                id,
            });
        }
        out
    }
}

/// A grid with the totals of its subtree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GridNode {
    pub grid: GridRef,
    pub level: GridLevel,
    pub name: String,
    /// Its own counts plus every descendant's, each grid counted once.
    pub totals: GridCounts,
    pub children: Vec<GridNode>,
}

/// Builds the grid forest from the grids of every unit held. A grid whose
/// parent is not held, has the wrong level, or belongs to a unit that is
/// not an ancestor of the grid's own unit (`is_below(unit, parent_unit)`,
/// from the certified membership) becomes a root, so every grid appears
/// exactly once and no unit can hang grids under another's zone to swell
/// its totals.
pub fn grid_tree(
    grids: &[(UnitId, Grid)],
    is_below: impl Fn(&UnitId, &UnitId) -> bool,
) -> Vec<GridNode> {
    // Two grids documents of one unit may hold the same id: keep one chosen
    // by content, so the input order never changes the tree.
    let mut sorted: Vec<&(UnitId, Grid)> = grids.iter().collect();
    sorted.sort_by_key(|(u, g)| (*u, g.id.clone(), g.sort_key()));
    sorted.dedup_by(|(u, a), (v, b)| u == v && a.id == b.id);
    let by_ref: BTreeMap<GridRef, &Grid> = sorted
        .into_iter()
        .map(|(u, g)| {
            (
                GridRef {
                    unit: *u,
                    id: g.id.clone(),
                },
                g,
            )
        })
        .collect();
    let valid_parent = |g: &Grid| -> Option<GridRef> {
        let p = g.parent.as_ref()?;
        let pg = by_ref.get(p)?;
        (Some(pg.level) == g.level.parent_level()).then(|| p.clone())
    };
    let mut children: BTreeMap<GridRef, Vec<GridRef>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (r, g) in &by_ref {
        let parent = valid_parent(g).filter(|p| p.unit == r.unit || is_below(&r.unit, &p.unit));
        match parent {
            Some(p) => children.entry(p).or_default().push(r.clone()),
            None => roots.push(r.clone()),
        }
    }
    // Levels strictly increase down the tree, so there are no cycles.
    fn build(
        r: &GridRef,
        by_ref: &BTreeMap<GridRef, &Grid>,
        children: &BTreeMap<GridRef, Vec<GridRef>>,
        seen: &mut BTreeSet<GridRef>,
    ) -> GridNode {
        seen.insert(r.clone());
        let g = by_ref[r];
        let mut totals = g.counts;
        let mut kids = Vec::new();
        for c in children.get(r).into_iter().flatten() {
            if seen.contains(c) {
                continue;
            }
            let node = build(c, by_ref, children, seen);
            totals.add(&node.totals);
            kids.push(node);
        }
        GridNode {
            grid: r.clone(),
            level: g.level,
            name: g.name.clone(),
            totals,
            children: kids,
        }
    }
    let mut seen = BTreeSet::new();
    roots
        .iter()
        .map(|r| build(r, &by_ref, &children, &mut seen))
        .collect()
}
