//! Peers pushing past the node's limits over real libp2p connections: many
//! identities announcing oversized hellos, a member opening more sync
//! streams than allowed, and a member that asks for everything without
//! ever reading the answers. The node refuses and penalises each, cuts the
//! peer that does not read, and an honest community keeps syncing
//! meanwhile. And two honest nodes that each hold much the other lacks,
//! with a tiny read pause mark: requests wait while answers flow, and
//! neither is cut.

mod common;

use std::time::Duration;

use common::*;
use futures::AsyncWriteExt as _;
use gongjian_identity::{Hash, Secret, SignedRecord};
use gongjian_net::frame::write_frame;
use gongjian_net::hello::Hello;
use gongjian_sync::{Message, encode};

fn hello_of(fed: &Fed, i: usize) -> Vec<u8> {
    Hello {
        version: gongjian_sync::VERSION,
        unit: fed.members[i].unit,
        chain: fed.chain(i).iter().map(SignedRecord::encode).collect(),
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_past_the_limits_are_cut_and_honest_sync_goes_on() {
    logs();
    let fed = fed(61);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // Small marks so a test can reach them: a peer is not read while 64 KiB
    // wait for it, and a frame it does not take in 2 s cuts it.
    let street = fed
        .start_with(STREET, dirs[0].path(), vec![], |c| {
            c.read_pause_bytes = 64 << 10;
            c.write_grace = Duration::from_secs(2);
        })
        .await;
    let addr = street.listen_addrs().await[0].clone();
    let sid = street.peer_id();
    let community = fed
        .start(COMMUNITY_A, dirs[1].path(), vec![addr.clone()])
        .await;
    let doc = need_reaches(&community, &street, "助老服务", "the first sync").await;

    // 1. Twenty identities nobody certified, each announcing a 1 MiB hello:
    // refused at the length, before any of it is read.
    let mut held = Vec::new();
    for k in 0..20u8 {
        let secret = Secret::from_seed([100 + k; 32]);
        let mut s = attacker(&secret, sid, addr.clone())
            .await
            .open_stream(sid, sync_protocol())
            .await
            .unwrap();
        s.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
        s.write_all(&[7u8; 1000]).await.unwrap();
        s.flush().await.unwrap();
        held.push(s);
        // libp2p-stream hands inbound streams over through a queue of one
        // and drops those that find it full: a pause between streams, so
        // what is tested is the node's own limits.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until(20, "twenty oversized hellos refused", || async {
        street.status().misbehaviour >= 20
    })
    .await;
    let refused = street
        .status()
        .peers
        .values()
        .filter(|p| {
            p.last_misbehaviour
                .as_deref()
                .is_some_and(|r| r.contains("over the 65536-byte cap"))
        })
        .count();
    assert_eq!(refused, 20, "each oversized hello named");

    // 2. A certified member opening six sync streams on one connection:
    // past the fourth it is penalised and cut.
    let resident = fed.members[RESIDENT].secret.clone();
    let control = attacker(&resident, sid, addr.clone()).await;
    let before = street.status().misbehaviour;
    for _ in 0..6 {
        let mut c = control.clone();
        if let Ok(mut s) = c.open_stream(sid, sync_protocol()).await {
            let _ = write_frame(&mut s, &hello_of(&fed, RESIDENT)).await;
            held.push(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until(20, "too many streams penalised", || async {
        street.status().misbehaviour > before
    })
    .await;
    let rid = libp2p::PeerId::from(resident.libp2p_keypair().public());
    assert_eq!(
        street.status().peers[&rid].last_misbehaviour.as_deref(),
        Some("more than 4 sync streams")
    );

    // 3. A certified member that asks for every record again and again and
    // never reads: the street stops reading it once the answers pile up,
    // then cuts it when a frame is not taken.
    let district = fed.members[DISTRICT].secret.clone();
    let did = libp2p::PeerId::from(district.libp2p_keypair().public());
    let mut s = attacker(&district, sid, addr.clone())
        .await
        .open_stream(sid, sync_protocol())
        .await
        .unwrap();
    write_frame(&mut s, &hello_of(&fed, DISTRICT))
        .await
        .unwrap();
    until(10, "the district admitted", || async {
        street
            .status()
            .peers
            .get(&did)
            .is_some_and(|p| p.unit.is_some())
    })
    .await;
    let hashes: Vec<Hash> = fed
        .members
        .iter()
        .map(|m| m.cert.hash())
        .chain(std::iter::once(Hash(*doc.as_bytes())))
        .collect();
    let ask = encode(&Message::WantRecords { hashes });
    let before = street.status().misbehaviour;
    let flood = tokio::spawn(async move {
        // Answers of a few KiB each: thousands of them fill any window.
        for _ in 0..20_000 {
            if write_frame(&mut s, &ask).await.is_err() {
                return true; // the street stopped reading, then cut us
            }
        }
        // The street takes requests in (and holds them) while its answers
        // wait: the stream stays open, unread, until the street cuts it.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(s);
        false
    });
    until(30, "the peer that does not read penalised", || async {
        street.status().misbehaviour > before
    })
    .await;
    until(10, "the peer that does not read disconnected", || async {
        !street.status().peers.get(&did).is_some_and(|p| p.connected)
    })
    .await;
    let why = street.status().peers[&did].last_misbehaviour.clone();
    assert!(
        why.as_deref()
            .is_some_and(|w| w.starts_with("does not read")),
        "{why:?}"
    );
    flood.abort();

    // Meanwhile and after, the honest community syncs as before.
    add_need(&community, doc, "n2", "防汛值守").await;
    until(20, "the next sync", || async {
        titles(&street, doc).await.len() == 2
    })
    .await;
    let st = street.status();
    let honest = community.peer_id();
    assert_eq!(
        st.peers.get(&honest).map(|p| p.misbehaviour),
        Some(0),
        "the honest community is never penalised"
    );
    drop(held);
    community.shutdown().await.unwrap();
    street.shutdown().await.unwrap();
}

/// Writes `docs` needs documents of `count` needs each straight into
/// member `i`'s store (the node not running).
fn fill(fed: &Fed, i: usize, dir: &std::path::Path, docs: usize, count: usize) {
    use gongjian_identity::DocType;
    use gongjian_model::{ItemFields, ListDoc, ListKind};
    let mut r = fed.replica(i, dir);
    for d in 0..docs {
        let t = now();
        // A genesis per creation time: distinct documents.
        let doc = r.create_document(DocType::Needs, t + d as u64).unwrap();
        for n in 0..count {
            let fields = ItemFields {
                title: Some(format!(
                    "{}第{d}号文档第{n}条需求：助老助餐上门服务",
                    fed.members[i].name
                )),
                category: Some("助老".into()),
                ..ItemFields::default()
            };
            r.local_change(&doc, t, |am| {
                ListDoc::new(am, ListKind::Need).add(&format!("n{n}"), &fields, t as i64)
            })
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sending_each_other_much_never_both_stop_reading() {
    logs();
    // Each holds far more the other lacks than the read pause mark (16 KiB
    // here): requests wait on both sides while answers flow, and neither
    // is cut for not reading.
    let fed = fed(62);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (f, paths) = (
        fed.clone(),
        [dirs[0].path().to_owned(), dirs[1].path().to_owned()],
    );
    tokio::task::spawn_blocking(move || {
        fill(&f, STREET, &paths[0], 100, 16);
        fill(&f, COMMUNITY_A, &paths[1], 100, 16);
    })
    .await
    .unwrap();
    let tight = |c: &mut gongjian_net::NetConfig| {
        c.read_pause_bytes = 16 << 10;
        c.write_grace = Duration::from_secs(5);
    };
    let street = fed.start_with(STREET, dirs[0].path(), vec![], tight).await;
    let addr = street.listen_addrs().await[0].clone();
    let community = fed
        .start_with(COMMUNITY_A, dirs[1].path(), vec![addr], tight)
        .await;
    until(90, "both hold all 200 documents alike", || async {
        let (a, b) = (holdings(&street).await, holdings(&community).await);
        a.len() >= 200 && a == b
    })
    .await;
    assert_eq!(
        street.status().misbehaviour,
        0,
        "{:?}",
        street.status().peers
    );
    assert_eq!(
        community.status().misbehaviour,
        0,
        "{:?}",
        community.status().peers
    );
    community.shutdown().await.unwrap();
    street.shutdown().await.unwrap();
}

/// Connects `n` fresh identities nobody certified to `peer`, each holding
/// its connection open without ever opening a stream.
async fn strangers(
    seed: u8,
    n: u8,
    peer: libp2p::PeerId,
    addr: &libp2p::Multiaddr,
) -> Vec<libp2p_stream::Control> {
    let mut held = Vec::new();
    for k in 0..n {
        let mut s = [seed; 32];
        s[1] = k;
        held.push(attacker(&Secret::from_seed(s), peer, addr.clone()).await);
    }
    held
}

/// Counts the street's connected peers it never admitted.
fn connected_strangers(node: &gongjian_net::Node) -> usize {
    node.status()
        .peers
        .values()
        .filter(|p| p.connected && p.unit.is_none())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_nobody_certified_cannot_hold_the_connection_slots() {
    logs();
    // 16 inbound connections at most, of which 4 not yet admitted; a peer
    // has 60 s to be admitted, so what bounds the strangers here is the
    // eviction alone. Without it 30 strangers holding idle connections
    // would fill every slot and the community could not connect.
    let fed = fed(63);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let street = fed
        .start_with(STREET, dirs[0].path(), vec![], |c| {
            c.max_connections = 16;
            c.max_unadmitted = 4;
            c.hello_timeout = Duration::from_secs(60);
        })
        .await;
    let addr = street.listen_addrs().await[0].clone();
    let sid = street.peer_id();
    let first = strangers(201, 30, sid, &addr).await;
    // (Some of the 30 may be refused at the 16-connection limit while
    // evicted ones are still closing: they never count as established.)
    until(10, "the strangers evicted down to the bound", || async {
        street.status().unadmitted_closed >= 10 && connected_strangers(&street) <= 4
    })
    .await;
    let first_wave = street.status().unadmitted_closed;

    // The community connects meanwhile and syncs.
    let community = fed
        .start(COMMUNITY_A, dirs[1].path(), vec![addr.clone()])
        .await;
    let doc = need_reaches(
        &community,
        &street,
        "助老服务",
        "the community's sync past the strangers",
    )
    .await;

    // A second wave while the community is admitted: its connection is
    // never evicted, and it keeps syncing.
    let second = strangers(202, 30, sid, &addr).await;
    add_need(&community, doc, "n2", "防汛值守").await;
    until(20, "the next sync during the second wave", || async {
        titles(&street, doc).await.len() == 2
    })
    .await;
    until(10, "the second wave evicted down to the bound", || async {
        connected_strangers(&street) <= 4
    })
    .await;
    let st = street.status();
    assert!(
        st.unadmitted_closed >= first_wave + 10,
        "{} after {first_wave}",
        st.unadmitted_closed
    );
    let honest = community.peer_id();
    assert!(st.peers[&honest].connected, "the community stays connected");
    assert_eq!(st.peers[&honest].misbehaviour, 0);
    drop((first, second));
    community.shutdown().await.unwrap();
    street.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_stream_the_peer_dropped_is_opened_again() {
    logs();
    // A bare libp2p peer the community dials: it takes the community's
    // sync stream and drops it, keeping the connection (as libp2p-stream
    // does with an inbound stream that finds its queue full). The
    // community must open another rather than sit unsynced until the
    // connection idles out.
    use futures::StreamExt as _;
    let fed = fed(64);
    let dir = tempfile::tempdir().unwrap();
    let (mut swarm, addr) = listening_bare_swarm(&Secret::from_seed([77; 32])).await;
    let mut incoming = swarm
        .behaviour()
        .new_control()
        .accept(sync_protocol())
        .unwrap();
    let driver = tokio::spawn(async move {
        let mut closed = 0u32;
        loop {
            if let libp2p::swarm::SwarmEvent::ConnectionClosed { .. } =
                swarm.select_next_some().await
            {
                closed += 1;
                assert_eq!(closed, 0, "the community kept its connection");
            }
        }
    });
    let community = fed.start(COMMUNITY_A, dir.path(), vec![addr]).await;
    let (_, first) = tokio::time::timeout(Duration::from_secs(10), incoming.next())
        .await
        .expect("the first sync stream")
        .unwrap();
    drop(first);
    let (peer, _second) = tokio::time::timeout(Duration::from_secs(5), incoming.next())
        .await
        .expect("another sync stream after the first was dropped")
        .unwrap();
    assert_eq!(peer, community.peer_id());
    assert!(!driver.is_finished(), "the connection stayed");
    driver.abort();
    community.shutdown().await.unwrap();
}

/// A peer that does not speak the sync protocol (a misconfigured bootstrap
/// address): the community's sync stream fails to open, and it cuts the
/// connection rather than hold it unsynced until it idles out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_sync_protocol_is_cut() {
    logs();
    use futures::StreamExt as _;
    let fed = fed(65);
    let dir = tempfile::tempdir().unwrap();
    let (mut swarm, addr) = listening_bare_swarm(&Secret::from_seed([78; 32])).await;
    let community = fed.start(COMMUNITY_A, dir.path(), vec![addr]).await;
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        let mut established = false;
        loop {
            match swarm.select_next_some().await {
                libp2p::swarm::SwarmEvent::ConnectionEstablished { .. } => established = true,
                libp2p::swarm::SwarmEvent::ConnectionClosed { peer_id, .. } if established => {
                    break peer_id;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the community kept a connection it cannot sync on");
    assert_eq!(closed, community.peer_id());
    community.shutdown().await.unwrap();
}

/// Keeps `n` TCP connections from `from` to `to` open without sending a
/// byte of handshake, opening another whenever the node closes one (each
/// waits out the handshake timeout there, or is refused), until aborted.
fn silent_flood(
    from: std::net::IpAddr,
    to: std::net::SocketAddr,
    n: usize,
    opened: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut held: Vec<tokio::net::TcpStream> = Vec::new();
        loop {
            held.retain(|s| {
                let mut b = [0u8; 1];
                matches!(s.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            });
            while held.len() < n {
                let sock = tokio::net::TcpSocket::new_v4().unwrap();
                sock.bind(std::net::SocketAddr::new(from, 0)).unwrap();
                match sock.connect(to).await {
                    Ok(s) => {
                        held.push(s);
                        opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// One host opening connections and never completing their handshake
/// holds at most its address's share of the 64 handshake slots: a member
/// connecting from another address meanwhile gets in and syncs. (Without
/// the share, the flood holds every slot, refilled as each times out.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_handshake_slot() {
    logs();
    let fed = fed(64);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let street = fed
        .start_with(STREET, dirs[0].path(), vec![], |c| {
            c.max_handshakes_per_ip = 8;
        })
        .await;
    let addr = street.listen_addrs().await[0].clone();
    let port = addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    // From 127.0.0.2; the community comes from 127.0.0.1.
    let opened = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood = silent_flood(
        "127.0.0.2".parse().unwrap(),
        ([127, 0, 0, 1], port).into(),
        100,
        opened.clone(),
    );
    until(10, "the flood under way", || async {
        opened.load(std::sync::atomic::Ordering::Relaxed) >= 200
    })
    .await;
    let community = fed
        .start(COMMUNITY_A, dirs[1].path(), vec![addr.clone()])
        .await;
    need_reaches(
        &community,
        &street,
        "助老服务",
        "the community's sync past the flood",
    )
    .await;
    assert!(!flood.is_finished(), "the flood ran throughout");
    assert!(
        street.status().handshakes_refused > 100,
        "refused past its share"
    );
    flood.abort();
    community.shutdown().await.unwrap();
    street.shutdown().await.unwrap();
}
