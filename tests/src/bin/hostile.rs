//! A hostile libp2p client against a real node (RELIABILITY.md,
//! `scripts/hostile.sh`). For `--seconds`, all at once:
//!
//! * `--identities N` fresh keys nobody certified, each connecting and
//!   opening more sync streams than allowed, with a hello that announces
//!   60 KiB and stops half way (held until the node times it out), a hello
//!   announcing 4 GiB, or garbage; then again with a new key.
//! * with `--key FILE --unit ID` (a stolen but certified node key the target
//!   holds the certificate of): a session that asks for every record
//!   again and again without ever reading the answers, and one that sends
//!   malformed and forged sync messages;
//! * with `--replay-key FILE --replay-unit ID` (another stolen key): a
//!   session that fetches documents it may see, then sends their (valid,
//!   signed, already held) changes back to the node unasked, over and over.
//! * with `--flood-key FILE --flood-unit ID` (a third stolen key): a session
//!   that offers the documents it may see as if it held more of them, and
//!   answers each `Want` with changes whose dependencies never come: chains
//!   of fresh authors, each missing its first change (the quarantine's
//!   bounds: 100 an author, 1,000 a document).
//! * `--hold N`: N fresh identities nobody certified that connect and hold
//!   their connections without a stream, each replaced by a new identity
//!   when the node closes it (more than its 256 connection slots).
//!
//! Prints one JSON line of what it did.
//!
//! `hostile --target /ip4/127.0.0.1/tcp/4710/p2p/12D3… --seconds 60 --identities 200 [--key F --unit U]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};
use gongjian_identity::{Hash, Secret, UnitId};
use gongjian_net::frame::{read_frame, write_frame};
use gongjian_net::hello::Hello;
use gongjian_sync::{Item, MAX_MESSAGE_BYTES, Message, Mode, Range, SetId, decode, encode};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, StreamProtocol};

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    streams: AtomicU64,
    streams_refused: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
    flood_requests: AtomicU64,
    flood_cut: AtomicU64,
    /// Sessions that sent valid, already held changes back to the node
    /// unasked, and the changes written before the node cut them.
    replay_sessions: AtomicU64,
    replayed_changes: AtomicU64,
    /// Changes with dependencies that never come, sent in answer to the
    /// node's `Want`s, and the documents they went to.
    dangling_changes: AtomicU64,
    dangling_docs: AtomicU64,
    /// Distinct documents flooded.
    dangling_distinct: AtomicU64,
    /// Connections held without a stream, and those the node closed.
    held: AtomicU64,
    held_closed: AtomicU64,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn protocol() -> StreamProtocol {
    StreamProtocol::new(gongjian_sync::PROTOCOL_ID)
}

