//! The seeded sync simulator. Everything random comes from one seed, so a
//! failing seed replays exactly: `cargo run -p gongjian-tests --bin sim --
//! --seed N`.

mod equivocation;
mod revocation;
mod scripted;

pub use equivocation::{EquivocationReport, run_equivocation};
pub use revocation::{RevocationReport, run_revocation};

use std::collections::{BTreeMap, BTreeSet};

use gongjian_engine::{LocalIdentity, Replica};
use gongjian_identity::{
    Certificate, DocId, DocType, Hash, KeyAdd, RecordBody, Secret, SignedRecord, UnitId, UnitKind,
};
use gongjian_model::{ItemFields, ListDoc, ListKind};
use gongjian_store::Store;
use gongjian_sync::{Fetches, Input, Message, Output, PeerProgress, Role, Session, encode};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub const NOW: u64 = 1_780_000_000;

/// The shape and the weather of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub streets: usize,
    pub communities_per_street: usize,
    pub residents_per_community: usize,
    /// Steps of the stormy phase (writes, faults, deliveries).
    pub steps: usize,
    pub p_write: f64,
    pub p_drop: f64,
    pub p_duplicate: f64,
    pub p_link_flip: f64,
    pub p_restart: f64,
    /// The first community of each street runs a second device: another
    /// key of the same unit (certified by the street, added as a write key
    /// by the community), writing to the community's document too.
    pub devices: bool,
    /// The first resident unit of each community also dials its street:
    /// a node with two sessions it opens, so they take turns at their
    /// first records reconciliation (`Fetches`).
    pub second_uplinks: bool,
}

impl Config {
    /// 1 district, 3 streets, 12 communities, 36 resident units: 52 units,
    /// and a second device for the first community of each street: 55 nodes.
    pub fn district(seed: u64) -> Config {
        Config {
            seed,
            streets: 3,
            communities_per_street: 4,
            residents_per_community: 3,
            steps: 3000,
            p_write: 0.03,
            p_drop: 0.05,
            p_duplicate: 0.03,
            p_link_flip: 0.01,
            p_restart: 0.002,
            devices: true,
            second_uplinks: true,
        }
    }
}

impl SimNode {
    pub fn replica(&self) -> &Replica {
        self.replica
            .as_ref()
            .expect("a node's replica is only absent during a restart")
    }
    pub fn replica_mut(&mut self) -> &mut Replica {
        self.replica
            .as_mut()
            .expect("a node's replica is only absent during a restart")
    }
}

/// One office's node.
#[derive(Debug)]
pub struct SimNode {
    pub unit: UnitId,
    pub kind: UnitKind,
    pub secret: Secret,
    pub parent: Option<usize>,
    dir: tempfile::TempDir,
    replica: Option<Replica>,
    /// The node's own needs document.
    pub doc: Option<DocId>,
    pub writes: u64,
    /// What this node's sessions are fetching (as the daemon's actor).
    fetches: Fetches,
}

#[derive(Debug)]
struct Link {
    child: usize,
    parent: usize,
    up: bool,
    /// Bumped at every new connection: packets of older ones are dropped.
    generation: u64,
    /// (child side = initiator, parent side = responder)
    sessions: Option<(Session, Session)>,
}

#[derive(Debug, Clone)]
struct Packet {
    link: usize,
    generation: u64,
    to_parent: bool,
    bytes: Vec<u8>,
    depth: u32,
}

/// What a run measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub nodes: usize,
    pub docs: usize,
    pub writes: u64,
    pub messages: u64,
    pub bytes: u64,
    /// Bytes sent, by message kind.
    pub bytes_by_kind: std::collections::BTreeMap<&'static str, u64>,
    pub heal_rounds: usize,
    pub misbehaviour: Vec<String>,
    /// Documents the district holds with changes of two keys or more.
    pub multi_author_docs: usize,
    /// Sessions that waited for their node's records turn when they
    /// started.
    pub turns_waited: u64,
}

