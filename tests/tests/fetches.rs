//! A node syncing from two hubs that hold the same things fetches each
//! record and each document from one of them only (`Fetches`), and still
//! ends with everything; without the shared fetches it fetches both copies.

use std::collections::VecDeque;

use gongjian_engine::Replica;
use gongjian_identity::{DocType, Secret, SignedRecord, UnitId, UnitKind};
use gongjian_model::NeedsDoc;
use gongjian_sync::{
    Fetches, Input, Message, Output, PeerProgress, Prefolded, Role, Session, SetId, encode,
};
use gongjian_tests::everything;

mod common;
use common::*;

/// As the daemon's actor: after a fetch ended, the sessions that wait on
/// one ask again.
fn wake(
    fetches: &Fetches,
    mine: &mut [Session],
    d2: &mut Replica,
    to_hub: &mut [VecDeque<Vec<u8>>; 2],
) {
    while fetches.take_released() {
        for k in 0..mine.len() {
            if mine[k].has_deferred() {
                for o in mine[k].handle(d2, Input::Wake, NOW).unwrap() {
                    if let Output::Send(m) = o {
                        to_hub[k].push_back(encode(&m));
                    }
                }
            }
        }
    }
}

struct Outcome {
    records_received: u64,
    records_lacked: usize,
    changes_received: u64,
    changes_written: usize,
    /// Changes the district's ingest accepted (each once, whatever came twice).
    accepted: u64,
    converged: bool,
    /// Bytes of the hubs' steps reconciling the records set.
    records_reconcile_bytes: usize,
}

/// Communities under the two streets: records both hubs hold, enough that
/// a hub lists them by fingerprint and items rather than all at once.
const COMMUNITIES: usize = 160;

