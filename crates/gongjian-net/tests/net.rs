//! Five nodes over real libp2p connections on 127.0.0.1: district, street,
//! two communities, a resident unit. Communities and the resident dial
//! their street hub; the street dials the district.

mod common;

use std::collections::BTreeMap;

use common::*;
use gongjian_identity::{DocId, Hash};
use gongjian_net::Node;

/// Every node holds exactly the documents its unit may see, at the heads
/// their owners hold.
async fn converged(nodes: &[Node], fed: &Fed, owners: &BTreeMap<DocId, usize>) -> bool {
    let mut held = Vec::new();
    for n in nodes {
        held.push(holdings(n).await);
    }
    let units: Vec<_> = fed.members.iter().map(|m| m.unit).collect();
    for (doc, owner) in owners {
        let Some(want) = held[*owner].get(doc) else {
            return false;
        };
        // The owner judges who may see its document once it knows the
        // whole tree; before, a unit it has not yet heard of looks outside
        // every audience.
        if !knows_units(&nodes[*owner], units.clone()).await {
            return false;
        }
        for (i, h) in held.iter().enumerate() {
            let entitled = may_see(&nodes[*owner], fed.members[i].unit, *doc).await;
            match (entitled, h.get(doc)) {
                (true, Some(heads)) if heads == want => {}
                (false, None) => {}
                (false, Some(_)) => panic!(
                    "{} holds {}'s document, outside its audience",
                    fed.members[i].name, fed.members[*owner].name
                ),
                _ => return false,
            }
        }
    }
    true
}

struct Net {
    fed: Fed,
    _dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Node>,
}