/// The simulated district.
#[derive(Debug)]
pub struct World {
    pub cfg: Config,
    rng: StdRng,
    pub root: Secret,
    pub nodes: Vec<SimNode>,
    links: Vec<Link>,
    net: Vec<Packet>,
    pub now: u64,
    pub report: Report,
    /// The deepest message chain seen (round trips × 2).
    pub max_depth: u32,
    /// Deliver in sending order (one ordered stream per link, as libp2p
    /// gives) instead of at random.
    pub fifo: bool,
    /// (second device, the community node it serves).
    pub devices: Vec<(usize, usize)>,
    /// Waking sessions now (no nested wake rounds).
    waking: bool,
}

fn cert(
    signer: &Secret,
    subject: &Secret,
    unit: UnitId,
    kind: UnitKind,
    parent: Option<UnitId>,
    name: String,
) -> SignedRecord {
    Certificate {
        subject: subject.public(),
        unit,
        kind,
        parent,
        name,
        not_before: NOW - 1000,
        not_after: NOW + 86_400 * 3650,
    }
    .sign(signer)
}

/// A valid unified social credit code from a 17-character prefix.
pub fn credit_code(prefix17: &str) -> UnitId {
    "0123456789ABCDEFGHJKLMNPQRTUWXY"
        .chars()
        .find_map(|c| format!("{prefix17}{c}").parse().ok())
        .unwrap_or_else(|| panic!("no check character fits {prefix17}"))
}

fn open_replica(
    dir: &std::path::Path,
    root: &Secret,
    secret: &Secret,
    unit: UnitId,
    create: bool,
) -> Replica {
    let store = if create {
        let s = Store::create(dir).expect("create store");
        s.bump_epoch(NOW).expect("epoch");
        s
    } else {
        Store::open(dir).expect("reopen store")
    };
    Replica::open(
        store,
        root.public(),
        Some(LocalIdentity {
            secret: secret.clone(),
            unit,
        }),
    )
    .expect("open replica")
}

