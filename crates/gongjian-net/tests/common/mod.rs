//! Five real nodes for the network tests: district, street, two
//! communities and a resident unit, each with its own RocksDB in a temp
//! dir, certificates chained to a pinned root, libp2p on 127.0.0.1.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use gongjian_engine::{LocalIdentity, Replica};
use gongjian_identity::{
    Certificate, DocId, DocType, Hash, RecordBody, Secret, SignedRecord, UnitId, UnitKind,
};
use gongjian_model::{ItemFields, ListDoc, ListKind};
use gongjian_net::{NetConfig, Node};
use gongjian_store::Store;
use libp2p::Multiaddr;

pub fn now() -> u64 {
    gongjian_net::now_secs()
}

#[derive(Debug, Clone)]
pub struct Member {
    pub name: &'static str,
    pub secret: Secret,
    pub unit: UnitId,
    pub cert: SignedRecord,
    /// Index of the member whose key signed the certificate (None: root).
    pub signer: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Fed {
    pub root: Secret,
    pub members: Vec<Member>,
}

pub const DISTRICT: usize = 0;
pub const STREET: usize = 1;
pub const COMMUNITY_A: usize = 2;
pub const COMMUNITY_B: usize = 3;
pub const RESIDENT: usize = 4;

fn cert(
    signer: &Secret,
    subject: &Secret,
    unit: UnitId,
    kind: UnitKind,
    parent: Option<UnitId>,
    name: &str,
) -> SignedRecord {
    let t = now();
    Certificate {
        subject: subject.public(),
        unit,
        kind,
        parent,
        name: name.into(),
        not_before: t - 3600,
        not_after: t + 86_400 * 365,
    }
    .sign(signer)
}

pub fn fed(seed: u8) -> Fed {
    let root = Secret::from_seed([seed; 32]);
    // name, id, kind, parent, certificate signer (None: the root)
    type Spec = (
        &'static str,
        &'static str,
        UnitKind,
        Option<usize>,
        Option<usize>,
    );
    let spec: [Spec; 5] = [
        (
            "南京市鼓楼区",
            "320106000000",
            UnitKind::District,
            None,
            None,
        ),
        (
            "宁海路街道",
            "320106002000",
            UnitKind::Street,
            Some(DISTRICT),
            None,
        ),
        (
            "颐和路社区",
            "320106002001",
            UnitKind::Community,
            Some(STREET),
            Some(STREET),
        ),
        (
            "江苏路社区",
            "320106002002",
            UnitKind::Community,
            Some(STREET),
            Some(STREET),
        ),
        (
            "江苏省人民医院",
            "91350100M000100Y43",
            UnitKind::Resident,
            Some(COMMUNITY_A),
            Some(COMMUNITY_A),
        ),
    ];
    let mut members: Vec<Member> = Vec::new();
    for (i, (name, id, kind, parent, signer)) in spec.into_iter().enumerate() {
        let secret = Secret::from_seed([seed.wrapping_add(10 + i as u8); 32]);
        let unit: UnitId = id.parse().unwrap();
        let parent_id = parent.map(|p| members[p].unit);
        let by = signer.map_or(&root, |s| &members[s].secret);
        let cert = cert(by, &secret, unit, kind, parent_id, name);
        members.push(Member {
            name,
            secret,
            unit,
            cert,
            signer,
        });
    }
    Fed { root, members }
}

impl Fed {
    /// The certificates a member's node starts with: its own chain.
    pub fn chain(&self, i: usize) -> Vec<SignedRecord> {
        let mut out = vec![self.members[i].cert.clone()];
        let mut at = self.members[i].signer;
        while let Some(s) = at {
            out.push(self.members[s].cert.clone());
            at = self.members[s].signer;
        }
        out
    }

    pub fn replica(&self, i: usize, dir: &std::path::Path) -> Replica {
        let store = if dir.join("CURRENT").exists() {
            Store::open(dir).unwrap()
        } else {
            let s = Store::create(dir).unwrap();
            s.bump_epoch(now()).unwrap();
            s
        };
        let mut r = Replica::open(
            store,
            self.root.public(),
            Some(LocalIdentity {
                secret: self.members[i].secret.clone(),
                unit: self.members[i].unit,
            }),
        )
        .unwrap();
        r.insert_records(self.chain(i)).unwrap();
        r
    }

    pub async fn start(&self, i: usize, dir: &std::path::Path, bootstrap: Vec<Multiaddr>) -> Node {
        self.start_on(i, dir, "/ip4/127.0.0.1/tcp/0", bootstrap)
            .await
    }

    /// Starts member `i` with its network settings changed by `tweak`.
    pub async fn start_with(
        &self,
        i: usize,
        dir: &std::path::Path,
        bootstrap: Vec<Multiaddr>,
        tweak: impl FnOnce(&mut NetConfig),
    ) -> Node {
        let mut cfg = NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap,
            resync: Duration::from_millis(500),
            max_backoff: Duration::from_secs(2),
            ..NetConfig::default()
        };
        tweak(&mut cfg);
        // Opening a store blocks: not on the runtime's threads.
        let (me, path) = (self.clone(), dir.to_owned());
        let replica = tokio::task::spawn_blocking(move || me.replica(i, &path))
            .await
            .unwrap();
        Node::start(replica, &self.members[i].secret, self.members[i].unit, cfg)
            .await
            .unwrap()
    }