async fn five(seed: u8) -> Net {
    let fed = fed(seed);
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let district = fed.start(DISTRICT, dirs[0].path(), vec![]).await;
    let d_addr = district.listen_addrs().await[0].clone();
    let street = fed.start(STREET, dirs[1].path(), vec![d_addr]).await;
    let s_addr = street.listen_addrs().await[0].clone();
    let mut nodes = vec![district, street];
    for i in [COMMUNITY_A, COMMUNITY_B, RESIDENT] {
        nodes.push(fed.start(i, dirs[i].path(), vec![s_addr.clone()]).await);
    }
    Net {
        fed,
        _dirs: dirs,
        nodes,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_converge_partition_heals_and_hub_forwards() {
    logs();
    let Net { fed, _dirs, nodes } = five(40).await;
    // Edits on each node.
    let mut owners: BTreeMap<DocId, usize> = BTreeMap::new();
    let mut docs = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let d = create_doc(n).await;
        add_need(n, d, "n1", &format!("{}：助老送餐", fed.members[i].name)).await;
        owners.insert(d, i);
        docs.push(d);
    }
    until(60, "five nodes converged", || {
        converged(&nodes, &fed, &owners)
    })
    .await;
    // The district sees every unit's need; community B not community A's.
    assert_eq!(
        titles(&nodes[DISTRICT], docs[COMMUNITY_A]).await,
        vec!["颐和路社区：助老送餐"]
    );
    assert_eq!(
        titles(&nodes[DISTRICT], docs[RESIDENT]).await,
        vec!["江苏省人民医院：助老送餐"]
    );
    assert!(
        !holdings(&nodes[COMMUNITY_B])
            .await
            .contains_key(&docs[COMMUNITY_A])
    );
    for n in &nodes {
        assert_eq!(
            n.status().misbehaviour,
            0,
            "honest peers are never penalised"
        );
    }

    // Partition: community A edits while cut off; street and district edit
    // meanwhile; after healing nothing is lost.
    nodes[COMMUNITY_A].set_offline(true);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    add_need(
        &nodes[COMMUNITY_A],
        docs[COMMUNITY_A],
        "n2",
        "离线时登记：独居老人探访",
    )
    .await;
    add_need(&nodes[STREET], docs[STREET], "n2", "街道：防汛物资").await;
    add_need(&nodes[DISTRICT], docs[DISTRICT], "n2", "区：志愿者培训").await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let street_view = holdings(&nodes[STREET]).await;
    let a_view = holdings(&nodes[COMMUNITY_A]).await;
    assert_ne!(
        street_view[&docs[COMMUNITY_A]], a_view[&docs[COMMUNITY_A]],
        "cut off"
    );
    nodes[COMMUNITY_A].set_offline(false);
    until(60, "convergence after the partition", || {
        converged(&nodes, &fed, &owners)
    })
    .await;
    assert_eq!(
        titles(&nodes[DISTRICT], docs[COMMUNITY_A]).await,
        vec!["离线时登记：独居老人探访", "颐和路社区：助老送餐"]
    );
    assert_eq!(
        titles(&nodes[COMMUNITY_A], docs[STREET]).await,
        vec!["宁海路街道：助老送餐", "街道：防汛物资"]
    );
    assert_eq!(
        titles(&nodes[COMMUNITY_A], docs[DISTRICT]).await,
        vec!["区：志愿者培训", "南京市鼓楼区：助老送餐"]
    );

    // Store-and-forward: community B and the district are never online at
    // the same time; the street holds B's edit and hands it on.
    nodes[DISTRICT].set_offline(true);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    add_need(
        &nodes[COMMUNITY_B],
        docs[COMMUNITY_B],
        "n2",
        "江苏路社区：加装电梯",
    )
    .await;
    let want: Vec<Hash> = holdings(&nodes[COMMUNITY_B]).await[&docs[COMMUNITY_B]].clone();
    until(30, "the street holding community B's edit", || async {
        holdings(&nodes[STREET]).await.get(&docs[COMMUNITY_B]) == Some(&want)
    })
    .await;
    nodes[COMMUNITY_B].set_offline(true);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    nodes[DISTRICT].set_offline(false);
    until(30, "the district holding community B's edit", || async {
        holdings(&nodes[DISTRICT]).await.get(&docs[COMMUNITY_B]) == Some(&want)
    })
    .await;
    assert!(
        !nodes[DISTRICT]
            .status()
            .peers
            .values()
            .any(|p| p.connected && p.unit == Some(fed.members[COMMUNITY_B].unit)),
        "never connected to community B"
    );
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_community_syncs_with_its_street_over_quic() {
    logs();
    let fed = fed(62);
    let (sd, cd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let street = fed
        .start_on(STREET, sd.path(), "/ip4/127.0.0.1/udp/0/quic-v1", vec![])
        .await;
    let addr = street.listen_addrs().await[0].clone();
    assert!(addr.to_string().contains("/quic-v1"), "{addr}");
    let community = fed
        .start_on(
            COMMUNITY_A,
            cd.path(),
            "/ip4/127.0.0.1/udp/0/quic-v1",
            vec![addr],
        )
        .await;
    let doc = need_reaches(
        &community,
        &street,
        "电动车充电桩",
        "the street holds the community's need",
    )
    .await;
    assert_eq!(
        holdings(&street).await[&doc],
        holdings(&community).await[&doc]
    );
    community.shutdown().await.unwrap();
    street.shutdown().await.unwrap();
}

/// A key revoked while its session is open loses it at once (it was
/// admitted at its hello; the revocation ends that), and its redials are
/// refused: nothing it writes afterwards reaches the street. It hears of
/// its revocation all the same, from the street's hello.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_loses_its_open_session() {
    logs();
    use gongjian_identity::{RecordBody, Revocation, RevocationCut, RevocationTarget};
    let fed = fed(63);
    let (sd, cd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let street = fed.start(STREET, sd.path(), vec![]).await;
    let addr = street.listen_addrs().await[0].clone();
    // No periodic resync of its own: its session cannot pull the
    // revocation before the street drops it; only the street's hello
    // brings it.
    let community = fed
        .start_with(COMMUNITY_A, cd.path(), vec![addr], |c| {
            c.resync = std::time::Duration::from_secs(3600)
        })
        .await;
    let doc = need_reaches(
        &community,
        &street,
        "电动车充电桩",
        "the street holds the community's need",
    )
    .await;
    let a = fed.members[COMMUNITY_A].unit;
    let connected = |n: &Node| {
        n.status()
            .peers
            .values()
            .any(|p| p.unit == Some(a) && p.connected)
    };
    assert!(connected(&street), "{:?}", street.status().peers);
    let revocation = Revocation {
        target: RevocationTarget::Key(fed.members[COMMUNITY_A].secret.public()),
        cut: RevocationCut::default(),
        reason: "密钥泄露".into(),
        issued_at: now(),
    }
    .sign(&fed.members[STREET].secret);
    let revoked = revocation.hash();
    street
        .call(move |a| a.replica().insert_records(vec![revocation]).unwrap())
        .await
        .unwrap();
    // The open session is dropped: the community dials again, and its
    // hello is refused (with the session kept, it never would dial).
    let refused = |n: &Node| {
        n.status().peers.values().any(|p| {
            p.unit == Some(a)
                && p.last_misbehaviour
                    .as_deref()
                    .is_some_and(|w| w.contains("refused"))
        })
    };
    until(
        15,
        "the street drops the revoked key and refuses it",
        || async { refused(&street) },
    )
    .await;
    // Refused, it still hears of its revocation: the street's hello
    // carries it.
    until(10, "the community holds its own revocation", || async {
        community
            .call(move |a| a.replica().membership().contains(&revoked))
            .await
            .unwrap()
    })
    .await;
    // The cut is empty: its need is past it, dropped on both sides.
    until(
        10,
        "the need past the cut is gone on both sides",
        || async {
            titles(&street, doc).await.is_empty() && titles(&community, doc).await.is_empty()
        },
    )
    .await;
    // Its own node now refuses its writes.
    let refused_write = community
        .write(move |r| {
            let t = now();
            let res = r.local_change(&doc, t, |am| {
                gongjian_model::ListDoc::new(am, gongjian_model::ListKind::Need).add(
                    "q2",
                    &gongjian_model::ItemFields {
                        title: Some("泄露之后".into()),
                        ..Default::default()
                    },
                    t as i64,
                )
            });
            (res.is_err(), vec![])
        })
        .await
        .unwrap();
    assert!(refused_write, "the revoked node still writes");
    community.shutdown().await.unwrap();
    street.shutdown().await.unwrap();
}

/// The node's own scrub: a stored signature flipped on the street hub is
/// found within a pass, the document is dropped (not served) and comes back
/// whole from the community that wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_own_scrub_drops_a_corrupt_document_and_fetches_it_again() {
    logs();
    let fed = fed(63);
    let (sd, cd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let street = fed
        .start_on(STREET, sd.path(), "/ip4/127.0.0.1/tcp/0", vec![])
        .await;
    let addr = street.listen_addrs().await[0].clone();
    let community = fed
        .start_on(COMMUNITY_A, cd.path(), "/ip4/127.0.0.1/tcp/0", vec![addr])
        .await;
    let doc = create_doc(&community).await;
    add_need(&community, doc, "s1", "楼道灯维修").await;
    add_need(&community, doc, "s2", "垃圾分类宣传").await;
    until(20, "the street holds the community's needs", || async {
        titles(&street, doc).await.len() == 2
    })
    .await;
    let want = holdings(&community).await[&doc].clone();
    let before = street.status().scrub;
    // A byte of a stored signature flips on the street's disk.
    let flipped = street
        .call(move |a| {
            let store = a.replica().store().clone();
            let signed = store
                .doc_changes(&doc)
                .unwrap()
                .into_iter()
                .find(|c| c.signature().is_some())
                .expect("a signed change held");
            let mut bytes = signed.encode();
            bytes[1 + 1 + 1 + 32 + 32 + 10] ^= 0x01;
            let tampered = gongjian_identity::SignedChange::decode(&bytes).unwrap();
            let mut b = gongjian_store::Batch::new();
            b.put_change(&tampered);
            store.commit_blocking(b).unwrap();
            tampered.hash()
        })
        .await
        .unwrap();
    until(30, "the scrub drops the document", || async {
        street.status().scrub.dropped > before.dropped
    })
    .await;
    let after = street.status().scrub;
    assert!(after.problems > before.problems, "{after:?}");
    assert!(after.documents_checked > before.documents_checked);
    until(30, "the document comes back from the community", || async {
        holdings(&street).await.get(&doc) == Some(&want)
    })
    .await;
    let back = street
        .call(move |a| {
            let c = a.replica().store().change(&doc, &flipped).unwrap();
            c.map(|c| c.signature().is_none_or(|_| c.verify().is_ok()))
        })
        .await
        .unwrap();
    assert_eq!(
        back,
        Some(true),
        "the change is held again, not the flipped copy"
    );
    assert_eq!(titles(&street, doc).await.len(), 2);

    // A record (the document's genesis) damaged on the street's disk: the
    // scrub writes it again from the verified copy in memory.
    let before = street.status().scrub;
    let original = street
        .call(move |a| {
            let store = a.replica().store().clone();
            let original = store.record(&doc.0).unwrap().unwrap();
            let mut bytes = original.encode();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            let tampered = gongjian_identity::SignedRecord::decode(&bytes).unwrap();
            let mut b = gongjian_store::Batch::new();
            b.put_record_under(&doc.0, &tampered);
            store.commit_blocking(b).unwrap();
            original
        })
        .await
        .unwrap();
    until(30, "the scrub writes the record again", || async {
        street.status().scrub.records_repaired > before.records_repaired
    })
    .await;
    let held = street
        .call(move |a| a.replica().store().record(&doc.0).unwrap())
        .await
        .unwrap();
    assert_eq!(
        held,
        Some(original),
        "the verified copy, not the damaged one"
    );
    community.shutdown().await.unwrap();
    street.shutdown().await.unwrap();
}

/// After a sync each side holds a place in the other's accept log, so
/// later hellos leave the certificates out (PROTOCOL.md §8.6, §9). A street
/// whose store was lost cannot admit such a hello: it refuses it without
/// counting misbehaviour, the community's next hello carries them, and the
/// street gets the community's document back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_lost_its_store_is_sent_the_certificates_again() {
    logs();
    let fed = fed(64);
    let (sd, cd, lost) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let street = fed.start(STREET, sd.path(), vec![]).await;
    let addr = street.listen_addrs().await[0].clone();
    let community = fed.start(COMMUNITY_A, cd.path(), vec![addr]).await;
    let doc = need_reaches(
        &community,
        &street,
        "电动车充电桩",
        "the street holds the community's need",
    )
    .await;
    let street_key = fed.members[STREET].secret.public();
    until(20, "the community took the street's mark", || async {
        community
            .call(move |a| {
                let bytes = a.replica().store().peer(street_key.as_bytes()).unwrap();
                bytes.is_some_and(|b| {
                    postcard::from_bytes::<gongjian_sync::PeerProgress>(&b)
                        .unwrap()
                        .log
                        .is_some()
                })
            })
            .await
            .unwrap()
    })
    .await;
    street.shutdown().await.unwrap();
    // The street comes back on a new store (its own certificate only) and
    // dials the community.
    let caddr = community.listen_addrs().await[0].clone();
    let street = fed.start(STREET, lost.path(), vec![caddr]).await;
    until(
        30,
        "the street holds the community's need again",
        || async { titles(&street, doc).await == ["电动车充电桩"] },
    )
    .await;
    assert!(
        street.status().bare_hellos_refused >= 1,
        "the community's first hello left its certificates out"
    );
    assert_eq!(street.status().misbehaviour, 0);
    assert_eq!(community.status().misbehaviour, 0);
    assert_eq!(
        holdings(&street).await[&doc],
        holdings(&community).await[&doc]
    );
    community.shutdown().await.unwrap();
    street.shutdown().await.unwrap();
}
