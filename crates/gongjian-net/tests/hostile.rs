//! A hostile peer over a real libp2p connection: garbage, a frame
//! announcing a huge length, a forged change, a change replayed into
//! another document, and a peer without a certificate. Each is refused,
//! nothing is stored, the sender is penalised.

mod common;

use std::time::Duration;

use common::*;
use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use gongjian_identity::{DocId, Secret, SignedChange, SignedRecord};
use gongjian_net::frame::{read_frame, write_frame};
use gongjian_net::hello::Hello;
use gongjian_sync::{Item, MAX_MESSAGE_BYTES, Message, Mode, Range, SetId, decode, encode};
use libp2p::{Multiaddr, PeerId, Stream};

/// Opens a raw sync stream to `peer` as the holder of `secret`.
/// A sync stream to `peer`, opened within 20 s (a hang is a failure that
/// says where, not a test that never ends).
async fn raw_stream(secret: &Secret, peer: PeerId, addr: Multiaddr) -> Stream {
    let mut control = attacker(secret, peer, addr).await;
    tokio::time::timeout(
        Duration::from_secs(20),
        control.open_stream(peer, sync_protocol()),
    )
    .await
    .expect("a sync stream opened in time")
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

/// Member `i`'s hello: its certificate chain to the root.
fn hello_of(fed: &Fed, i: usize) -> Hello {
    Hello {
        version: gongjian_sync::VERSION,
        unit: fed.members[i].unit,
        chain: fed.chain(i).iter().map(SignedRecord::encode).collect(),
    }
}

/// Sends member `i`'s hello on `s` and waits until `node` admitted it.
async fn admit(node: &gongjian_net::Node, s: &mut Stream, fed: &Fed, i: usize) {
    write_frame(s, &hello_of(fed, i).encode()).await.unwrap();
    let unit = fed.members[i].unit;
    until(10, "admission", || async {
        node.status().peers.values().any(|p| p.unit == Some(unit))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_are_refused_and_penalised() {
    logs();
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
    admit(&street, &mut s, &fed, COMMUNITY_A).await;

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
        salt: [0; 8],
        ranges: vec![Range {
            upper: None,
            // Claims more changes than the street holds, so it asks.
            mode: Mode::Items(vec![Item::doc(
                &doc,
                &[gongjian_identity::Hash([9; 32])],
                u64::MAX,
            )]),
        }],
    };
    write_frame(&mut s, &encode(&offer(doc))).await.unwrap();
    assert_eq!(await_want(&mut s).await, doc);
    let mut forged = good.encode_compact();
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
            changes: vec![foreign.encode_compact()],
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
    write_frame(&mut s2, &hello_of(&fed, COMMUNITY_A).encode())
        .await
        .unwrap();
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
    // The node may already have cut the stream after the hello: then this
    // write fails, which is the point.
    let _ = write_frame(&mut s3, &encode(&offer(doc))).await;
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

/// Sends `changes` of `doc` (compact) once the node asks for them (an offer of a
/// state it lacks, then its `Want`).
async fn push(s: &mut Stream, doc: DocId, changes: Vec<Vec<u8>>, salt: u8) {
    let offer = Message::Reconcile {
        set: SetId::Docs,
        epoch: u32::from(salt),
        round: 0,
        salt: [0; 8],
        ranges: vec![Range {
            upper: None,
            // Claims more changes than the street holds, so it asks.
            mode: Mode::Items(vec![Item::doc(
                &doc,
                &[gongjian_identity::Hash([salt; 32])],
                u64::MAX,
            )]),
        }],
    };
    write_frame(s, &encode(&offer)).await.unwrap();
    assert_eq!(await_want(s).await, doc);
    let bytes: usize = changes.iter().map(Vec::len).sum();
    let coming = Message::Coming {
        doc,
        changes: changes.len() as u64,
        bytes: bytes as u64,
        complete: true,
    };
    write_frame(s, &encode(&coming)).await.unwrap();
    let n = changes.len();
    for (i, chunk) in changes.chunks(256).enumerate() {
        let m = Message::Changes {
            doc,
            changes: chunk.to_vec(),
            last: (i + 1) * 256 >= n,
        };
        write_frame(s, &encode(&m)).await.unwrap();
    }
}

async fn quarantined(node: &gongjian_net::Node, doc: DocId) -> Vec<String> {
    node.call(move |a| {
        a.replica()
            .store()
            .quarantined(&doc)
            .unwrap()
            .into_iter()
            .map(|q| q.reason)
            .collect()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_the_peer_may_not_write_and_a_flood_of_unknown_dependencies() {
    logs();
    let fed = fed(61);
    let dir = tempfile::tempdir().unwrap();
    let street = fed.start(STREET, dir.path(), vec![]).await;
    let addr = street.listen_addrs().await[0].clone();
    let doc = create_doc(&street).await;
    add_need(&street, doc, "n1", "防汛物资").await;
    let street_changes: Vec<SignedChange> = street
        .call(move |a| a.replica().store().doc_changes(&doc).unwrap())
        .await
        .unwrap();

    // Community A, offline, writes 300 needs into its own document.
    let a = fed.members[COMMUNITY_A].clone();
    let a_dir = tempfile::tempdir().unwrap();
    let (own, genesis, chain) = {
        let (fed, path) = (fed.clone(), a_dir.path().to_owned());
        tokio::task::spawn_blocking(move || {
            let mut r = fed.replica(COMMUNITY_A, &path);
            let t = now();
            let d = r
                .create_document(gongjian_identity::DocType::Needs, t)
                .unwrap();
            for i in 0..300 {
                let fields = gongjian_model::ItemFields {
                    title: Some(format!("需求 {i}")),
                    ..Default::default()
                };
                r.local_change(&d, t, |am| {
                    gongjian_model::ListDoc::new(am, gongjian_model::ListKind::Need).add(
                        &format!("a{i}"),
                        &fields,
                        t as i64,
                    )
                })
                .unwrap();
            }
            let g = r.store().record(&d.0).unwrap().unwrap();
            let mut chain = r.store().doc_changes(&d).unwrap();
            chain.sort_by_key(|c| c.header().seq);
            (d, g, chain)
        })
        .await
        .unwrap()
    };
    assert_eq!(chain.len(), 300);
    // The street learned A's certificate and genesis from records sync
    // earlier.
    let mut records = fed.chain(COMMUNITY_A);
    records.push(genesis);
    street
        .write(move |r| {
            r.insert_records(records).unwrap();
            ((), vec![])
        })
        .await
        .unwrap();

    let mut s = raw_stream(&a.secret, street.peer_id(), addr).await;
    read_frame(&mut s, MAX_MESSAGE_BYTES).await.unwrap();
    admit(&street, &mut s, &fed, COMMUNITY_A).await;
    let before = holdings(&street).await;

    // 1. A validly signed change by A into the street's document, which A
    // may not write: rejected by the rule, the document unchanged, kept in
    // quarantine as evidence. A relay cannot tell such a change from an
    // honest one, so (DESIGN.md) nobody is penalised for it.
    let mut am = automerge::Automerge::new().with_actor(automerge::ActorId::from(
        gongjian_identity::ActorId {
            key: a.secret.public(),
            epoch: 1,
        }
        .to_bytes(),
    ));
    am.apply_changes(
        street_changes
            .iter()
            .map(|c| automerge::Change::try_from(c.chunk()).unwrap()),
    )
    .unwrap();
    {
        use automerge::transaction::Transactable;
        let mut tx = am.transaction();
        tx.put(automerge::ROOT, "title", "篡改").unwrap();
        tx.commit();
    }
    let chunk = am.get_last_local_change().unwrap().raw_bytes().to_vec();
    let intrusion = SignedChange::sign(doc, chunk, &a.secret).unwrap();
    push(&mut s, doc, vec![intrusion.encode_compact()], 1).await;
    until(20, "the intrusion judged", || async {
        quarantined(&street, doc).await.len() == 1
    })
    .await;
    let reasons = quarantined(&street, doc).await;
    assert!(reasons[0].contains("not a write key"), "{reasons:?}");
    assert_eq!(holdings(&street).await, before, "the document did not move");
    assert_eq!(street.status().misbehaviour, 0);

    // 2. A flood: A's changes 2..=300 without the first. All wait for a
    // dependency that never came; the quarantine keeps 100 of one author
    // and refuses the rest without storing them.
    let flood: Vec<Vec<u8>> = chain[1..]
        .iter()
        .map(SignedChange::encode_compact)
        .collect();
    push(&mut s, own, flood, 2).await;
    until(20, "the flood judged", || async {
        quarantined(&street, own).await.len() == 100
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reasons = quarantined(&street, own).await;
    assert_eq!(reasons.len(), 100, "bounded per author");
    assert!(
        reasons.iter().all(|r| r.starts_with("pending")),
        "{reasons:?}"
    );
    let stats = street
        .call(|a| a.replica().store().stats().unwrap())
        .await
        .unwrap();
    assert_eq!(stats.quarantine, 101, "nothing else of the flood stored");
    assert!(
        holdings(&street).await[&own].is_empty(),
        "no change of the flooded document accepted"
    );
    assert_eq!(
        street.status().misbehaviour,
        0,
        "waiting for dependencies is not misbehaviour"
    );

    // 3. The missing first change arrives: it and the 100 held are
    // accepted, in order; the rest will come by later syncs.
    push(&mut s, own, vec![chain[0].encode_compact()], 3).await;
    until(20, "the held chain accepted", || async {
        quarantined(&street, own).await.is_empty()
    })
    .await;
    let accepted = street
        .call(move |a| {
            a.replica()
                .store()
                .changes_after(&own, &Default::default())
                .unwrap()
                .len()
        })
        .await
        .unwrap();
    assert_eq!(accepted, 101);
    street.shutdown().await.unwrap();
}
