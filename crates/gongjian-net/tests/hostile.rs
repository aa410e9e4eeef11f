//! A hostile peer over a real libp2p connection: garbage, a frame
//! announcing a huge length, a forged change, a change replayed into
//! another document, and a peer without a certificate. Each is refused,
//! nothing is stored, the sender is penalised.

mod common;

use std::time::Duration;

use common::*;
use futures::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};
use gongjian_identity::{DocId, Secret, SignedChange, SignedRecord};
use gongjian_net::frame::{read_frame, write_frame};
use gongjian_net::hello::Hello;
use gongjian_sync::{Item, MAX_MESSAGE_BYTES, Message, Mode, Range, SetId, decode, encode};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol, noise, tcp, yamux};

/// Opens a raw sync stream to `peer` as the holder of `secret`.
async fn raw_stream(secret: &Secret, peer: PeerId, addr: Multiaddr) -> Stream {
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(secret.libp2p_keypair())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm
        .dial(DialOpts::peer_id(peer).addresses(vec![addr]).build())
        .unwrap();
    let mut control = swarm.behaviour().new_control();
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    control
        .open_stream(peer, StreamProtocol::new(gongjian_sync::PROTOCOL_ID))
        .await
        .unwrap()
}

async fn penalties(node: &gongjian_net::Node, at_least: u64) {
    until(20, &format!("{at_least} penalties"), || async {
        node.status().misbehaviour >= at_least
    })
    .await;
}

/// Reads frames until a `Want` arrives.
async fn await_want(s: &mut Stream) -> DocId {
    loop {
        let f = tokio::time::timeout(Duration::from_secs(20), read_frame(s, MAX_MESSAGE_BYTES))
            .await
            .expect("a want in time")
            .unwrap()
            .expect("stream open");
        if let Ok(Message::Want { doc, .. }) = decode(&f) {
            return doc;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_are_refused_and_penalised() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("GONGJIAN_LOG"))
        .with_test_writer()
        .try_init();
    let fed = fed(60);
    let dir = tempfile::tempdir().unwrap();
    let street = fed.start(STREET, dir.path(), vec![]).await;
    let addr = street.listen_addrs().await[0].clone();
    let street_id = street.peer_id();
    let doc = create_doc(&street).await;
    add_need(&street, doc, "n1", "防汛物资").await;
    // Another document (two of one type made in the same second by the
    // same key would share their genesis, hence their id).
    let other = street
        .write(|r| {
            let t = now();
            let d = r
                .create_document(gongjian_identity::DocType::Resources, t)
                .unwrap();
            let fields = gongjian_model::ItemFields {
                title: Some("会议室".into()),
                ..Default::default()
            };
            r.local_change(&d, t, |am| {
                gongjian_model::ListDoc::new(am, gongjian_model::ListKind::Resource)
                    .add("r1", &fields, t as i64)
            })
            .unwrap();
            (d, vec![d])
        })
        .await
        .unwrap();
    assert_ne!(other, doc);
    let before = holdings(&street).await;
    let (good, foreign): (SignedChange, SignedChange) = street
        .call(move |a| {
            let s = a.replica().store();
            (
                s.doc_changes(&doc).unwrap()[0].clone(),
                s.doc_changes(&other).unwrap()[0].clone(),
            )
        })
        .await
        .unwrap();

    // A certified community (signed by the street) turns hostile.
    let a = &fed.members[COMMUNITY_A];
    let mut s = raw_stream(&a.secret, street_id, addr.clone()).await;
    let first = read_frame(&mut s, MAX_MESSAGE_BYTES)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Hello::decode(&first).unwrap().unit,
        fed.members[STREET].unit
    );
    let hello = Hello {
        version: gongjian_sync::VERSION,
        unit: a.unit,
        chain: fed
            .chain(COMMUNITY_A)
            .iter()
            .map(SignedRecord::encode)
            .collect(),
    };
    write_frame(&mut s, &hello.encode()).await.unwrap();
    until(10, "admission", || async {
        street
            .status()
            .peers
            .values()
            .any(|p| p.unit == Some(a.unit))
    })
    .await;

    // 1. Garbage.
    write_frame(&mut s, b"\x01\xff\xff\xff garbage")
        .await
        .unwrap();
    penalties(&street, 1).await;

    // 2. A forged change: a real change of the street's document with one
    // byte of its content flipped, offered for a state the street lacks.
    let offer = |doc: DocId| Message::Reconcile {
        set: SetId::Docs,
        epoch: 0,
        round: 0,
        ranges: vec![Range {
            upper: None,
            mode: Mode::Items {
                items: vec![Item::doc(&doc, &[gongjian_identity::Hash([9; 32])])],
                reply: false,
            },
        }],
    };
    write_frame(&mut s, &encode(&offer(doc))).await.unwrap();
    assert_eq!(await_want(&mut s).await, doc);
    let mut forged = good.encode();
    let n = forged.len();
    forged[n - 3] ^= 0x40;
    for m in [
        Message::Coming {
            doc,
            changes: 1,
            bytes: n as u64,
            complete: true,
        },
        Message::Changes {
            doc,
            changes: vec![forged],
            last: false,
        },
        // 3. A valid change of another document replayed into this one.
        Message::Changes {
            doc,
            changes: vec![foreign.encode()],
            last: true,
        },
    ] {
        write_frame(&mut s, &encode(&m)).await.unwrap();
    }
    penalties(&street, 3).await;
    assert_eq!(holdings(&street).await, before, "nothing stored");
    let quarantined = street
        .call(move |a| a.replica().store().quarantined(&doc).unwrap().len())
        .await
        .unwrap();
    assert_eq!(quarantined, 0);

    // 4. A frame announcing 4 GiB: refused before reading, connection cut.
    let mut s2 = raw_stream(&a.secret, street_id, addr.clone()).await;
    read_frame(&mut s2, MAX_MESSAGE_BYTES).await.unwrap();
    write_frame(&mut s2, &hello.encode()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let penalised = street.status().misbehaviour;
    s2.write_all(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3])
        .await
        .unwrap();
    s2.flush().await.unwrap();
    penalties(&street, penalised + 1).await;
    let mut rest = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(10), s2.read_to_end(&mut rest)).await;
    assert!(cut.is_ok(), "the node closes the stream");

    // 5. A key with no certificate: refused at the hello, served nothing
    // but the node's own (public) hello.
    let stranger = Secret::from_seed([99; 32]);
    let mut s3 = raw_stream(&stranger, street_id, addr).await;
    read_frame(&mut s3, MAX_MESSAGE_BYTES).await.unwrap();
    let lie = Hello {
        version: gongjian_sync::VERSION,
        unit: a.unit,
        chain: vec![],
    };
    write_frame(&mut s3, &lie.encode()).await.unwrap();
    write_frame(&mut s3, &encode(&offer(doc))).await.unwrap();
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), s3.read_to_end(&mut rest)).await;
    assert!(r.is_ok(), "the node closes the stream");
    assert!(rest.is_empty(), "nothing served to an unadmitted peer");
    assert!(
        !street
            .status()
            .peers
            .values()
            .any(|p| p.key == Some(stranger.public()))
    );
    assert_eq!(holdings(&street).await, before);
    street.shutdown().await.unwrap();
}
