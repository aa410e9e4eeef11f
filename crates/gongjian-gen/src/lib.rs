//! A district at the scale DOMAIN.md reports for Gulou, generated from a
//! seed: the tree of units with their keys and certificates, grids with
//! their counts, every list (needs, resources, services, projects,
//! responsibilities, problems, micro-wishes, whistles), the acts units write
//! about each other's records (claims, responses, handling, signatures) and
//! co-building agreements, each as real signed automerge changes with an
//! edit history (records edited several times by their owners, some
//! concurrently from a second device).
//!
//! Owns: the figures of a profile and turning them into signed records and
//! changes. Must never: write anything a node could not have written (each
//! unit signs only its own documents, with its own key, through the same
//! model operations the API uses).
//!
//! Generation goes community by community and keeps only the documents
//! still being written in memory, so a ×10 district fits.

mod names;

use std::collections::BTreeMap;

use automerge::Automerge;
use gongjian_identity::{
    ActorId, Certificate, DocId, DocType, Genesis, Hash, RecordBody, Secret, SignedChange,
    SignedRecord, UnitId, UnitKind,
};
use gongjian_model::{
    Act, ActKind, ActsDoc, AgreementDoc, Grid, GridCounts, GridLevel, GridRef, GridsDoc,
    ItemFields, ItemStatus, ListDoc, ListKind, ProblemLevel, Target, Terms, agreement_parties,
    agreement_parts_digest,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub use names::STREETS;

const DAY: i64 = 86_400;

/// The figures of a district (DOMAIN.md, Gulou), before scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub streets: usize,
    pub communities: usize,
    pub residents: usize,
    /// Grids in all (片区, 居民区网格, 微单元网格).
    pub grids: usize,
    pub agreements: usize,
    /// Agreements with a second resident party (218 agreements with 238
    /// units: twenty have two).
    pub agreements_with_two: usize,
    pub services: usize,
    pub projects: usize,
    pub urgent_projects: usize,
    pub projects_done: usize,
    pub problems: usize,
    pub problems_resolved: usize,
    pub wishes: usize,
    pub whistles: usize,
    pub needs: usize,
    pub resources: usize,
    pub responsibilities: usize,
}

impl Profile {
    /// Gulou (DOMAIN.md): 13 streets, 120 communities, 540 resident units,
    /// about 600 grids, 218 agreements with 238 units, 569 service entries,
    /// 711 projects (59 urgent, 133 done), 365 problems (336 resolved).
    pub fn district() -> Profile {
        Profile {
            streets: 13,
            communities: 120,
            residents: 540,
            grids: 600,
            agreements: 218,
            agreements_with_two: 20,
            services: 569,
            projects: 711,
            urgent_projects: 59,
            projects_done: 133,
            problems: 365,
            problems_resolved: 336,
            wishes: 240,
            whistles: 120,
            needs: 360,
            resources: 540,
            responsibilities: 120,
        }
    }

    /// Every figure multiplied by `factor` (×10 is a large city).
    pub fn scaled(&self, factor: f64) -> Profile {
        let s = |n: usize| ((n as f64) * factor).round().max(1.0) as usize;
        Profile {
            streets: s(self.streets),
            communities: s(self.communities),
            residents: s(self.residents),
            grids: s(self.grids),
            agreements: s(self.agreements),
            agreements_with_two: s(self.agreements_with_two),
            services: s(self.services),
            projects: s(self.projects),
            urgent_projects: s(self.urgent_projects),
            projects_done: s(self.projects_done),
            problems: s(self.problems),
            problems_resolved: s(self.problems_resolved),
            wishes: s(self.wishes),
            whistles: s(self.whistles),
            needs: s(self.needs),
            resources: s(self.resources),
            responsibilities: s(self.responsibilities),
        }
    }

    /// A named profile: `district` (Gulou) or `small` (one street, for
    /// tests and quick looks).
    pub fn named(name: &str) -> Option<Profile> {
        match name {
            "district" => Some(Profile::district()),
            "small" => Some(Profile {
                streets: 1,
                communities: 4,
                residents: 12,
                grids: 20,
                agreements: 6,
                agreements_with_two: 1,
                services: 16,
                projects: 20,
                urgent_projects: 3,
                projects_done: 5,
                problems: 12,
                problems_resolved: 10,
                wishes: 8,
                whistles: 4,
                needs: 12,
                resources: 12,
                responsibilities: 4,
            }),
            _ => None,
        }
    }
}