impl World {
    /// Builds the tree, certifies every unit (each node holds its own chain
    /// and the certificates it issued, as enrolment leaves it), and creates
    /// each unit's needs document. Other certificates and the geneses
    /// travel only by sync.
    pub fn new(cfg: Config) -> World {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let root = Secret::from_seed(rng.random());
        let mut nodes: Vec<(UnitId, UnitKind, Secret, Option<usize>, String)> = Vec::new();
        let district: UnitId = "320106000000".parse().expect("district code");
        nodes.push((
            district,
            UnitKind::District,
            Secret::from_seed(rng.random()),
            None,
            "鼓楼区".into(),
        ));
        for s in 0..cfg.streets {
            let sid: UnitId = format!("320106{:03}000", s + 1)
                .parse()
                .expect("street code");
            nodes.push((
                sid,
                UnitKind::Street,
                Secret::from_seed(rng.random()),
                Some(0),
                format!("第{}街道", s + 1),
            ));
            let si = nodes.len() - 1;
            for c in 0..cfg.communities_per_street {
                let cid: UnitId = format!("320106{:03}{:03}", s + 1, c + 1)
                    .parse()
                    .expect("community code");
                nodes.push((
                    cid,
                    UnitKind::Community,
                    Secret::from_seed(rng.random()),
                    Some(si),
                    format!("第{}社区", c + 1),
                ));
                let ci = nodes.len() - 1;
                for r in 0..cfg.residents_per_community {
                    let rid =
                        credit_code(&format!("91320106M{:02}{:02}{:03}Y", s + 1, c + 1, r + 1));
                    nodes.push((
                        rid,
                        UnitKind::Resident,
                        Secret::from_seed(rng.random()),
                        Some(ci),
                        format!("驻区单位{}-{}-{}", s + 1, c + 1, r + 1),
                    ));
                }
            }
        }
        // Second devices: (node index, the community node it serves).
        let tree_len = nodes.len();
        let mut devices: Vec<(usize, usize)> = Vec::new();
        if cfg.devices {
            for ci in 0..tree_len {
                let (unit, kind, _, parent, ref name) = nodes[ci];
                let first = parent.is_some_and(|p| nodes[ci - 1].0 == nodes[p].0);
                if kind == UnitKind::Community && first {
                    let name = format!("{name}（二号机）");
                    nodes.push((unit, kind, Secret::from_seed(rng.random()), Some(ci), name));
                    devices.push((nodes.len() - 1, ci));
                }
            }
        }
        let mut records = Vec::new();
        for (i, (unit, kind, secret, parent, name)) in nodes.iter().enumerate() {
            // A device is certified by its unit's parent, like the unit.
            let parent = match devices.iter().find(|(d, _)| *d == i) {
                Some((_, ci)) => nodes[*ci].3,
                None => *parent,
            };
            // The root issues for the district's children; every other
            // unit's parent issues for its own.
            let (signer, parent_unit) = match parent {
                None => (&root, None),
                Some(0) => (&root, Some(nodes[0].0)),
                Some(p) => (&nodes[p].2, Some(nodes[p].0)),
            };
            records.push(cert(
                signer,
                secret,
                *unit,
                *kind,
                parent_unit,
                name.clone(),
            ));
        }
        // Each node starts with what enrolment gives it: its own
        // certificate chain and the certificates it issued (the district
        // holds the root's). Every other certificate travels by sync.
        let parents: Vec<Option<usize>> = nodes.iter().map(|n| n.3).collect();
        let device_keys: BTreeMap<usize, gongjian_identity::PublicKey> = devices
            .iter()
            .map(|(d, _)| (*d, nodes[*d].2.public()))
            .collect();
        let mut sim_nodes_docs: Vec<Option<DocId>> = Vec::new();
        let mut sim_nodes = Vec::new();
        let mut links = Vec::new();
        for (i, (unit, kind, secret, parent, _)) in nodes.into_iter().enumerate() {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut replica = open_replica(dir.path(), &root, &secret, unit, true);
            let mut chain = Vec::new();
            let mut at = Some(i);
            while let Some(a) = at {
                chain.push(records[a].clone());
                at = parents[a];
            }
            chain.reverse();
            chain.extend(
                (0..parents.len())
                    .filter(|c| parents[*c] == Some(i))
                    .map(|c| records[c].clone()),
            );
            // A community with a second device adds its key as a writer.
            for (d, _) in devices.iter().filter(|(_, ci)| *ci == i) {
                chain.push(
                    KeyAdd {
                        unit,
                        key: device_keys[d],
                        issued_at: NOW,
                    }
                    .sign(&secret),
                );
            }
            replica.insert_records(chain).expect("certificates");
            let doc = match devices.iter().find(|(d, _)| *d == i) {
                // A device writes to its community's document, once synced.
                Some((_, ci)) => sim_nodes_docs[*ci],
                None => Some(
                    replica
                        .create_document(DocType::Needs, NOW)
                        .expect("genesis"),
                ),
            };
            sim_nodes_docs.push(doc);
            if let Some(p) = parent {
                links.push(Link {
                    child: i,
                    parent: p,
                    up: true,
                    generation: 0,
                    sessions: None,
                });
                // The street above a community's first resident unit.
                if cfg.second_uplinks
                    && kind == UnitKind::Resident
                    && p + 1 == i
                    && let Some(street) = parents[p]
                {
                    links.push(Link {
                        child: i,
                        parent: street,
                        up: true,
                        generation: 0,
                        sessions: None,
                    });
                }
            }
            sim_nodes.push(SimNode {
                unit,
                kind,
                secret,
                parent,
                dir,
                replica: Some(replica),
                doc,
                writes: 0,
                fetches: Fetches::new(),
            });
        }
        let report = Report {
            nodes: sim_nodes.len(),
            docs: sim_nodes.len(),
            ..Report::default()
        };
        World {
            cfg,
            rng,
            root,
            nodes: sim_nodes,
            links,
            net: Vec::new(),
            now: NOW,
            report,
            max_depth: 0,
            fifo: false,
            devices,
            waking: false,
        }
    }

    /// Node `i` adds a need to its own document and tells connected peers.
    pub fn write(&mut self, i: usize) {
        let Some(doc) = self.nodes[i].doc else { return };
        self.write_to(i, doc);
    }