    /// Starts member `i` listening on `listen` (TCP or QUIC).
    pub async fn start_on(
        &self,
        i: usize,
        dir: &std::path::Path,
        listen: &str,
        bootstrap: Vec<Multiaddr>,
    ) -> Node {
        let listen: Multiaddr = listen.parse().unwrap();
        self.start_with(i, dir, bootstrap, |c| c.listen = vec![listen])
            .await
    }
}

/// `from` creates a needs document holding one need titled `title`; waits
/// (20 s at most, naming `what`) until `to` holds it; returns its id.
pub async fn need_reaches(from: &Node, to: &Node, title: &str, what: &str) -> DocId {
    let doc = create_doc(from).await;
    add_need(from, doc, "n1", title).await;
    until(20, what, || async {
        titles(to, doc).await == vec![title.to_owned()]
    })
    .await;
    doc
}

/// Creates a needs document of the node's unit; returns its id.
pub async fn create_doc(node: &Node) -> DocId {
    node.write(|r| {
        let d = r.create_document(DocType::Needs, now()).unwrap();
        (d, vec![d])
    })
    .await
    .unwrap()
}

/// Adds a need titled `title` to `doc`.
pub async fn add_need(node: &Node, doc: DocId, id: &str, title: &str) {
    let (id, title) = (id.to_owned(), title.to_owned());
    node.write(move |r| {
        let t = now();
        let fields = ItemFields {
            title: Some(title),
            category: Some("助老".into()),
            ..ItemFields::default()
        };
        r.local_change(&doc, t, |am| {
            ListDoc::new(am, ListKind::Need).add(&id, &fields, t as i64)
        })
        .unwrap();
        ((), vec![doc])
    })
    .await
    .unwrap()
}

/// Every document a node holds, with its heads.
pub async fn holdings(node: &Node) -> BTreeMap<DocId, Vec<Hash>> {
    node.call(|a| {
        a.replica()
            .store()
            .docs()
            .unwrap()
            .into_iter()
            .map(|(d, m)| (d, m.heads))
            .collect()
    })
    .await
    .unwrap()
}

/// Whether unit `viewer` may see `doc`, as node `judge` knows the tree.
pub async fn may_see(judge: &Node, viewer: UnitId, doc: DocId) -> bool {
    judge
        .call(move |a| a.replica().trust().may_see(&viewer, &doc))
        .await
        .unwrap()
}

/// Whether `judge` holds a valid certificate of every unit of `units`:
/// only then does its [`may_see`] say what the whole tree says (a unit
/// whose certificate has not reached it yet is below nobody).
pub async fn knows_units(judge: &Node, units: Vec<UnitId>) -> bool {
    judge
        .call(move |a| units.iter().all(|u| a.replica().trust().unit(u).is_some()))
        .await
        .unwrap()
}

/// Titles of the needs in `doc` as `node` holds them.
pub async fn titles(node: &Node, doc: DocId) -> Vec<String> {
    node.call(move |a| {
        let Ok(mut am) = a.replica().load(&doc) else {
            return vec![];
        };
        let Ok(list) = ListDoc::open(&mut am, DocType::Needs) else {
            return vec![];
        };
        let mut t: Vec<String> = list.list().into_iter().map(|i| i.title).collect();
        t.sort();
        t
    })
    .await
    .unwrap()
}

/// The nodes' logs into the test's captured output, shown if it fails:
/// filtered by `GONGJIAN_LOG`, else the sync's info and everything's
/// warnings.
pub fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GONGJIAN_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,gongjian=info,gongjian_net=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_test_writer()
        .try_init();
}

/// Waits until `cond` holds, polling; panics with `what` after `secs`.
pub async fn until<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A bare libp2p peer holding `secret`: TCP, noise, yamux and raw streams,
/// nothing of the node's (no hello, no limits).
pub fn bare_swarm(secret: &Secret) -> libp2p::Swarm<libp2p_stream::Behaviour> {
    libp2p::SwarmBuilder::with_existing_identity(secret.libp2p_keypair())
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// A [`bare_swarm`] listening on 127.0.0.1, and its address.
pub async fn listening_bare_swarm(
    secret: &Secret,
) -> (libp2p::Swarm<libp2p_stream::Behaviour>, Multiaddr) {
    use futures::StreamExt as _;
    let mut swarm = bare_swarm(secret);
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    loop {
        if let libp2p::swarm::SwarmEvent::NewListenAddr { address, .. } =
            swarm.select_next_some().await
        {
            return (swarm, address);
        }
    }
}

/// A bare libp2p client holding `secret`, connected to `peer`: its stream
/// control, to open raw sync streams and misbehave on them.
pub async fn attacker(
    secret: &Secret,
    peer: libp2p::PeerId,
    addr: Multiaddr,
) -> libp2p_stream::Control {
    use futures::StreamExt as _;
    use libp2p::swarm::dial_opts::DialOpts;
    let mut swarm = bare_swarm(secret);
    swarm
        .dial(DialOpts::peer_id(peer).addresses(vec![addr]).build())
        .unwrap();
    let control = swarm.behaviour().new_control();
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    control
}

/// The sync protocol, for raw streams.
pub fn sync_protocol() -> libp2p::StreamProtocol {
    libp2p::StreamProtocol::new(gongjian_sync::PROTOCOL_ID)
}
