//! The feed (PROTOCOL.md §8.6) on real stores: a reconnect brings what
//! changed by the feed alone; what a peer sends as a feed is checked and
//! bounded.

use std::collections::VecDeque;

use gongjian_engine::Replica;
use gongjian_identity::DocType;
use gongjian_model::NeedsDoc;
use gongjian_sync::{Input, Output, Role, Session, encode};
use gongjian_tests::everything;

mod common;
use common::*;

/// Runs one session each way to the end, messages in order (one stream):
/// every message sent, decoded, and the penalties each side gave.
fn run_sessions(
    mine: &mut Session,
    me: &mut Replica,
    theirs: &mut Session,
    them: &mut Replica,
) -> (Vec<gongjian_sync::Message>, Vec<String>) {
    let (mut to_me, mut to_them) = (VecDeque::new(), VecDeque::new());
    let (mut sent, mut penalties) = (Vec::new(), Vec::new());
    let mut take = |outs: Vec<Output>, q: &mut VecDeque<Vec<u8>>| {
        for o in outs {
            match o {
                Output::Send(m) => {
                    q.push_back(encode(&m));
                    sent.push(m);
                }
                Output::Misbehaved(why) => penalties.push(why),
                _ => {}
            }
        }
    };
    take(theirs.handle(them, Input::Start, NOW).unwrap(), &mut to_me);
    take(mine.handle(me, Input::Start, NOW).unwrap(), &mut to_them);
    let mut steps = 0;
    while !to_me.is_empty() || !to_them.is_empty() {
        steps += 1;
        assert!(steps < 10_000, "the sync does not end");
        if let Some(m) = to_them.pop_front() {
            take(
                theirs.handle(them, Input::Message(m), NOW).unwrap(),
                &mut to_me,
            );
        }
        if let Some(m) = to_me.pop_front() {
            take(
                mine.handle(me, Input::Message(m), NOW).unwrap(),
                &mut to_them,
            );
        }
    }
    (sent, penalties)
}

/// The next sessions of [`district_and_street_sessions`], resuming from
/// the progress these two ended with (as the daemon keeps it).
fn resumed(mine: &Session, theirs: &Session) -> (Session, Session) {
    (
        Session::new(
            STREETS[0].parse().unwrap(),
            Role::Initiator,
            mine.progress().clone(),
        ),
        Session::new(
            DISTRICT.parse().unwrap(),
            Role::Responder,
            theirs.progress().clone(),
        ),
    )
}

/// A reconnect after the street wrote: the district's place in the
/// street's accept log, taken at the end of their last sync, brings the
/// new genesis and changes in the street's feed, with no `Want`, no
/// `WantRecords`, and a reconciliation of one step each way per set
/// (PROTOCOL.md §8.6). A store whose log was replaced (a restore moves it
/// to a new epoch and log id) feeds nothing: the reconciliation brings it.
#[test]
fn a_reconnect_brings_what_changed_in_the_feed_alone() {
    use gongjian_sync::Message;
    let Fed {
        root,
        d_secret,
        s_secrets: [s_secret, _],
        certs,
    } = fed();
    let (_sdir, mut street) = replica(&root, &s_secret, STREETS[0]);
    street.insert_records(certs.clone()).unwrap();
    let mut docs = Vec::new();
    for n in 0..20 {
        let doc = street.create_document(DocType::Needs, NOW + n).unwrap();
        street
            .local_change(&doc, NOW, |am| {
                NeedsDoc(am).add("1", &format!("需求{n}"), "助老", "", NOW as i64)
            })
            .unwrap();
        docs.push(doc);
    }
    let (_ddir, mut district) = replica(&root, &d_secret, DISTRICT);
    district.insert_records(certs).unwrap();
    let heads =
        |r: &Replica, d: &gongjian_identity::DocId| r.store().doc_meta(d).unwrap().map(|m| m.heads);
    let count = |sent: &[Message], kind: &str| sent.iter().filter(|m| m.kind() == kind).count();

    let (mut mine, mut theirs) = district_and_street_sessions();
    let (sent, penalties) = run_sessions(&mut mine, &mut district, &mut theirs, &mut street);
    assert!(penalties.is_empty(), "{penalties:?}");
    assert!(mine.is_synced());
    assert!(count(&sent, "want") >= 20, "the first sync fetched by want");
    assert_eq!(count(&sent, "feed_changes"), 0, "no place in a log yet");
    let place = mine
        .progress()
        .log
        .expect("the district took the street's mark");
    assert_eq!(place.0, street.store().store_id().unwrap());
    assert_eq!(
        theirs.progress().log.map(|p| p.0),
        Some(district.store().store_id().unwrap())
    );

    // The street writes while the district is away: two documents change,
    // one is new.
    for d in &docs[..2] {
        street
            .local_change(d, NOW, |am| {
                NeedsDoc(am).add("2", "楼道灯维修", "助老", "", NOW as i64)
            })
            .unwrap();
    }
    let new = street.create_document(DocType::Needs, NOW + 100).unwrap();
    street
        .local_change(&new, NOW, |am| {
            NeedsDoc(am).add("1", "助餐点", "助老", "", NOW as i64)
        })
        .unwrap();
    let (mut mine2, mut theirs2) = resumed(&mine, &theirs);
    let (sent, penalties) = run_sessions(&mut mine2, &mut district, &mut theirs2, &mut street);
    assert!(penalties.is_empty(), "{penalties:?}");
    assert!(mine2.is_synced());
    for d in docs.iter().chain([&new]) {
        assert!(heads(&street, d).is_some());
        assert_eq!(heads(&district, d), heads(&street, d), "{}", d.fmt_short());
    }
    assert_eq!(count(&sent, "feed_changes"), 3, "{sent:?}");
    assert_eq!(count(&sent, "feed_records"), 1, "the new genesis");
    assert_eq!(count(&sent, "want"), 0, "{sent:?}");
    assert_eq!(count(&sent, "want_records"), 0, "{sent:?}");
    assert_eq!(count(&sent, "reconcile"), 4, "one step each way per set");
    assert!(
        mine2.progress().log.unwrap().1 > place.1,
        "the place moved on"
    );

    // The street's log is replaced (as a restore does): a place in the old
    // one is not read against it, and the reconciliation brings the change.
    street.store().bump_epoch(NOW + 5).unwrap();
    street
        .local_change(&docs[5], NOW, |am| {
            NeedsDoc(am).add("3", "加装扶手", "助老", "", NOW as i64)
        })
        .unwrap();
    let (mut mine3, mut theirs3) = resumed(&mine2, &theirs2);
    let (sent, penalties) = run_sessions(&mut mine3, &mut district, &mut theirs3, &mut street);
    assert!(penalties.is_empty(), "{penalties:?}");
    assert_eq!(count(&sent, "feed_changes"), 0, "{sent:?}");
    assert!(count(&sent, "want") >= 1);
    assert_eq!(heads(&district, &docs[5]), heads(&street, &docs[5]));
    assert_eq!(
        mine3.progress().log.map(|p| p.0),
        Some(street.store().store_id().unwrap()),
        "the place is now in the new log"
    );
}