/// A unit of the generated district, with its node key.
#[derive(Debug, Clone)]
pub struct Unit {
    pub id: UnitId,
    pub kind: UnitKind,
    pub name: String,
    pub parent: Option<UnitId>,
    pub secret: Secret,
}

/// One document: its id, owner, type and every signed change, in the order
/// they were made (causal).
#[derive(Debug, Clone)]
pub struct Doc {
    pub id: DocId,
    pub unit: UnitId,
    pub doc_type: DocType,
    pub changes: Vec<SignedChange>,
}

/// What was generated, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub units: BTreeMap<String, usize>,
    pub grids: usize,
    pub items: BTreeMap<String, usize>,
    pub acts: BTreeMap<String, usize>,
    pub agreements: usize,
    pub documents: usize,
    pub records: usize,
    pub changes: usize,
    /// Bytes of the signed changes, as they travel (each with its own
    /// signature).
    pub change_bytes: usize,
    /// Edits made concurrently by a second device of the owner.
    pub concurrent_edits: usize,
}

/// A generated district.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub seed: u64,
    /// The district's root key (it signs the certificates of the district
    /// and the streets).
    pub root: Secret,
    /// The district first, then in tree order.
    pub units: Vec<Unit>,
    /// Certificates (tree order), then every document's genesis.
    pub records: Vec<SignedRecord>,
    pub docs: Vec<Doc>,
    pub summary: Summary,
}

impl Dataset {
    pub fn unit(&self, id: &UnitId) -> Option<&Unit> {
        self.units.iter().find(|u| u.id == *id)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("generating {what}: {why}")]
pub struct GenError {
    what: String,
    why: String,
}

fn gen_err(what: impl Into<String>, why: impl std::fmt::Display) -> GenError {
    GenError {
        what: what.into(),
        why: why.to_string(),
    }
}

/// A document being written: its automerge state and its changes so far.
struct Open {
    id: DocId,
    unit: UnitId,
    doc_type: DocType,
    secret: Secret,
    am: Automerge,
    changes: Vec<SignedChange>,
    epoch2: bool,
}

impl Open {
    fn new(
        unit: &Unit,
        doc_type: DocType,
        parties: Vec<UnitId>,
        created_at: u64,
    ) -> (Open, SignedRecord) {
        let genesis = Genesis {
            doc_type,
            unit: unit.id,
            parties,
            created_at,
            write_keys: vec![unit.secret.public()],
        }
        .sign(&unit.secret);
        let actor = ActorId {
            key: unit.secret.public(),
            epoch: 1,
        };
        let open = Open {
            id: DocId(genesis.hash()),
            unit: unit.id,
            doc_type,
            secret: unit.secret.clone(),
            am: Automerge::new().with_actor(automerge::ActorId::from(actor.to_bytes())),
            changes: Vec::new(),
            epoch2: false,
        };
        (open, genesis)
    }

    /// One local change made by `edit`, signed.
    fn commit<E: std::fmt::Display>(
        &mut self,
        edit: impl FnOnce(&mut Automerge) -> Result<Vec<u8>, E>,
    ) -> Result<(), GenError> {
        let chunk = edit(&mut self.am).map_err(|e| gen_err(self.what(), e))?;
        let c = SignedChange::sign(self.id, chunk, &self.secret)
            .map_err(|e| gen_err(self.what(), e))?;
        self.changes.push(c);
        Ok(())
    }

    /// Two edits made at the same time: `here` on this device, `there` on
    /// the owner's second device (the same key, another actor), then
    /// merged as sync would.
    fn concurrent<E: std::fmt::Display>(
        &mut self,
        here: impl FnOnce(&mut Automerge) -> Result<Vec<u8>, E>,
        there: impl FnOnce(&mut Automerge) -> Result<Vec<u8>, E>,
    ) -> Result<(), GenError> {
        let second = ActorId {
            key: self.secret.public(),
            epoch: 2,
        };
        let mut fork = self
            .am
            .fork()
            .with_actor(automerge::ActorId::from(second.to_bytes()));
        let chunk = there(&mut fork).map_err(|e| gen_err(self.what(), e))?;
        let theirs = SignedChange::sign(self.id, chunk, &self.secret)
            .map_err(|e| gen_err(self.what(), e))?;
        self.commit(here)?;
        self.changes.push(theirs);
        self.am
            .merge(&mut fork)
            .map_err(|e| gen_err(self.what(), e))?;
        self.epoch2 = true;
        Ok(())
    }