/// The district's documents are on both street hubs; the district, its
/// store lost, comes back with only its certificate and syncs from both
/// at once, messages interleaved.
///
/// `fold`: as the daemon does with frames read together, the district
/// takes one message from each hub at a time and ingests the changes of
/// both in one call ([`Replica::ingest_folded`]), each session then handed
/// what became of its own ([`Prefolded`]).
fn cold_sync_from_two_hubs(shared: bool, fold: bool) -> Outcome {
    let Fed {
        root,
        d_secret,
        s_secrets,
        certs,
    } = fed();
    // The district writes three documents, then loses its store.
    let (_d1dir, mut d1) = replica(&root, &d_secret, DISTRICT);
    d1.insert_records(certs.clone()).unwrap();
    let communities: Vec<SignedRecord> = (0..COMMUNITIES)
        .map(|k| {
            let unit = format!("{}{:03}", &STREETS[k % 2][..9], k + 1);
            let mut seed = [9u8; 32];
            seed[0] = k as u8;
            let key = Secret::from_seed(seed);
            cert(
                &root,
                &key,
                &unit,
                UnitKind::Community,
                Some(STREETS[k % 2]),
            )
        })
        .collect();
    d1.insert_records(communities).unwrap();
    let mut changes_written = 0;
    for k in 0..3 {
        let doc = d1.create_document(DocType::Needs, NOW).unwrap();
        for n in 0..20 {
            d1.local_change(&doc, NOW, |am| {
                NeedsDoc(am).add(
                    &format!("{k}-{n}"),
                    &format!("区级需求{k}-{n}"),
                    "助老",
                    "",
                    NOW as i64,
                )
            })
            .unwrap();
            changes_written += 1;
        }
    }
    let (records, changes) = everything(&d1);
    let mut hubs: Vec<(tempfile::TempDir, Replica)> = Vec::new();
    for (s, unit) in s_secrets.iter().zip(STREETS) {
        let (dir, mut r) = replica(&root, s, unit);
        r.insert_records(records.clone()).unwrap();
        let report = r.ingest(changes.clone()).unwrap();
        assert_eq!(report.accepted.len(), changes.len());
        hubs.push((dir, r));
    }
    let (_d2dir, mut d2) = replica(&root, &d_secret, DISTRICT);
    d2.insert_records(vec![certs[0].clone()]).unwrap();

    let records_lacked = records.len() - d2.store().records().unwrap().len();
    let fetches = Fetches::new();
    let district: UnitId = DISTRICT.parse().unwrap();
    let mut mine: Vec<Session> = STREETS
        .iter()
        .map(|s| {
            let peer: UnitId = s.parse().unwrap();
            if shared {
                Session::with_fetches(peer, Role::Initiator, PeerProgress::default(), &fetches)
            } else {
                Session::new(peer, Role::Initiator, PeerProgress::default())
            }
        })
        .collect();
    let mut theirs: Vec<Session> = (0..2)
        .map(|_| Session::new(district, Role::Responder, PeerProgress::default()))
        .collect();
    // Per link: messages to the district, messages to the hub (one ordered
    // stream each way, as libp2p gives).
    let mut to_me: [VecDeque<Vec<u8>>; 2] = Default::default();
    let mut to_hub: [VecDeque<Vec<u8>>; 2] = Default::default();
    // Returns the bytes of the records set's reconcile steps sent.
    let sends = |outs: Vec<Output>, q: &mut VecDeque<Vec<u8>>| -> usize {
        let mut reconcile = 0;
        for o in outs {
            if let Output::Send(m) = o {
                let bytes = encode(&m);
                if matches!(
                    m,
                    Message::Reconcile {
                        set: SetId::Records,
                        ..
                    }
                ) {
                    reconcile += bytes.len();
                }
                q.push_back(bytes);
            }
        }
        reconcile
    };
    let mut records_reconcile_bytes = 0;
    for l in 0..2 {
        let o = theirs[l].handle(&mut hubs[l].1, Input::Start, NOW).unwrap();
        records_reconcile_bytes += sends(o, &mut to_me[l]);
        let o = mine[l].handle(&mut d2, Input::Start, NOW).unwrap();
        sends(o, &mut to_hub[l]);
    }
    let mut steps = 0;
    let mut folded = 0;
    let mut records_folded = 0;
    while to_me.iter().chain(to_hub.iter()).any(|q| !q.is_empty()) {
        steps += 1;
        assert!(steps < 100_000, "the sync does not end");
        for l in 0..2 {
            if let Some(m) = to_hub[l].pop_front() {
                let o = theirs[l]
                    .handle(&mut hubs[l].1, Input::Message(m), NOW)
                    .unwrap();
                records_reconcile_bytes += sends(o, &mut to_me[l]);
            }
        }
        if !fold {
            for l in 0..2 {
                if let Some(m) = to_me[l].pop_front() {
                    let o = mine[l].handle(&mut d2, Input::Message(m), NOW).unwrap();
                    sends(o, &mut to_hub[l]);
                }
                wake(&fetches, &mut mine, &mut d2, &mut to_hub);
            }
            continue;
        }
        let frames: Vec<Option<Vec<u8>>> = to_me.iter_mut().map(|q| q.pop_front()).collect();
        // As the node does: the records of the frames first, admitted in
        // one evaluation, then their changes in one ingest.
        let mut which = Vec::new();
        let mut batches = Vec::new();
        for (l, m) in frames.iter().enumerate() {
            if let Some(r) = m.as_ref().and_then(|m| mine[l].records_to_ingest(m)) {
                which.push((l, r.len()));
                batches.push(r);
            }
        }
        let mut records_ahead = [None, None];
        if batches.len() > 1 {
            records_folded += 1;
            let summaries = d2.ingest_records_folded(batches).unwrap();
            for ((l, n), s) in which.into_iter().zip(summaries) {
                records_ahead[l] = Some((n, s));
            }
        }
        let mut which = Vec::new();
        let mut batches = Vec::new();
        for (l, m) in frames.iter().enumerate() {
            if let Some(c) = m.as_ref().and_then(|m| mine[l].changes_to_ingest(m)) {
                which.push((l, c.len()));
                batches.push(c);
            }
        }
        let mut ahead = [None, None];
        if batches.len() > 1 {
            folded += 1;
            let summaries = d2.ingest_folded(batches).unwrap();
            for ((l, n), s) in which.into_iter().zip(summaries) {
                ahead[l] = Some((n, s));
            }
        }
        for (l, m) in frames.into_iter().enumerate() {
            if let Some(m) = m {
                let mut host =
                    Prefolded::new(&mut d2, ahead[l].take()).with_records(records_ahead[l].take());
                let o = mine[l].handle(&mut host, Input::Message(m), NOW).unwrap();
                sends(o, &mut to_hub[l]);
            }
        }
        wake(&fetches, &mut mine, &mut d2, &mut to_hub);
    }
    let converged = mine.iter().all(Session::is_synced)
        && d2.store().docs().unwrap() == d1.store().docs().unwrap()
        && d2.store().records().unwrap().len() == records.len();
    assert!(fetches.is_empty(), "every fetch ended");
    if fold && !shared {
        // Both hubs answer every document: their frames meet in one ingest.
        assert!(folded > 0, "no frames were ingested together");
        assert!(
            records_folded > 0,
            "no records frames were admitted together"
        );
    }
    Outcome {
        records_received: mine.iter().map(|s| s.stats().records_received).sum(),
        records_lacked,
        changes_received: mine.iter().map(|s| s.stats().changes_received).sum(),
        accepted: d2.counters().accepted,
        changes_written,
        converged,
        records_reconcile_bytes,
    }
}