    /// Node `i` adds a need to `doc`; returns the bytes of the signed change
    /// (0 if refused, e.g. after its key was revoked).
    pub fn write_to(&mut self, i: usize, doc: DocId) -> usize {
        let n = self.nodes[i].writes;
        let now = self.now;
        let fields = ItemFields {
            title: Some(format!("{}的需求第{}条", self.nodes[i].unit, n + 1)),
            category: Some("助老".into()),
            area: Some("颐和路片区".into()),
            ..ItemFields::default()
        };
        let id = format!("n{i}-{n}");
        let written = self.nodes[i].replica_mut().local_change(&doc, now, |am| {
            ListDoc::new(am, ListKind::Need).add(&id, &fields, now as i64)
        });
        let bytes = match written {
            Ok(c) => {
                self.nodes[i].writes += 1;
                self.report.writes += 1;
                c.encode().len()
            }
            Err(e) => {
                if std::env::var_os("SIM_DEBUG").is_some() {
                    eprintln!("write refused at {}: {e}", self.nodes[i].unit);
                }
                0
            }
        };
        self.notify(i, doc);
        bytes
    }

    /// Node `i` creates another needs document of its unit.
    pub fn create_doc(&mut self, i: usize) -> DocId {
        let now = self.now;
        self.nodes[i]
            .replica_mut()
            .create_document(DocType::Needs, now)
            .expect("genesis")
    }

    fn notify(&mut self, i: usize, doc: DocId) {
        for l in 0..self.links.len() {
            let (child, parent) = (self.links[l].child, self.links[l].parent);
            if child != i && parent != i {
                continue;
            }
            self.drive(l, child == i, Input::LocalChange(doc), 0);
        }
    }

    /// Feeds an input to one side of a link's sessions and queues what it
    /// sends. `child_side`: the input is for the child's session.
    fn drive(&mut self, l: usize, child_side: bool, input: Input, depth: u32) {
        let link = &mut self.links[l];
        let Some((cs, ps)) = link.sessions.as_mut() else {
            return;
        };
        let (session, idx) = if child_side {
            (cs, link.child)
        } else {
            (ps, link.parent)
        };
        let node = &mut self.nodes[idx];
        let waited = session.waits_for_turn();
        let outs = session
            .handle(node.replica_mut(), input, self.now)
            .unwrap_or_else(|e| panic!("seed {}: host error on {}: {e}", self.cfg.seed, node.unit));
        if !waited && session.waits_for_turn() {
            self.report.turns_waited += 1;
        }
        let generation = link.generation;
        let peer = if child_side { link.parent } else { link.child };
        let mut progress = Vec::new();
        for o in outs {
            match o {
                Output::Send(m) => {
                    trace(l, child_side, &m);
                    let bytes = encode(&m);
                    self.report.messages += 1;
                    self.report.bytes += bytes.len() as u64;
                    *self.report.bytes_by_kind.entry(m.kind()).or_default() += bytes.len() as u64;
                    self.max_depth = self.max_depth.max(depth + 1);
                    self.net.push(Packet {
                        link: l,
                        generation,
                        to_parent: child_side,
                        bytes,
                        depth: depth + 1,
                    });
                }
                Output::Misbehaved(why) => {
                    self.report
                        .misbehaviour
                        .push(format!("{} about its peer on link {l}: {why}", node.unit));
                }
                Output::Progress(p) => progress.push(p),
                // The simulator relays through its sync rounds.
                Output::Synced | Output::Changed(_) | Output::ResyncWanted => {}
            }
        }
        // Progress is persisted in the node's store, keyed by the peer's key,
        // as the daemon does: it survives restarts.
        for p in progress {
            let key = self.nodes[peer].secret.public();
            let mut b = gongjian_store::Batch::new();
            b.put_peer(key.as_bytes(), &postcard::to_stdvec(&p).expect("encode"));
            self.nodes[idx]
                .replica()
                .store()
                .commit_blocking(b)
                .expect("persist progress");
        }
        self.wake(idx);
    }