    fn what(&self) -> String {
        format!("{:?} of {}", self.doc_type, self.unit)
    }

    fn close(self) -> Doc {
        Doc {
            id: self.id,
            unit: self.unit,
            doc_type: self.doc_type,
            changes: self.changes,
        }
    }
}

/// Shares `total` among `n` slots as evenly as possible.
fn share(total: usize, n: usize, i: usize) -> usize {
    total / n + usize::from(i < total % n)
}

/// A valid unified social credit code from a 17-character prefix.
fn credit_code(prefix17: &str) -> Result<UnitId, GenError> {
    "0123456789ABCDEFGHJKLMNPQRTUWXY"
        .chars()
        .find_map(|c| format!("{prefix17}{c}").parse().ok())
        .ok_or_else(|| {
            gen_err(
                "a credit code",
                format!("no check character fits {prefix17}"),
            )
        })
}

fn cert(signer: &Secret, u: &Unit, now: u64) -> SignedRecord {
    Certificate {
        subject: u.secret.public(),
        unit: u.id,
        kind: u.kind,
        parent: u.parent,
        name: u.name.clone(),
        not_before: now - 400 * DAY as u64,
        not_after: now + 3 * 365 * DAY as u64,
    }
    .sign(signer)
}

struct Gen {
    rng: StdRng,
    now: i64,
    start: i64,
    records: Vec<SignedRecord>,
    docs: Vec<Doc>,
    summary: Summary,
    genesis_clock: u64,
    empty: std::collections::BTreeSet<DocId>,
}

impl Gen {
    fn open(&mut self, unit: &Unit, t: DocType, parties: Vec<UnitId>) -> Open {
        self.genesis_clock += 1;
        let (open, genesis) = Open::new(unit, t, parties, self.start as u64 + self.genesis_clock);
        self.records.push(genesis);
        open
    }

    fn close(&mut self, open: Open) {
        if open.epoch2 {
            self.summary.concurrent_edits += 1;
        }
        if open.changes.is_empty() {
            // A document is created on first write; an empty one is dropped
            // with its genesis (filtered out once, at the end).
            self.empty.insert(open.id);
            return;
        }
        self.docs.push(open.close());
    }

    /// A time in the past year, and one a little after `t`.
    fn when(&mut self) -> i64 {
        self.start + self.rng.random_range(0..(self.now - self.start - 30 * DAY))
    }
    fn after(&mut self, t: i64) -> i64 {
        (t + self.rng.random_range(DAY..20 * DAY)).min(self.now - 1)
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.rng.random_range(0..xs.len())]
    }

    fn count_item(&mut self, kind: ListKind) {
        *self
            .summary
            .items
            .entry(kind.as_str().to_owned())
            .or_default() += 1;
    }

    fn count_act(&mut self, kind: ActKind) {
        *self
            .summary
            .acts
            .entry(kind.as_str().to_owned())
            .or_default() += 1;
    }

    /// Adds a record and gives it an edit history: a description edited
    /// once or twice, sometimes a concurrent title edit from the owner's
    /// second device (both titles kept: a conflict the view shows).
    fn item(
        &mut self,
        doc: &mut Open,
        kind: ListKind,
        id: &str,
        fields: ItemFields,
        t: i64,
    ) -> Result<i64, GenError> {
        doc.commit(|am| ListDoc::new(am, kind).add(id, &fields, t))?;
        self.count_item(kind);
        let mut t = t;
        let edits = match self.rng.random_range(0..100) {
            0..45 => 0,
            45..85 => 1,
            _ => 2,
        };
        for n in 0..edits {
            t = self.after(t);
            let desc = ItemFields {
                description: Some(format!(
                    "{}（第{}次修订）",
                    fields.description.clone().unwrap_or_default(),
                    n + 1
                )),
                ..ItemFields::default()
            };
            doc.commit(|am| ListDoc::new(am, kind).edit(id, &desc, t))?;
        }
        if self.rng.random_bool(0.04) {
            t = self.after(t);
            let title = fields.title.clone().unwrap_or_default();
            let here = ItemFields {
                title: Some(format!("{title}（更新）")),
                ..ItemFields::default()
            };
            let there = ItemFields {
                title: Some(format!("{title}（补充）")),
                ..ItemFields::default()
            };
            doc.concurrent(
                |am| ListDoc::new(am, kind).edit(id, &here, t),
                |am| ListDoc::new(am, kind).edit(id, &there, t),
            )?;
        }
        Ok(t)
    }