#[test]
fn shared_fetches_take_each_record_and_change_from_one_hub() {
    for fold in [false, true] {
        let shared = cold_sync_from_two_hubs(true, fold);
        assert!(shared.converged, "the district got everything back");
        assert!(
            shared.records_lacked >= COMMUNITIES + 3,
            "the communities' certificates and the three geneses"
        );
        assert_eq!(shared.records_received as usize, shared.records_lacked);
        assert_eq!(shared.changes_received as usize, shared.changes_written);

        // Without shared fetches both hubs send everything; folded, the
        // same change from both meets in one ingest and is accepted once.
        let alone = cold_sync_from_two_hubs(false, fold);
        assert!(alone.converged);
        assert_eq!(alone.records_received, 2 * shared.records_received);
        assert_eq!(alone.changes_received, 2 * shared.changes_received);
        assert_eq!(alone.accepted, shared.accepted, "fold {fold}");
        assert_eq!(alone.accepted, shared.changes_written as u64);
        // The records turn: the second hub's records are reconciled once
        // the first hub's are in, so it does not list them all again.
        assert!(
            shared.records_reconcile_bytes * 3 < alone.records_reconcile_bytes * 2,
            "fold {fold}: records reconciled in {} bytes with the turn, {} without",
            shared.records_reconcile_bytes,
            alone.records_reconcile_bytes
        );
    }
}