/// What a peer sends as a feed is checked as any change: a forged one is
/// misbehaviour and not stored; past 16 MiB, or past four messages of
/// records, a feed is misbehaviour and read no further; a feed's changes
/// after its end (a duplicate) are dropped unread, unpenalised.
#[test]
fn a_feed_is_checked_and_bounded() {
    use gongjian_sync::{MAX_FEED_BYTES, Message};
    let Fed {
        root,
        d_secret,
        s_secrets: [s_secret, _],
        certs,
    } = fed();
    let (_sdir, mut street) = replica(&root, &s_secret, STREETS[0]);
    street.insert_records(certs.clone()).unwrap();
    let doc = street.create_document(DocType::Needs, NOW).unwrap();
    street
        .local_change(&doc, NOW, |am| {
            NeedsDoc(am).add("1", "需求", "助老", "", NOW as i64)
        })
        .unwrap();
    let (records, changes) = everything(&street);
    let (_ddir, mut district) = replica(&root, &d_secret, DISTRICT);
    district.insert_records(records).unwrap();
    let change = changes
        .iter()
        .map(|c| gongjian_identity::SignedChange::decode(c).unwrap())
        .find(|c| c.doc() == &doc)
        .unwrap();
    let mut forged = change.encode_compact();
    let n = forged.len();
    forged[n - 1] ^= 1; // the chunk no longer matches its signature
    let (mut mine, _) = district_and_street_sessions();
    let penalties = |o: Vec<Output>| -> Vec<String> {
        o.into_iter()
            .filter_map(|o| match o {
                Output::Misbehaved(why) => Some(why),
                _ => None,
            })
            .collect()
    };
    // Its feed is open from its start.
    assert!(penalties(mine.handle(&mut district, Input::Start, NOW).unwrap()).is_empty());
    let mut feed = |m: Message, d: &mut Replica| {
        penalties(mine.handle(d, Input::Message(encode(&m)), NOW).unwrap())
    };
    let p = feed(
        Message::FeedChanges {
            doc,
            changes: vec![forged],
        },
        &mut district,
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(district.store().doc_changes(&doc).unwrap().is_empty());
    // Past the cap: garbage of 6 MiB a message; the third is not read.
    let junk = vec![vec![0xAB; 2048]; 3 * 1024];
    let malformed = |d: &Replica| d.counters().invalid.get("malformed").copied().unwrap_or(0);
    let before = malformed(&district);
    for _ in 0..2 {
        let p = feed(
            Message::FeedChanges {
                doc,
                changes: junk.clone(),
            },
            &mut district,
        );
        assert_eq!(p.len(), 1, "malformed: {p:?}");
    }
    assert_eq!((malformed(&district) - before) as usize, 2 * junk.len());
    let p = feed(
        Message::FeedChanges {
            doc,
            changes: junk.clone(),
        },
        &mut district,
    );
    assert!(
        p.len() == 1 && p[0].contains(&format!("more than {MAX_FEED_BYTES}")),
        "{p:?}"
    );
    assert_eq!(
        (malformed(&district) - before) as usize,
        2 * junk.len(),
        "not read"
    );
    // Four messages of records at most (each an evaluation of the
    // membership).
    for k in 0..5 {
        let p = feed(Message::FeedRecords { records: vec![] }, &mut district);
        assert_eq!(p.len(), usize::from(k == 4), "message {k}: {p:?}");
    }
    // After the feed's end, its changes are dropped unread, unpenalised.
    assert!(feed(Message::FeedEnd, &mut district).is_empty());
    let p = feed(
        Message::FeedChanges {
            doc,
            changes: vec![change.encode_compact()],
        },
        &mut district,
    );
    assert!(p.is_empty(), "{p:?}");
    assert!(district.store().doc_changes(&doc).unwrap().is_empty());
}