    fn status(
        &mut self,
        doc: &mut Open,
        kind: ListKind,
        id: &str,
        status: ItemStatus,
        t: i64,
    ) -> Result<(), GenError> {
        doc.commit(|am| ListDoc::new(am, kind).set_status(id, status, t))
    }

    fn act(&mut self, acts: &mut Open, act: Act) -> Result<(), GenError> {
        let (unit, t) = (acts.unit, act.created_at);
        self.count_act(act.kind);
        acts.commit(|am| ActsDoc { doc: am, unit }.record(&act, t))
    }
}

fn target(owner: &Open, record: &str) -> Target {
    Target {
        unit: owner.unit,
        doc: owner.id,
        record: record.to_owned(),
    }
}

/// Generates a district from `profile` and `seed`, with times in the year
/// before `now`. The same inputs give the same bytes.
pub fn generate(profile: &Profile, seed: u64, now: u64) -> Result<Dataset, GenError> {
    let p = profile;
    let mut rng = StdRng::seed_from_u64(seed);
    let root = Secret::from_seed(rng.random());
    let mut g = Gen {
        rng,
        now: now as i64,
        start: now as i64 - 365 * DAY,
        records: Vec::new(),
        docs: Vec::new(),
        summary: Summary::default(),
        genesis_clock: 0,
        empty: Default::default(),
    };

    // The tree.
    let district = Unit {
        id: "320106000000"
            .parse()
            .map_err(|e| gen_err("the district", e))?,
        kind: UnitKind::District,
        name: "南京市鼓楼区".into(),
        parent: None,
        secret: Secret::from_seed(g.rng.random()),
    };
    let mut certs = vec![cert(&root, &district, now)];
    let mut streets = Vec::new();
    // (community, its residents), per street.
    let mut tree: Vec<Vec<(Unit, Vec<Unit>)>> = Vec::new();
    let (mut ci, mut ri) = (0usize, 0usize);
    for s in 0..p.streets {
        let street = Unit {
            id: format!("320106{:03}000", s + 1)
                .parse()
                .map_err(|e| gen_err("a street code", e))?,
            kind: UnitKind::Street,
            name: names::street(s),
            parent: Some(district.id),
            secret: Secret::from_seed(g.rng.random()),
        };
        certs.push(cert(&root, &street, now));
        let mut communities = Vec::new();
        for c in 0..share(p.communities, p.streets, s) {
            let community = Unit {
                id: format!("320106{:03}{:03}", s + 1, c + 1)
                    .parse()
                    .map_err(|e| gen_err("a community code", e))?,
                kind: UnitKind::Community,
                name: names::community(ci),
                parent: Some(street.id),
                secret: Secret::from_seed(g.rng.random()),
            };
            certs.push(cert(&street.secret, &community, now));
            let mut residents = Vec::new();
            for _ in 0..share(p.residents, p.communities, ci) {
                let (name, _) = names::resident(ri);
                let resident = Unit {
                    id: credit_code(&format!("91320106M{:08}", ri + 1))?,
                    kind: UnitKind::Resident,
                    name,
                    parent: Some(community.id),
                    secret: Secret::from_seed(g.rng.random()),
                };
                certs.push(cert(&community.secret, &resident, now));
                residents.push(resident);
                ri += 1;
            }
            communities.push((community, residents));
            ci += 1;
        }
        streets.push(street);
        tree.push(communities);
    }
    g.summary.units.insert("district".into(), 1);
    g.summary.units.insert("street".into(), streets.len());
    g.summary.units.insert("community".into(), ci);
    g.summary.units.insert("resident".into(), ri);
    g.records.extend(certs);

    let mut district_acts = g.open(&district, DocType::Acts, vec![]);
    let mut agreement_no = 0usize;
    let mut ci = 0usize;
    for (s, street) in streets.iter().enumerate() {
        let mut street_acts = g.open(street, DocType::Acts, vec![]);
        for (community, residents) in &tree[s] {
            let n = ci;
            ci += 1;
            let quota = |total: usize| share(total, p.communities, n);
            let mut own: BTreeMap<DocType, Open> = BTreeMap::new();
            for t in [
                DocType::Grids,
                DocType::Needs,
                DocType::Projects,
                DocType::Problems,
                DocType::Wishes,
                DocType::Whistles,
                DocType::Services,
                DocType::Responsibilities,
                DocType::Acts,
            ] {
                let doc = g.open(community, t, vec![]);
                own.insert(t, doc);
            }
            let mut rdocs: Vec<BTreeMap<DocType, Open>> = residents
                .iter()
                .map(|r| {
                    [DocType::Resources, DocType::Services, DocType::Acts]
                        .into_iter()
                        .map(|t| (t, g.open(r, t, vec![])))
                        .collect()
                })
                .collect();

            // Grids: one zone (片区), residential grids under it, some micro.
            let zone_name = format!("{}片区", community.name.trim_end_matches("社区"));
            let grids_here = quota(p.grids).max(1);
            let mut grid_ids = Vec::new();
            {
                let doc = own.get_mut(&DocType::Grids).expect("opened");
                let t = g.when();
                let zone = Grid {
                    id: "zone".into(),
                    level: GridLevel::Zone,
                    name: zone_name.clone(),
                    parent: None,
                    leader: names::person(n),
                    party_branch: format!("{zone_name}党支部"),
                    staff: vec![names::person(n + 7), names::person(n + 13)],
                    counts: GridCounts {
                        posts: g.rng.random_range(1..4),
                        ..GridCounts::default()
                    },
                };
                doc.commit(|am| GridsDoc(am).put(&zone, t))?;
                g.summary.grids += 1;
                for k in 1..grids_here {
                    let micro = k % 5 == 0;
                    let (level, parent_id) = if micro {
                        (GridLevel::Micro, format!("r{}", k - 1))
                    } else {
                        (GridLevel::Residential, "zone".to_owned())
                    };
                    let id = if micro {
                        format!("m{k}")
                    } else {
                        format!("r{k}")
                    };
                    let grid = Grid {
                        id: id.clone(),
                        level,
                        name: format!("{}第{k}网格", community.name.trim_end_matches("社区")),
                        parent: Some(GridRef {
                            unit: community.id,
                            id: parent_id,
                        }),
                        leader: names::person(n * 7 + k),
                        party_branch: String::new(),
                        staff: vec![],
                        counts: GridCounts {
                            households: g.rng.random_range(150..900),
                            compounds: g.rng.random_range(1..6),
                            resident_units: g.rng.random_range(0..6),
                            posts: g.rng.random_range(0..3),
                            members: g.rng.random_range(20..200),
                        },
                    };
                    let t = g.after(t);
                    doc.commit(|am| GridsDoc(am).put(&grid, t))?;
                    g.summary.grids += 1;
                    grid_ids.push(id);
                }
            }
            let grid_of = |g: &mut Gen| -> Option<String> {
                if grid_ids.is_empty() {
                    None
                } else {
                    Some(g.pick(&grid_ids).clone())
                }
            };

            // Needs of the community.
            for k in 0..quota(p.needs) {
                let category = *g.pick(&names::CATEGORIES);
                let title = *g.pick(names::need(category));
                let fields = ItemFields {
                    title: Some(title.into()),
                    category: Some(category.into()),
                    description: Some(format!("{}居民反映：{title}", community.name)),
                    area: Some(zone_name.clone()),
                    grid: grid_of(&mut g),
                    ..ItemFields::default()
                };
                let t = g.when();
                let doc = own.get_mut(&DocType::Needs).expect("opened");
                let t = g.item(doc, ListKind::Need, &format!("n{k}"), fields, t)?;
                if g.rng.random_bool(0.3) {
                    let t = g.after(t);
                    g.status(
                        doc,
                        ListKind::Need,
                        &format!("n{k}"),
                        ItemStatus::Resolved,
                        t,
                    )?;
                }
            }
            // Resources and services of the residents.
            for (i, r) in residents.iter().enumerate() {
                let docs = &mut rdocs[i];
                for k in 0..share(p.resources, p.residents, 0).max(1) {
                    if g.summary.items.get("resource").copied().unwrap_or(0) >= p.resources {
                        break;
                    }
                    let category = *g.pick(&names::CATEGORIES);
                    let title = *g.pick(names::resource(category));
                    let fields = ItemFields {
                        title: Some(title.into()),
                        category: Some(category.into()),
                        description: Some(format!("{}可提供：{title}", r.name)),
                        area: Some(zone_name.clone()),
                        ..ItemFields::default()
                    };
                    let t = g.when();
                    let doc = docs.get_mut(&DocType::Resources).expect("opened");
                    g.item(doc, ListKind::Resource, &format!("r{k}"), fields, t)?;
                }
            }
            let services_here = quota(p.services);
            for k in 0..services_here {
                let title = *g.pick(&names::SERVICES);
                let fields = ItemFields {
                    title: Some(title.into()),
                    category: Some((*g.pick(&names::CATEGORIES)).into()),
                    description: Some(format!("双向服务：{title}")),
                    area: Some(zone_name.clone()),
                    ..ItemFields::default()
                };
                let t = g.when();
                // Services are offered by residents and by the community.
                let who = k % (residents.len() + 1);
                let doc = if who == residents.len() {
                    own.get_mut(&DocType::Services).expect("opened")
                } else {
                    rdocs[who].get_mut(&DocType::Services).expect("opened")
                };
                g.item(doc, ListKind::Service, &format!("s{k}"), fields, t)?;
            }
            // Responsibilities.
            for k in 0..quota(p.responsibilities) {
                let title = *g.pick(&names::RESPONSIBILITIES);
                let fields = ItemFields {
                    title: Some(title.into()),
                    category: Some("责任".into()),
                    description: Some(format!("{}：{title}", community.name)),
                    grid: grid_of(&mut g),
                    ..ItemFields::default()
                };
                let t = g.when();
                let doc = own.get_mut(&DocType::Responsibilities).expect("opened");
                g.item(doc, ListKind::Responsibility, &format!("d{k}"), fields, t)?;
            }

            // Projects, claimed by resident units.
            let projects_here = quota(p.projects);
            for k in 0..projects_here {
                // About 59 of 711 urgent (急办), 133 done.
                let urgent = g.rng.random_range(0..p.projects) < p.urgent_projects;
                let title = *g.pick(&names::PROJECTS);
                let fields = ItemFields {
                    title: Some(format!("{zone_name}{title}")),
                    category: Some((*g.pick(&names::CATEGORIES)).into()),
                    description: Some(format!("{}发布的共建项目：{title}", community.name)),
                    area: Some(zone_name.clone()),
                    grid: grid_of(&mut g),
                    urgent: Some(urgent),
                    ..ItemFields::default()
                };
                let id = format!("j{k}");
                let t = g.when();
                let doc = own.get_mut(&DocType::Projects).expect("opened");
                let t = g.item(doc, ListKind::Project, &id, fields, t)?;
                if !residents.is_empty() && g.rng.random_bool(0.8) {
                    let who = g.rng.random_range(0..residents.len());
                    let t = g.after(t);
                    let tg = target(own.get(&DocType::Projects).expect("opened"), &id);
                    let act = Act {
                        note: "我单位认领".into(),
                        ..Act::new(
                            &format!("c{}", g.summary.acts.values().sum::<usize>()),
                            ActKind::Claim,
                            tg,
                            t,
                        )
                    };
                    let acts = rdocs[who].get_mut(&DocType::Acts).expect("opened");
                    g.act(acts, act)?;
                    let doc = own.get_mut(&DocType::Projects).expect("opened");
                    let t = g.after(t);
                    // Done: 133 of the ~570 claimed.
                    let done = g.rng.random_range(0..p.projects * 8 / 10) < p.projects_done;
                    if done {
                        g.status(doc, ListKind::Project, &id, ItemStatus::Resolved, t)?;
                    } else {
                        g.status(doc, ListKind::Project, &id, ItemStatus::InProgress, t)?;
                    }
                }
            }

            // Problems found in the grids, handled at their level.
            for k in 0..quota(p.problems) {
                let title = *g.pick(&names::PROBLEMS);
                let fields = ItemFields {
                    title: Some(title.into()),
                    category: Some("问题".into()),
                    description: Some(format!("网格员巡查发现：{title}")),
                    area: Some(zone_name.clone()),
                    grid: grid_of(&mut g),
                    ..ItemFields::default()
                };
                let id = format!("p{k}");
                let t = g.when();
                let doc = own.get_mut(&DocType::Problems).expect("opened");
                let mut t = g.item(doc, ListKind::Problem, &id, fields, t)?;
                let resolved = g.rng.random_range(0..p.problems) < p.problems_resolved;
                // 小事不出网格、难事不出片区、大事不出街道.
                let level = match g.rng.random_range(0..100) {
                    0..55 => ProblemLevel::Grid,
                    55..80 => ProblemLevel::Zone,
                    80..88 => ProblemLevel::Community,
                    88..98 => ProblemLevel::Street,
                    _ => ProblemLevel::District,
                };
                let handler = match level {
                    ProblemLevel::Street => Some(street.id),
                    ProblemLevel::District => Some(district.id),
                    _ => None,
                };
                if level != ProblemLevel::Grid {
                    t = g.after(t);
                    doc.commit(|am| {
                        ListDoc::new(am, ListKind::Problem).escalate(&id, level, handler, t)
                    })?;
                }
                match handler {
                    None => {
                        t = g.after(t);
                        let st = if resolved {
                            ItemStatus::Resolved
                        } else {
                            ItemStatus::InProgress
                        };
                        g.status(doc, ListKind::Problem, &id, st, t)?;
                    }
                    Some(h) => {
                        let tg = target(own.get(&DocType::Problems).expect("opened"), &id);
                        let acts = if h == street.id {
                            &mut street_acts
                        } else {
                            &mut district_acts
                        };
                        t = g.after(t);
                        let st = if resolved {
                            ItemStatus::Resolved
                        } else {
                            ItemStatus::InProgress
                        };
                        let act = Act {
                            note: st.as_str().into(),
                            resolved,
                            ..Act::new(
                                &format!("h{}", g.summary.acts.values().sum::<usize>()),
                                ActKind::Handling,
                                tg,
                                t,
                            )
                        };
                        g.act(acts, act)?;
                    }
                }
            }

            // Micro-wishes, claimed by resident units.
            for k in 0..quota(p.wishes) {
                let title = *g.pick(&names::WISHES);
                let fields = ItemFields {
                    title: Some(format!("困难家庭微心愿：{title}")),
                    category: Some("助困".into()),
                    description: Some(format!("{}登记的微心愿", community.name)),
                    grid: grid_of(&mut g),
                    ..ItemFields::default()
                };
                let id = format!("w{k}");
                let t = g.when();
                let doc = own.get_mut(&DocType::Wishes).expect("opened");
                let t = g.item(doc, ListKind::Wish, &id, fields, t)?;
                if !residents.is_empty() && g.rng.random_bool(0.7) {
                    let who = g.rng.random_range(0..residents.len());
                    let t = g.after(t);
                    let tg = target(own.get(&DocType::Wishes).expect("opened"), &id);
                    let act = Act::new(
                        &format!("c{}", g.summary.acts.values().sum::<usize>()),
                        ActKind::Claim,
                        tg,
                        t,
                    );
                    let acts = rdocs[who].get_mut(&DocType::Acts).expect("opened");
                    g.act(acts, act)?;
                }
            }

            // Whistles, answered by the levels called.
            for k in 0..quota(p.whistles) {
                let title = *g.pick(&names::WHISTLES);
                let levels = match g.rng.random_range(0..3) {
                    0 => vec![UnitKind::Street],
                    1 => vec![UnitKind::Resident],
                    _ => vec![UnitKind::Street, UnitKind::Resident],
                };
                let fields = ItemFields {
                    title: Some(title.into()),
                    category: Some("吹哨".into()),
                    description: Some(format!("{}吹哨：{title}", community.name)),
                    area: Some(zone_name.clone()),
                    levels: Some(levels.clone()),
                    ..ItemFields::default()
                };
                let id = format!("h{k}");
                let t = g.when();
                let doc = own.get_mut(&DocType::Whistles).expect("opened");
                let t = g.item(doc, ListKind::Whistle, &id, fields, t)?;
                let tg = target(own.get(&DocType::Whistles).expect("opened"), &id);
                if levels.contains(&UnitKind::Street) {
                    let t = g.after(t);
                    let act = Act {
                        note: "街道报到".into(),
                        ..Act::new(
                            &format!("a{}", g.summary.acts.values().sum::<usize>()),
                            ActKind::Response,
                            tg.clone(),
                            t,
                        )
                    };
                    g.act(&mut street_acts, act)?;
                }
                if levels.contains(&UnitKind::Resident) {
                    for (who, docs) in rdocs.iter_mut().enumerate() {
                        if who % 2 == 0 {
                            let t = g.after(t);
                            let act = Act {
                                note: "单位报到".into(),
                                ..Act::new(
                                    &format!("a{}", g.summary.acts.values().sum::<usize>()),
                                    ActKind::Response,
                                    tg.clone(),
                                    t,
                                )
                            };
                            g.act(docs.get_mut(&DocType::Acts).expect("opened"), act)?;
                        }
                    }
                }
            }

            // Co-building agreements with resident units, signed by every
            // party in its own acts document.
            for _ in 0..quota(p.agreements) {
                if residents.is_empty() {
                    break;
                }
                let first = g.rng.random_range(0..residents.len());
                let mut others = vec![residents[first].id];
                if agreement_no < p.agreements_with_two && residents.len() > 1 {
                    others.push(residents[(first + 1) % residents.len()].id);
                }
                agreement_no += 1;
                let parties = agreement_parties(community.id, &others)
                    .ok_or_else(|| gen_err("agreement parties", "repeated"))?;
                let mut doc = g.open(community, DocType::Agreement, others.clone());
                let t = g.when();
                let length = if g.rng.random_bool(0.1) { 380 } else { 365 };
                let services: Vec<String> = (0..g.rng.random_range(1..4))
                    .map(|_| (*g.pick(&names::SERVICES)).to_owned())
                    .collect();
                let terms = Terms {
                    title: format!("{}与{}共建协议", community.name, g.pick(residents).name),
                    start: t,
                    end: t + length * DAY,
                    services,
                    contact: names::person(agreement_no),
                };
                doc.commit(|am| AgreementDoc(am).set_terms(&terms, t))?;
                let heads: Vec<Hash> = AgreementDoc(&mut doc.am).heads();
                let parts = agreement_parts_digest(&doc.id, &parties, &[]);
                let signing = g.rng.random_bool(0.9);
                let tg = Target {
                    unit: community.id,
                    doc: doc.id,
                    record: String::new(),
                };
                if signing {
                    for party in &parties {
                        let t = g.after(t);
                        let act = Act {
                            heads: heads.clone(),
                            parts: Some(parts),
                            ..Act::new(
                                &format!("g{}", g.summary.acts.values().sum::<usize>()),
                                ActKind::Sign,
                                tg.clone(),
                                t,
                            )
                        };
                        let acts = if *party == community.id {
                            own.get_mut(&DocType::Acts).expect("opened")
                        } else {
                            let i = residents
                                .iter()
                                .position(|r| r.id == *party)
                                .expect("a party");
                            rdocs[i].get_mut(&DocType::Acts).expect("opened")
                        };
                        g.act(acts, act)?;
                    }
                }
                g.summary.agreements += 1;
                g.close(doc);
            }

            for (_, d) in own {
                g.close(d);
            }
            for docs in rdocs {
                for (_, d) in docs {
                    g.close(d);
                }
            }
        }
        g.close(street_acts);
    }
    g.close(district_acts);

    let mut units = vec![district];
    for (s, street) in streets.into_iter().enumerate() {
        units.push(street);
        for (c, residents) in std::mem::take(&mut tree[s]) {
            units.push(c);
            units.extend(residents);
        }
    }
    let empty = std::mem::take(&mut g.empty);
    g.records.retain(|r| !empty.contains(&DocId(r.hash())));
    g.summary.documents = g.docs.len();
    g.summary.records = g.records.len();
    g.summary.changes = g.docs.iter().map(|d| d.changes.len()).sum();
    g.summary.change_bytes = g
        .docs
        .iter()
        .flat_map(|d| &d.changes)
        .map(|c| c.encode().len())
        .sum();
    Ok(Dataset {
        seed,
        root,
        units,
        records: g.records,
        docs: g.docs,
        summary: g.summary,
    })
}