/// A bare libp2p client holding `secret`: TCP, noise, yamux and raw
/// streams, nothing else; a connection with no stream stays `idle`.
fn client(secret: &Secret, idle: Duration) -> libp2p::Swarm<libp2p_stream::Behaviour> {
    libp2p::SwarmBuilder::with_existing_identity(secret.libp2p_keypair())
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("tcp transport")
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .expect("stream behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build()
}

/// Connects as `secret`; the stream control of the connection and the task
/// driving it (abort it to drop the connection).
fn connect(
    secret: &Secret,
    peer: PeerId,
    addr: &Multiaddr,
) -> (libp2p_stream::Control, tokio::task::JoinHandle<()>) {
    let mut swarm = client(secret, Duration::from_secs(60));
    let _ = swarm.dial(
        DialOpts::peer_id(peer)
            .addresses(vec![addr.clone()])
            .build(),
    );
    let control = swarm.behaviour().new_control();
    let task = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    (control, task)
}

/// One uncertified identity's visit: six streams, each misbehaving in turn.
async fn visit(k: u64, peer: PeerId, addr: Multiaddr, c: Arc<Counts>) {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&k.to_be_bytes());
    seed[8] = 0xa7;
    let secret = Secret::from_seed(seed);
    let (control, task) = connect(&secret, peer, &addr);
    c.connections.fetch_add(1, Ordering::Relaxed);
    let mut held = Vec::new();
    for i in 0..6u64 {
        let mut ctl = control.clone();
        let opened =
            tokio::time::timeout(Duration::from_secs(5), ctl.open_stream(peer, protocol())).await;
        let Ok(Ok(mut s)) = opened else {
            c.streams_refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        c.streams.fetch_add(1, Ordering::Relaxed);
        let sent = match (k + i) % 3 {
            // A hello announcing 60 KiB that stops half way.
            0 => {
                let mut b = (60u32 << 10).to_be_bytes().to_vec();
                b.extend(vec![0x5a; 30 << 10]);
                b
            }
            // A frame announcing 4 GiB.
            1 => vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            // Garbage in a well-formed frame.
            _ => {
                let mut b = 512u32.to_be_bytes().to_vec();
                b.extend((0..512u32).map(|x| (x * 31 + k as u32) as u8));
                b
            }
        };
        if s.write_all(&sent).await.is_ok() && s.flush().await.is_ok() {
            c.frames.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(sent.len() as u64, Ordering::Relaxed);
        }
        held.push(s);
    }
    // Held open until the node's hello timeout cuts them.
    tokio::time::sleep(Duration::from_secs(12)).await;
    drop(held);
    task.abort();
}

/// Connects as the certified `secret` of `unit` and opens a sync stream
/// with its hello sent (an empty chain: the target holds the certificate);
/// `None` if the stream does not open in 5 s.
async fn admitted_stream(
    secret: &Secret,
    unit: UnitId,
    peer: PeerId,
    addr: &Multiaddr,
    c: &Counts,
) -> Option<(libp2p::Stream, tokio::task::JoinHandle<()>)> {
    let (mut control, task) = connect(secret, peer, addr);
    c.connections.fetch_add(1, Ordering::Relaxed);
    match tokio::time::timeout(
        Duration::from_secs(5),
        control.open_stream(peer, protocol()),
    )
    .await
    {
        Ok(Ok(mut s)) => {
            c.streams.fetch_add(1, Ordering::Relaxed);
            let hello = Hello {
                version: gongjian_sync::VERSION,
                unit,
                chain: vec![],
            };
            let _ = write_frame(&mut s, &hello.encode()).await;
            Some((s, task))
        }
        _ => {
            task.abort();
            None
        }
    }
}

/// A reconciliation that lists none of `set`: the node answers with the
/// whole set it may show this peer.
fn list_all(set: SetId) -> Vec<u8> {
    encode(&Message::Reconcile {
        set,
        epoch: 0,
        round: 0,
        salt: [0; 8],
        ranges: vec![Range {
            upper: None,
            mode: Mode::Ids(vec![]),
        }],
    })
}

/// Asks for the whole of `set` (by listing none of it) and returns the items
/// the node lists, from its first answer that lists any (within 10 s).
async fn listed(s: &mut libp2p::Stream, set: SetId) -> Vec<Item> {
    let _ = write_frame(s, &list_all(set)).await;
    let mut keys = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while keys.is_empty() && Instant::now() < deadline {
        let Ok(Ok(Some(f))) =
            tokio::time::timeout(Duration::from_secs(5), read_frame(s, MAX_MESSAGE_BYTES)).await
        else {
            break;
        };
        if let Ok(Message::Reconcile { ranges, .. }) = decode(&f) {
            for r in ranges {
                if let Mode::Diff { items, .. } = r.mode {
                    keys.extend(items);
                }
            }
        }
    }
    keys
}

/// A certified session that asks for every record, over and over, and
/// never reads what comes back.
async fn never_reads(
    secret: Secret,
    unit: UnitId,
    peer: PeerId,
    addr: Multiaddr,
    c: Arc<Counts>,
    until: Instant,
) {
    while Instant::now() < until {
        let Some((mut s, task)) = admitted_stream(&secret, unit, peer, &addr, &c).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        // Learn the record hashes once (reading this much), by listing none.
        let mut hashes: Vec<Hash> = listed(&mut s, SetId::Records)
            .await
            .iter()
            .map(Item::record_hash)
            .collect();
        hashes.truncate(4096);
        if hashes.is_empty() {
            task.abort();
            continue;
        }
        let ask = encode(&Message::WantRecords { hashes });
        loop {
            if Instant::now() > until {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(60), write_frame(&mut s, &ask)).await {
                Ok(Ok(())) => {
                    c.flood_requests.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    c.flood_cut.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        task.abort();
    }
}

/// A certified session that fetches the documents it may see, then sends
/// their changes back again and again: valid, signed, already held
/// (replayed), while a reader drains whatever the node answers.
async fn replays_held(
    secret: Secret,
    unit: UnitId,
    peer: PeerId,
    addr: Multiaddr,
    c: Arc<Counts>,
    until: Instant,
) {
    while Instant::now() < until {
        let Some((mut s, task)) = admitted_stream(&secret, unit, peer, &addr, &c).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        for item in listed(&mut s, SetId::Docs).await.into_iter().take(64) {
            let want = Message::Want {
                doc: gongjian_identity::DocId(Hash(item.key)),
                have: vec![],
            };
            let _ = write_frame(&mut s, &encode(&want)).await;
        }
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && frames.len() < 64 {
            // Once answers flow, a second of quiet ends the fetching: the
            // replay starts before this key's other sessions get it cut.
            let wait = if frames.is_empty() { 5 } else { 1 };
            let Ok(Ok(Some(f))) = tokio::time::timeout(
                Duration::from_secs(wait),
                read_frame(&mut s, MAX_MESSAGE_BYTES),
            )
            .await
            else {
                break;
            };
            if let Ok(Message::Changes { changes, .. }) = decode(&f)
                && !changes.is_empty()
            {
                frames.push(f);
            }
        }
        if frames.is_empty() {
            task.abort();
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        c.replay_sessions.fetch_add(1, Ordering::Relaxed);
        let (mut r, mut w) = s.split();
        let drain = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 << 10];
            while let Ok(k) = r.read(&mut buf).await {
                if k == 0 {
                    break;
                }
            }
        });
        'replay: while Instant::now() < until {
            for f in &frames {
                let sent =
                    tokio::time::timeout(Duration::from_secs(30), write_frame(&mut w, f)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    if std::env::var_os("HOSTILE_DEBUG").is_some() {
                        eprintln!("replay: write ended: {sent:?}");
                    }
                    break 'replay;
                }
                if let Ok(Message::Changes { changes, .. }) = decode(f) {
                    c.replayed_changes
                        .fetch_add(changes.len() as u64, Ordering::Relaxed);
                }
            }
        }
        drain.abort();
        task.abort();
    }
}

/// Connects fresh identities nobody certified, one after another, each
/// holding its connection without opening a stream until the node closes it.
async fn holds(slot: u64, peer: PeerId, addr: Multiaddr, c: Arc<Counts>, until: Instant) {
    use libp2p::swarm::SwarmEvent;
    let mut k = 0u64;
    while Instant::now() < until {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&slot.to_be_bytes());
        seed[8..16].copy_from_slice(&k.to_be_bytes());
        seed[16] = 0x4d;
        k += 1;
        let mut swarm = client(&Secret::from_seed(seed), Duration::from_secs(600));
        if swarm
            .dial(
                DialOpts::peer_id(peer)
                    .addresses(vec![addr.clone()])
                    .build(),
            )
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let end = tokio::time::Instant::from_std(until);
        loop {
            match tokio::time::timeout_at(end, swarm.select_next_some()).await {
                Ok(SwarmEvent::ConnectionEstablished { .. }) => {
                    c.held.fetch_add(1, Ordering::Relaxed);
                }
                Ok(SwarmEvent::ConnectionClosed { .. }) => {
                    c.held_closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(SwarmEvent::OutgoingConnectionError { .. }) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

/// `n` changes of `doc` by `author` (as actor epoch `epoch`), the first
/// left out: each of the rest waits for it, and it never comes.
fn dangling_chain(
    doc: gongjian_identity::DocId,
    author: &Secret,
    epoch: u32,
    n: usize,
) -> Vec<Vec<u8>> {
    use automerge::transaction::Transactable as _;
    let actor = gongjian_identity::ActorId {
        key: author.public(),
        epoch,
    };
    let mut am = automerge::Automerge::new().with_actor(automerge::ActorId::from(actor.to_bytes()));
    let mut out = Vec::with_capacity(n);
    for i in 0..=n {
        let mut tx = am.transaction();
        tx.put(automerge::ROOT, "flood", i as i64).expect("put");
        tx.commit();
        if i == 0 {
            continue; // the missing first change
        }
        let chunk = am
            .get_last_local_change()
            .expect("a change")
            .raw_bytes()
            .to_vec();
        let signed = gongjian_identity::SignedChange::sign(doc, chunk, author).expect("sign");
        out.push(signed.encode_compact());
    }
    out
}

/// A certified session that offers the documents it may see as if it held
/// more of each, and answers each `Want` with 220 changes of its own key
/// (two actor epochs) whose dependencies never come. Only a known author's
/// changes can wait in quarantine (an unknown key's are refused outright),
/// at most 100 of one author's in a document.
async fn dangles(
    secret: Secret,
    unit: UnitId,
    peer: PeerId,
    addr: Multiaddr,
    c: Arc<Counts>,
    until: Instant,
) {
    let mut round = 0u64;
    let mut flooded = std::collections::BTreeSet::new();
    while Instant::now() < until {
        let Some((mut s, task)) = admitted_stream(&secret, unit, peer, &addr, &c).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let docs: Vec<gongjian_identity::DocId> = listed(&mut s, SetId::Docs)
            .await
            .into_iter()
            .map(|i| gongjian_identity::DocId(Hash(i.key)))
            .collect();
        let debug = std::env::var_os("HOSTILE_DEBUG").is_some();
        if debug {
            eprintln!("dangles: {} documents listed", docs.len());
        }
        'docs: for doc in docs.into_iter().take(16) {
            if Instant::now() > until {
                break;
            }
            round += 1;
            // Claims more changes than the node holds, so it asks.
            let offer = Message::Reconcile {
                set: SetId::Docs,
                epoch: round as u32,
                round: 0,
                salt: [0; 8],
                ranges: vec![Range {
                    upper: None,
                    mode: Mode::Items(vec![gongjian_sync::Item::doc(
                        &doc,
                        &[Hash([round as u8; 32])],
                        u64::MAX,
                    )]),
                }],
            };
            if write_frame(&mut s, &encode(&offer)).await.is_err() {
                break;
            }
            let wanted = async {
                loop {
                    match read_frame(&mut s, MAX_MESSAGE_BYTES).await {
                        Ok(Some(f)) => {
                            if let Ok(Message::Want { doc: d, .. }) = decode(&f)
                                && d == doc
                            {
                                return true;
                            }
                        }
                        _ => return false,
                    }
                }
            };
            let w = tokio::time::timeout(Duration::from_secs(10), wanted).await;
            if debug {
                eprintln!("dangles: offer of {doc}: want {w:?}");
            }
            if !matches!(w, Ok(true)) {
                continue;
            }
            let mut changes = Vec::new();
            for e in 0..2u32 {
                changes.extend(dangling_chain(
                    doc,
                    &secret,
                    1000 + 2 * round as u32 + e,
                    110,
                ));
            }
            let n = changes.len();
            let bytes: usize = changes.iter().map(Vec::len).sum();
            let coming = Message::Coming {
                doc,
                changes: n as u64,
                bytes: bytes as u64,
                complete: true,
            };
            if write_frame(&mut s, &encode(&coming)).await.is_err() {
                break;
            }
            for (i, chunk) in changes.chunks(256).enumerate() {
                let m = Message::Changes {
                    doc,
                    changes: chunk.to_vec(),
                    last: (i + 1) * 256 >= n,
                };
                if write_frame(&mut s, &encode(&m)).await.is_err() {
                    break 'docs;
                }
                c.dangling_changes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            c.dangling_docs.fetch_add(1, Ordering::Relaxed);
            flooded.insert(doc);
            c.dangling_distinct
                .fetch_max(flooded.len() as u64, Ordering::Relaxed);
            // Read whatever the node answers until it is quiet for a
            // second: the changes are in and judged before the next offer
            // (or before this connection is dropped).
            while let Ok(Ok(Some(_))) = tokio::time::timeout(
                Duration::from_secs(1),
                read_frame(&mut s, MAX_MESSAGE_BYTES),
            )
            .await
            {}
        }
        task.abort();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A certified session sending malformed and forged messages.
async fn garbage_member(
    secret: Secret,
    unit: UnitId,
    peer: PeerId,
    addr: Multiaddr,
    c: Arc<Counts>,
    until: Instant,
) {
    let mut n = 0u32;
    while Instant::now() < until {
        if let Some((mut s, task)) = admitted_stream(&secret, unit, peer, &addr, &c).await {
            for _ in 0..40 {
                n += 1;
                let junk: Vec<u8> = match n % 3 {
                    0 => vec![gongjian_sync::VERSION, 0xee, 0xee],
                    1 => encode(&Message::Changes {
                        doc: gongjian_identity::DocId(Hash([n as u8; 32])),
                        changes: vec![vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3]],
                        last: true,
                    }),
                    _ => encode(&Message::Records {
                        records: vec![vec![1, 1, 1, 9, 9, 9]],
                    }),
                };
                if write_frame(&mut s, &junk).await.is_err() {
                    break;
                }
                c.frames.fetch_add(1, Ordering::Relaxed);
            }
            // Drain whatever comes until the node closes the stream.
            let mut buf = vec![0u8; 64 << 10];
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Ok(k) = s.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                }
            })
            .await;
            task.abort();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target: Multiaddr = arg(&args, "--target")
        .expect("--target MULTIADDR/p2p/PEER")
        .parse()
        .expect("--target: not a multiaddr");
    let peer = target
        .iter()
        .find_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        })
        .expect("--target must end with /p2p/PEER_ID");
    let addr: Multiaddr = target
        .iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect();
    let seconds: u64 = arg(&args, "--seconds").map_or(60, |s| s.parse().expect("--seconds"));
    let identities: u64 =
        arg(&args, "--identities").map_or(200, |s| s.parse().expect("--identities"));
    let until = Instant::now() + Duration::from_secs(seconds);
    let counts = Arc::new(Counts::default());
    let mut tasks = Vec::new();
    // A stolen certified key: its file and the unit it is certified for.
    let stolen = |key: &str, unit: &str| -> Option<(Secret, UnitId)> {
        let (k, u) = (arg(&args, key)?, arg(&args, unit)?);
        let secret = gongjian_identity::read_secret(std::path::Path::new(&k))
            .unwrap_or_else(|e| panic!("{key}: not a node key file: {e}"));
        Some((secret, u.parse().unwrap_or_else(|e| panic!("{unit}: {e}"))))
    };
    let c = || (peer, addr.clone(), counts.clone(), until);
    if let Some((secret, unit)) = stolen("--key", "--unit") {
        let (p, a, n, u) = c();
        tasks.push(tokio::spawn(never_reads(secret.clone(), unit, p, a, n, u)));
        let (p, a, n, u) = c();
        tasks.push(tokio::spawn(garbage_member(secret, unit, p, a, n, u)));
    }
    // Each further stolen key on a key of its own, so the penalties the
    // first key earns do not cut its connections: one replays held changes,
    // one floods changes whose dependencies never come.
    if let Some((secret, unit)) = stolen("--replay-key", "--replay-unit") {
        let (p, a, n, u) = c();
        tasks.push(tokio::spawn(replays_held(secret, unit, p, a, n, u)));
    }
    if let Some((secret, unit)) = stolen("--flood-key", "--flood-unit") {
        let (p, a, n, u) = c();
        tasks.push(tokio::spawn(dangles(secret, unit, p, a, n, u)));
    }
    let hold: u64 = arg(&args, "--hold").map_or(0, |s| s.parse().expect("--hold"));
    for slot in 0..hold {
        tasks.push(tokio::spawn(holds(
            slot,
            peer,
            addr.clone(),
            counts.clone(),
            until,
        )));
    }
    // Uncertified visitors: a new one every interval, spread over the run.
    let every = Duration::from_secs_f64(seconds as f64 / identities.max(1) as f64);
    let mut k = 0u64;
    while Instant::now() < until && k < identities {
        tasks.push(tokio::spawn(visit(k, peer, addr.clone(), counts.clone())));
        k += 1;
        tokio::time::sleep(every).await;
    }
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    for t in &tasks {
        t.abort();
    }
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "identities": k,
            "connections": g(&counts.connections),
            "streams": g(&counts.streams),
            "streams_refused": g(&counts.streams_refused),
            "frames": g(&counts.frames),
            "bytes": g(&counts.bytes),
            "flood_requests": g(&counts.flood_requests),
            "flood_cut": g(&counts.flood_cut),
            "replay_sessions": g(&counts.replay_sessions),
            "replayed_changes": g(&counts.replayed_changes),
            "dangling_changes": g(&counts.dangling_changes),
            "dangling_docs": g(&counts.dangling_docs),
            "dangling_distinct_docs": g(&counts.dangling_distinct),
            "held_connections": g(&counts.held),
            "held_closed": g(&counts.held_closed),
        })
    );
}