/// A change of a `Changes` message that does not decode, on the real path
/// (a session that asked for the document, the replica as its host): the
/// session penalises the peer, the node counts it under
/// `invalid{malformed}`, and it is not stored; the sync still ends.
#[test]
fn a_malformed_change_in_a_message_is_penalised_and_counted() {
    use gongjian_sync::{Message, decode};
    let Fed {
        root,
        d_secret,
        s_secrets: [s_secret, _],
        certs,
    } = fed();
    let (_d1dir, mut d1) = replica(&root, &d_secret, DISTRICT);
    d1.insert_records(certs.clone()).unwrap();
    let doc = d1.create_document(DocType::Needs, NOW).unwrap();
    for n in 0..5 {
        d1.local_change(&doc, NOW, |am| {
            NeedsDoc(am).add(&format!("{n}"), &format!("需求{n}"), "助老", "", NOW as i64)
        })
        .unwrap();
    }
    let (records, changes) = everything(&d1);
    let (_hdir, mut hub) = replica(&root, &s_secret, STREETS[0]);
    hub.insert_records(records).unwrap();
    hub.ingest(changes).unwrap();
    let (_d2dir, mut d2) = replica(&root, &d_secret, DISTRICT);
    d2.insert_records(vec![certs[0].clone()]).unwrap();
    assert_eq!(d2.counters().invalid.get("malformed"), None);

    let (mut mine, mut theirs) = district_and_street_sessions();
    let (mut to_me, mut to_hub) = (VecDeque::new(), VecDeque::new());
    let sends = |outs: Vec<Output>, q: &mut VecDeque<Vec<u8>>, penalties: &mut Vec<String>| {
        for o in outs {
            match o {
                Output::Send(m) => q.push_back(encode(&m)),
                Output::Misbehaved(why) => penalties.push(why),
                _ => {}
            }
        }
    };
    let (mut penalties, mut theirs_penalties) = (Vec::new(), Vec::new());
    let o = theirs.handle(&mut hub, Input::Start, NOW).unwrap();
    sends(o, &mut to_me, &mut theirs_penalties);
    let o = mine.handle(&mut d2, Input::Start, NOW).unwrap();
    sends(o, &mut to_hub, &mut penalties);
    let mut corrupted = None;
    let mut steps = 0;
    while !to_me.is_empty() || !to_hub.is_empty() {
        steps += 1;
        assert!(steps < 10_000, "the sync does not end");
        if let Some(m) = to_hub.pop_front() {
            let o = theirs.handle(&mut hub, Input::Message(m), NOW).unwrap();
            sends(o, &mut to_me, &mut theirs_penalties);
        }
        if let Some(mut m) = to_me.pop_front() {
            if corrupted.is_none()
                && let Ok(Message::Changes {
                    doc: d,
                    mut changes,
                    last,
                }) = decode(&m)
                && d == doc
                && changes.len() > 1
            {
                // The last change of the batch, cut short.
                let c = changes.last_mut().unwrap();
                c.truncate(c.len() / 2);
                corrupted = Some(changes.len());
                m = encode(&Message::Changes {
                    doc: d,
                    changes,
                    last,
                });
            }
            let o = mine.handle(&mut d2, Input::Message(m), NOW).unwrap();
            sends(o, &mut to_hub, &mut penalties);
        }
    }
    assert!(corrupted.is_some(), "no batch of the document to cut");
    assert_eq!(d2.counters().invalid.get("malformed"), Some(&1));
    assert!(!penalties.is_empty(), "the peer was not penalised");
    assert!(theirs_penalties.is_empty(), "{theirs_penalties:?}");
    // The cut change is not stored; the ones before it are.
    let held = d2.store().doc_changes(&doc).unwrap().len();
    assert!(held < 5, "{held} changes held");
}