    /// Opens a fresh connection on link `l` (both sessions start over,
    /// resuming from the persisted progress).
    fn connect(&mut self, l: usize) {
        let (child, parent) = (self.links[l].child, self.links[l].parent);
        let cp = self.progress(child, l).unwrap_or_default();
        let pp = self.progress(parent, l).unwrap_or_default();
        let link = &mut self.links[l];
        link.generation += 1;
        link.sessions = Some((
            Session::with_fetches(
                self.nodes[parent].unit,
                Role::Initiator,
                cp,
                &self.nodes[child].fetches,
            ),
            Session::with_fetches(
                self.nodes[child].unit,
                Role::Responder,
                pp,
                &self.nodes[parent].fetches,
            ),
        ));
        self.drive(l, false, Input::Start, 0);
        self.drive(l, true, Input::Start, 0);
    }

    /// The progress node `i` persisted in its store about its peer on
    /// link `l` (none yet: default).
    pub fn progress(&self, i: usize, l: usize) -> Option<PeerProgress> {
        let link = &self.links[l];
        let peer = if link.child == i {
            link.parent
        } else {
            link.child
        };
        let key = self.nodes[peer].secret.public();
        match self.nodes[i].replica().store().peer(key.as_bytes()) {
            Ok(Some(bytes)) => Some(postcard::from_bytes(&bytes).expect("progress decodes")),
            _ => None,
        }
    }

    fn disconnect(&mut self, l: usize) {
        self.links[l].sessions = None;
        self.net.retain(|p| p.link != l);
        // Dropping the sessions ended their fetches.
        let (child, parent) = (self.links[l].child, self.links[l].parent);
        self.wake(child);
        self.wake(parent);
    }

    /// After a fetch other sessions of node `i` waited for ended: they ask
    /// for what they deferred, as the daemon's actor does.
    fn wake(&mut self, i: usize) {
        if self.waking || self.nodes[i].replica.is_none() {
            return;
        }
        self.waking = true;
        while self.nodes[i].fetches.take_released() {
            for l in 0..self.links.len() {
                let (child, parent) = (self.links[l].child, self.links[l].parent);
                if child != i && parent != i {
                    continue;
                }
                let deferred = self.links[l].sessions.as_ref().is_some_and(|(c, p)| {
                    if child == i {
                        c.has_deferred()
                    } else {
                        p.has_deferred()
                    }
                });
                if deferred {
                    self.drive(l, child == i, Input::Wake, 0);
                }
            }
        }
        self.waking = false;
    }

    /// Kills node `i` and starts it again from its store.
    pub fn restart(&mut self, i: usize) {
        let dir = tempfile::tempdir().expect("temp dir");
        let dir = std::mem::replace(&mut self.nodes[i].dir, dir);
        self.reopen(i, dir);
    }

    /// Cuts node `i`'s links and opens its replica again on `dir`.
    fn reopen(&mut self, i: usize, dir: tempfile::TempDir) {
        for l in 0..self.links.len() {
            if self.links[l].child == i || self.links[l].parent == i {
                self.disconnect(l);
            }
        }
        let node = &mut self.nodes[i];
        drop(node.replica.take());
        node.dir = dir;
        node.replica = Some(open_replica(
            node.dir.path(),
            &self.root,
            &node.secret,
            node.unit,
            false,
        ));
    }

    fn deliver_one(&mut self) -> bool {
        if self.net.is_empty() {
            return false;
        }
        let p = if self.fifo {
            self.net.remove(0)
        } else {
            let k = self.rng.random_range(0..self.net.len());
            self.net.swap_remove(k)
        };
        if self.links[p.link].generation != p.generation || self.links[p.link].sessions.is_none() {
            return true;
        }
        self.drive(p.link, !p.to_parent, Input::Message(p.bytes), p.depth);
        true
    }

    fn link_quiet(&self, l: usize) -> bool {
        !self.net.iter().any(|p| p.link == l)
    }

    /// Links that are up and idle (never connected, or their last exchange
    /// ended or stalled on a drop) reconnect, each with probability 0.2.
    fn reconnect_idle(&mut self) {
        for l in 0..self.links.len() {
            if self.links[l].up && self.link_quiet(l) && self.rng.random_bool(0.2) {
                self.connect(l);
            }
        }
    }