/// A document created just after its writer opened a session (as a
/// community does at start): the round's records were reconciled before
/// its genesis existed, so the peer cannot see the document the
/// reconciliation of documents (or the writer's `Notify`) names. The peer
/// asks for the genesis by the document's id and fetches the document in
/// the same session, not at the next resync a minute later. As in the
/// daemon, the writer dialled: its session leads, the peer's answers.
#[test]
fn a_document_created_after_the_records_round_reaches_the_peer_in_that_session() {
    for notify in [false, true] {
        let Fed {
            root,
            d_secret,
            s_secrets: [s_secret, _],
            certs,
        } = fed();
        let (_ddir, mut writer) = replica(&root, &d_secret, DISTRICT);
        writer.insert_records(certs.clone()).unwrap();
        let (_sdir, mut street) = replica(&root, &s_secret, STREETS[0]);
        street.insert_records(certs).unwrap();

        let (mut mine, mut theirs) = district_and_street_sessions();
        let (mut to_writer, mut to_street) = (VecDeque::new(), VecDeque::new());
        let sends = |outs: Vec<Output>, q: &mut VecDeque<Vec<u8>>, resync: &mut bool| {
            for o in outs {
                match o {
                    Output::Send(m) => q.push_back(encode(&m)),
                    Output::ResyncWanted => *resync = true,
                    _ => {}
                }
            }
        };
        let mut resync = false;
        let o = theirs.handle(&mut street, Input::Start, NOW).unwrap();
        sends(o, &mut to_writer, &mut resync);
        let o = mine.handle(&mut writer, Input::Start, NOW).unwrap();
        sends(o, &mut to_street, &mut resync);
        // The feeds go first (PROTOCOL.md §8.6); the records round opens
        // once both are through.
        let opened = |q: &VecDeque<Vec<u8>>| {
            q.iter().any(|m| {
                matches!(
                    gongjian_sync::decode(m),
                    Ok(gongjian_sync::Message::Reconcile {
                        set: SetId::Records,
                        ..
                    })
                )
            })
        };
        while !opened(&to_street) {
            assert!(
                !to_street.is_empty() || !to_writer.is_empty(),
                "never opened"
            );
            if let Some(m) = to_street.pop_front() {
                let o = theirs.handle(&mut street, Input::Message(m), NOW).unwrap();
                sends(o, &mut to_writer, &mut resync);
            }
            if let Some(m) = to_writer.pop_front() {
                let o = mine.handle(&mut writer, Input::Message(m), NOW).unwrap();
                sends(o, &mut to_street, &mut resync);
            }
        }
        // The records round is open; now the document is written.
        let doc = writer.create_document(DocType::Needs, NOW).unwrap();
        writer
            .local_change(&doc, NOW, |am| {
                NeedsDoc(am).add("1", "楼道灯维修", "助老", "", NOW as i64)
            })
            .unwrap();
        if notify {
            let o = mine
                .handle(&mut writer, Input::LocalChange(doc), NOW)
                .unwrap();
            sends(o, &mut to_street, &mut resync);
        }
        let mut steps = 0;
        while !to_writer.is_empty() || !to_street.is_empty() {
            steps += 1;
            assert!(steps < 10_000, "the sync does not end");
            if let Some(m) = to_street.pop_front() {
                let o = theirs.handle(&mut street, Input::Message(m), NOW).unwrap();
                sends(o, &mut to_writer, &mut resync);
            }
            if let Some(m) = to_writer.pop_front() {
                let o = mine.handle(&mut writer, Input::Message(m), NOW).unwrap();
                sends(o, &mut to_street, &mut resync);
            }
        }
        assert!(mine.is_synced(), "notify {notify}");
        assert!(!resync, "a resync was wanted (notify {notify})");
        let heads = |r: &Replica| r.store().doc_meta(&doc).unwrap().map(|m| m.heads);
        assert!(heads(&writer).is_some());
        assert_eq!(
            heads(&street),
            heads(&writer),
            "the street lacks the new document (notify {notify})"
        );
        assert_eq!(theirs.stats().records_received, 1, "the genesis, once");
    }
}

/// A peer naming a document it may not see learns nothing of whether this
/// node holds it: the district, which holds a document of one street, is
/// told of it by the other street and answers exactly as it does for an
/// id nobody holds (it asks for the genesis by that id).
#[test]
fn naming_a_document_it_may_not_see_does_not_tell_the_peer_whether_it_is_held() {
    use gongjian_sync::{Message, decode};
    let Fed {
        root,
        d_secret,
        s_secrets,
        certs,
    } = fed();
    // The second street writes a document; the district holds it.
    let (_wdir, mut writer) = replica(&root, &s_secrets[1], STREETS[1]);
    writer.insert_records(certs.clone()).unwrap();
    let held = writer.create_document(DocType::Needs, NOW).unwrap();
    let (records, changes) = everything(&writer);
    let (_ddir, mut district) = replica(&root, &d_secret, DISTRICT);
    district.insert_records(records).unwrap();
    district.ingest(changes).unwrap();
    assert!(district.store().doc_meta(&held).unwrap().is_some());
    let nobodys = gongjian_identity::DocId(gongjian_identity::Hash([7; 32]));

    // What the district sends the first street when told of `doc`.
    let mut answer = |doc: gongjian_identity::DocId| -> Vec<Message> {
        let mut s = Session::new(
            STREETS[0].parse().unwrap(),
            Role::Responder,
            PeerProgress::default(),
        );
        s.handle(&mut district, Input::Start, NOW).unwrap();
        let notify = encode(&Message::Notify {
            doc,
            state: [1; 16],
        });
        s.handle(&mut district, Input::Message(notify), NOW)
            .unwrap()
            .into_iter()
            .filter_map(|o| match o {
                Output::Send(m) => Some(decode(&encode(&m)).unwrap()),
                _ => None,
            })
            .collect()
    };
    let (for_held, for_nobodys) = (answer(held), answer(nobodys));
    assert_eq!(
        for_held,
        vec![Message::WantRecords {
            hashes: vec![held.0]
        }]
    );
    assert_eq!(
        for_nobodys,
        vec![Message::WantRecords {
            hashes: vec![nobodys.0]
        }]
    );
    // With two sessions sharing the fetches (a peer may hold several
    // streams): the second, told of it while the first asks, waits; once
    // the first's ask was answered with nothing, it asks in turn, whether
    // the record is held or not.
    let mut retried = |doc: gongjian_identity::DocId| -> Vec<Message> {
        let fetches = Fetches::new();
        let mut two: Vec<Session> = (0..2)
            .map(|_| {
                Session::with_fetches(
                    STREETS[0].parse().unwrap(),
                    Role::Responder,
                    PeerProgress::default(),
                    &fetches,
                )
            })
            .collect();
        let notify = encode(&Message::Notify {
            doc,
            state: [1; 16],
        });
        let sent = |outs: Vec<Output>| -> Vec<Message> {
            outs.into_iter()
                .filter_map(|o| match o {
                    Output::Send(m) => Some(m),
                    _ => None,
                })
                .collect()
        };
        for s in &mut two {
            s.handle(&mut district, Input::Start, NOW).unwrap();
        }
        let first = sent(
            two[0]
                .handle(&mut district, Input::Message(notify.clone()), NOW)
                .unwrap(),
        );
        assert_eq!(first.len(), 1, "{first:?}");
        let waiting = sent(
            two[1]
                .handle(&mut district, Input::Message(notify), NOW)
                .unwrap(),
        );
        assert!(waiting.is_empty(), "{waiting:?}");
        let none = encode(&Message::Records { records: vec![] });
        two[0]
            .handle(&mut district, Input::Message(none), NOW)
            .unwrap();
        sent(two[1].handle(&mut district, Input::Wake, NOW).unwrap())
    };
    assert_eq!(
        retried(held),
        vec![Message::WantRecords {
            hashes: vec![held.0]
        }]
    );
    assert_eq!(
        retried(nobodys),
        vec![Message::WantRecords {
            hashes: vec![nobodys.0]
        }]
    );
}

/// The records turn (PROTOCOL.md §8.3): of two sessions a node opens at
/// once, the second opens its records reconciliation only once the
/// first's ended, or once the turn's lease ran out if the first peer is
/// silent.
#[test]
fn a_second_session_waits_for_the_records_turn_until_its_lease_ends() {
    let Fed {
        root,
        d_secret,
        certs,
        ..
    } = fed();
    let (_dir, mut d) = replica(&root, &d_secret, DISTRICT);
    d.insert_records(certs).unwrap();
    let fetches = Fetches::new();
    let mut s: Vec<Session> = STREETS
        .iter()
        .map(|p| {
            Session::with_fetches(
                p.parse().unwrap(),
                Role::Initiator,
                PeerProgress::default(),
                &fetches,
            )
        })
        .collect();
    let opens = |o: &[Output]| {
        o.iter().any(|o| {
            matches!(
                o,
                Output::Send(Message::Reconcile {
                    set: SetId::Records,
                    ..
                })
            )
        })
    };
    // Each opens once its feed is through (an empty one here).
    let start = |s: &mut Session, d: &mut Replica| {
        let mut o = s.handle(d, Input::Start, NOW).unwrap();
        assert!(!opens(&o), "opened before the feeds");
        for m in [Message::Feed { from: None }, Message::FeedEnd] {
            o.extend(s.handle(d, Input::Message(encode(&m)), NOW).unwrap());
        }
        o
    };
    assert!(opens(&start(&mut s[0], &mut d)));
    assert!(!opens(&start(&mut s[1], &mut d)));
    assert!(s[1].has_deferred(), "it waits, to be woken");
    assert!(!s[1].awaits_peer(), "not a stall of its peer");
    // The first peer never answers.
    let lease_end = NOW + gongjian_sync::TURN_LEASE_SECS;
    assert!(!opens(
        &s[1].handle(&mut d, Input::Wake, lease_end - 1).unwrap()
    ));
    assert!(opens(&s[1].handle(&mut d, Input::Wake, lease_end).unwrap()));
    assert!(!s[1].has_deferred());
    assert!(!s[1].is_synced(), "it reconciles now");
}