    /// The stormy phase: writes, drops, duplicates, reordering, partitions
    /// and restarts.
    pub fn storm(&mut self) {
        for _ in 0..self.cfg.steps {
            self.now += 1;
            if self.rng.random_bool(self.cfg.p_write) {
                let i = self.rng.random_range(0..self.nodes.len());
                self.write(i);
                // A community's second device edits the same document at
                // about the same time, before either has synced.
                if let Some(&(d, _)) = self.devices.iter().find(|(_, c)| *c == i) {
                    self.write(d);
                }
            }
            if self.rng.random_bool(self.cfg.p_link_flip) && !self.links.is_empty() {
                let l = self.rng.random_range(0..self.links.len());
                self.links[l].up = !self.links[l].up;
                if !self.links[l].up {
                    self.disconnect(l);
                }
            }
            if self.rng.random_bool(self.cfg.p_restart) {
                let i = self.rng.random_range(0..self.nodes.len());
                self.restart(i);
            }
            if self.rng.random_bool(0.01) {
                let i = self.rng.random_range(0..self.nodes.len());
                let now = self.now;
                let _ = self.nodes[i].replica_mut().announce_heads(now);
            }
            self.reconnect_idle();
            // Deliver a few packets, some lost, some twice, in random order.
            for _ in 0..8 {
                if self.net.is_empty() {
                    break;
                }
                if self.rng.random_bool(self.cfg.p_drop) {
                    let k = self.rng.random_range(0..self.net.len());
                    self.net.swap_remove(k);
                    continue;
                }
                if self.rng.random_bool(self.cfg.p_duplicate) {
                    let k = self.rng.random_range(0..self.net.len());
                    let copy = self.net[k].clone();
                    self.net.push(copy);
                }
                self.deliver_one();
            }
        }
    }

    /// Every node's state: doc → heads, for the documents it holds.
    pub fn holdings(&self) -> Vec<BTreeMap<DocId, Vec<Hash>>> {
        self.nodes.iter().map(|n| Self::held(n.replica())).collect()
    }

    fn held(r: &Replica) -> BTreeMap<DocId, Vec<Hash>> {
        r.store()
            .docs()
            .expect("docs")
            .into_iter()
            .map(|(d, m)| (d, m.heads))
            .collect()
    }

    /// Documents and records of every node, to tell when healing is done.
    fn state(&self) -> Vec<(BTreeMap<DocId, Vec<Hash>>, usize)> {
        self.nodes
            .iter()
            .map(|n| (Self::held(n.replica()), n.replica().membership().len()))
            .collect()
    }

    /// Heals every link and runs reconnect rounds (no loss, still in random
    /// order) until nothing changes and every session ends synced.
    pub fn heal(&mut self, max_rounds: usize) -> usize {
        for l in &mut self.links {
            l.up = true;
        }
        let now = self.now;
        for n in &mut self.nodes {
            let _ = n.replica_mut().announce_heads(now);
        }
        let mut before = self.state();
        for round in 1..=max_rounds {
            self.now += 60;
            for l in 0..self.links.len() {
                self.connect(l);
            }
            while self.deliver_one() {}
            let synced = self
                .links
                .iter()
                .all(|l| l.sessions.as_ref().is_some_and(|(c, _)| c.is_synced()));
            let after = self.state();
            if synced && after == before {
                self.report.heal_rounds = round;
                return round;
            }
            before = after;
        }
        panic!(
            "seed {}: no convergence after {max_rounds} healed rounds",
            self.cfg.seed
        );
    }

    /// The district's view of membership, which holds every certificate.
    pub fn may_see(&self, viewer: &UnitId, doc: &DocId) -> bool {
        self.nodes[0].replica().trust().may_see(viewer, doc)
    }

    /// Checks convergence and audience; returns a description of the first
    /// violation.
    pub fn check(&self) -> Result<(), String> {
        let seed = self.cfg.seed;
        if let Some(m) = self.report.misbehaviour.first() {
            return Err(format!("seed {seed}: an honest peer was penalised: {m}"));
        }
        let held = self.holdings();
        let mut all_docs: BTreeMap<DocId, usize> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(d) = n.doc {
                all_docs.insert(d, i);
            }
        }
        for (doc, owner) in &all_docs {
            let truth = held[*owner]
                .get(doc)
                .ok_or_else(|| format!("seed {seed}: owner lost its document"))?;
            for (i, n) in self.nodes.iter().enumerate() {
                let entitled = self.may_see(&n.unit, doc);
                match (entitled, held[i].get(doc)) {
                    (true, Some(h)) if h == truth => {}
                    (true, Some(_)) => {
                        return Err(format!(
                            "seed {seed}: {} holds other heads of {}'s document",
                            n.unit, self.nodes[*owner].unit
                        ));
                    }
                    (true, None) => {
                        return Err(format!(
                            "seed {seed}: {} lacks {}'s document",
                            n.unit, self.nodes[*owner].unit
                        ));
                    }
                    (false, Some(_)) => {
                        return Err(format!(
                            "seed {seed}: {} holds {}'s document outside its audience",
                            n.unit, self.nodes[*owner].unit
                        ));
                    }
                    (false, None) => {}
                }
            }
        }
        // Certificates travelled: every node knows every unit.
        let units: BTreeSet<UnitId> = self.nodes.iter().map(|n| n.unit).collect();
        for n in &self.nodes {
            let known = n.replica().trust().units().count();
            if known != units.len() {
                return Err(format!(
                    "seed {seed}: {} knows {known} of {} units' certificates",
                    n.unit,
                    units.len()
                ));
            }
        }
        // Every unit's latest heads announcement reached the district.
        for n in &self.nodes[1..] {
            let theirs = n.replica().heads_of(&n.unit);
            let at_district = self.nodes[0].replica().heads_of(&n.unit);
            if theirs.is_none() || theirs != at_district {
                return Err(format!(
                    "seed {seed}: the district lacks {}'s latest heads announcement",
                    n.unit
                ));
            }
        }
        Ok(())
    }

    /// Connects link `l` and delivers until quiet, without loss; returns
    /// (messages, bytes, deepest message chain) of that exchange.
    pub fn measure_sync(&mut self, l: usize) -> (u64, u64, u32) {
        let (m0, b0) = (self.report.messages, self.report.bytes);
        self.max_depth = 0;
        self.connect(l);
        while self.deliver_one() {}
        (
            self.report.messages - m0,
            self.report.bytes - b0,
            self.max_depth,
        )
    }

    /// Whether the initiator of link `l` ended synced.
    pub fn synced(&self, l: usize) -> bool {
        self.links[l]
            .sessions
            .as_ref()
            .is_some_and(|(c, _)| c.is_synced())
    }
}

/// With `GONGJIAN_SIM_TRACE` set, prints every message sent: link,
/// direction, kind and size of its lists.
fn trace(link: usize, up: bool, m: &Message) {
    if std::env::var_os("GONGJIAN_SIM_TRACE").is_none() {
        return;
    }
    let detail = match m {
        Message::Reconcile { ranges, round, .. } => {
            format!("round {round}, {} ranges", ranges.len())
        }
        Message::Changes { changes, .. } => format!("{} changes", changes.len()),
        Message::Records { records } => format!("{} records", records.len()),
        Message::WantRecords { hashes } => format!("{} hashes", hashes.len()),
        _ => String::new(),
    };
    let dir = if up { "up" } else { "down" };
    eprintln!("link {link} {dir} {} {detail}", m.kind());
}

/// Runs one seed end to end: storm, heal, check.
pub fn run(cfg: Config) -> Result<Report, String> {
    let mut w = World::new(cfg);
    w.storm();
    w.heal(30);
    w.check()?;
    w.report.multi_author_docs = w.nodes[0]
        .replica()
        .store()
        .docs()
        .map_err(|e| e.to_string())?
        .iter()
        .filter(|(_, m)| m.clock.keys().map(|a| a.key).collect::<BTreeSet<_>>().len() >= 2)
        .count();
    Ok(w.report.clone())
}
