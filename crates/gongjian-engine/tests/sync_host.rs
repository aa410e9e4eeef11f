//! The replica as a sync host: the changes it sends (batches cut where
//! vouched, forks, back points, cuts) and those it takes in (folded
//! frames, malformed changes). Its records set: `sync_host_records.rs`.

mod common;

use common::*;
use gongjian_identity::Secret;
use gongjian_sync::Host;
use tempfile::tempdir;

/// Two keys of one unit take turns, each change depending on the other's
/// last; the node that relays them holds only some signatures. Batches are
/// cut only where every actor's last change is signed; with no such point
/// under the hard cap the answer stops at the last one, says so, and what
/// was sent is accepted whole by a fresh node.
#[test]
fn interleaved_authors_are_cut_only_where_vouched() {
    use gongjian_sync::{BatchLimits, causal_order, edge_signed_batches};
    let f = fed();
    let second = Secret::from_seed([91; 32]);
    let g = genesis(f.community_id, &f.community, &[second.public()]);
    let doc = gongjian_identity::DocId(g.hash());
    let mut a = Author::new(&f.community, 1, doc);
    let mut b = Author::new(&second, 1, doc);
    let mut all = Vec::new();
    for i in 0..40 {
        let c = a.put("标题", &format!("甲{i}"));
        b.merge(std::slice::from_ref(&c));
        let d = b.put("标题", &format!("乙{i}"));
        a.merge(std::slice::from_ref(&d));
        all.extend([c, d]);
    }
    // As relayed: only changes 20 and 21 of each (a cut point) and the
    // last of each keep their signatures.
    let held: Vec<_> = all
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == 41 || i == 42 || i >= 78 {
                c.clone()
            } else {
                c.without_signature()
            }
        })
        .collect();
    let small = BatchLimits {
        max_bytes: 1,
        max_changes: 1,
        hard_max_bytes: 1 << 20,
        ..BatchLimits::default()
    };
    // Small targets: cut at each cut point, complete.
    let whole = edge_signed_batches(causal_order(held.clone()), small);
    assert!(whole.complete);
    assert_eq!(whole.changes(), 80);
    assert_eq!(
        whole.batches.len(),
        2,
        "two cut points: after 43 and at the end"
    );
    // A hard cap reached before the end: up to the cut point, incomplete.
    let size_to_cut: usize = held[..43]
        .iter()
        .map(|c| c.chunk().len() + gongjian_sync::CHANGE_OVERHEAD)
        .sum();
    let capped = BatchLimits {
        max_bytes: 1 << 20,
        max_changes: 512,
        hard_max_bytes: size_to_cut + 300,
        ..BatchLimits::default()
    };
    let part = edge_signed_batches(causal_order(held.clone()), capped);
    assert!(!part.complete);
    assert_eq!(part.changes(), 43);
    // A cap reached before any cut point: nothing, incomplete.
    let none = edge_signed_batches(
        causal_order(held),
        BatchLimits {
            hard_max_bytes: 2000,
            ..capped
        },
    );
    assert!(!none.complete);
    assert_eq!(none.changes(), 0);
    // What was sent is accepted whole.
    assert_eq!(fresh_node_takes(&f, &g, part.batches), 43);
}

/// A fresh node (the federation and genesis `g`) takes `batches`: each
/// goes in whole, nothing invalid, nothing waiting. Returns how many
/// changes of the document it then holds.
fn fresh_node_takes(
    f: &Fed,
    g: &gongjian_identity::SignedRecord,
    batches: Vec<Vec<Vec<u8>>>,
) -> u64 {
    let dir = tempdir().unwrap();
    let mut r = replica(dir.path(), f, None);
    r.insert_records(vec![g.clone()]).unwrap();
    let doc = gongjian_identity::DocId(g.hash());
    for batch in batches {
        let s = r.ingest_changes(compact(doc, batch)).unwrap();
        assert_eq!((s.invalid, s.pending), (0, 0), "{s:?}");
    }
    held(&mut r, &doc)
}

/// A batch of a `Changes` message read as the session reads it: each
/// change in its compact form, a change of `doc`.
fn compact(
    doc: gongjian_identity::DocId,
    batch: Vec<Vec<u8>>,
) -> Vec<gongjian_identity::SignedChange> {
    batch
        .iter()
        .map(|c| gongjian_identity::SignedChange::decode_compact(doc, c).unwrap())
        .collect()
}

/// How many changes of `doc` a node holds (the sum of its version vector).
fn held(r: &mut gongjian_engine::Replica, doc: &gongjian_identity::DocId) -> u64 {
    Host::have(r, doc).unwrap().values().map(|(s, _)| s).sum()
}

/// Two keys of one unit write concurrently, neither seeing the other; as
/// relayed only each one's last change is signed. Ordered by (seq, actor)
/// alone their runs would interleave with a cut point only at the very
/// end; the causal order continues an actor until its signature, so each
/// run is a batch of its own and a hard cap the size of one run suffices.
#[test]
fn concurrent_authors_runs_are_kept_together() {
    use gongjian_sync::{BatchLimits, causal_order, edge_signed_batches};
    let f = fed();
    let second = Secret::from_seed([92; 32]);
    let g = genesis(f.community_id, &f.community, &[second.public()]);
    let doc = gongjian_identity::DocId(g.hash());
    let mut a = Author::new(&f.community, 1, doc);
    let mut b = Author::new(&second, 1, doc);
    let n = 30;
    let mut held = Vec::new();
    for i in 0..n {
        for (who, author) in [("甲", &mut a), ("乙", &mut b)] {
            let c = author.put("标题", &format!("{who}{i}"));
            held.push(if i + 1 == n { c } else { c.without_signature() });
        }
    }
    let ordered = causal_order(held.clone());
    // Each actor's run is contiguous.
    let actors: Vec<_> = ordered.iter().map(|c| c.header().actor).collect();
    assert_eq!(
        actors[..n]
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1
    );
    assert_eq!(
        actors[n..]
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1
    );
    let run: usize = ordered[..n]
        .iter()
        .map(|c| c.chunk().len() + gongjian_sync::CHANGE_OVERHEAD)
        .sum();
    let other: usize = ordered[n..]
        .iter()
        .map(|c| c.chunk().len() + gongjian_sync::CHANGE_OVERHEAD)
        .sum();
    let answer = edge_signed_batches(
        ordered,
        BatchLimits {
            max_bytes: 1,
            max_changes: 1,
            hard_max_bytes: run.max(other) + 10,
            ..BatchLimits::default()
        },
    );
    assert!(answer.complete);
    assert_eq!(answer.changes(), 2 * n);
    assert_eq!(answer.batches.len(), 2);
    // What was sent is accepted whole by a fresh node.
    assert_eq!(fresh_node_takes(&f, &g, answer.batches), 2 * n as u64);
}

/// Both branches of a fork in one batch: each branch's newest change keeps
/// its signature (not only the actor's highest seq), so the receiver takes
/// both as vouched, sees the fork and keeps only what precedes it.
#[test]
fn a_forks_branches_in_one_batch_keep_their_signatures() {
    use gongjian_sync::{BatchLimits, causal_order, edge_signed_batches};
    let f = fed();
    let g = genesis(f.community_id, &f.community, &[]);
    let doc = gongjian_identity::DocId(g.hash());
    let mut a = Author::new(&f.community, 1, doc);
    let base = a.put("标题", "初稿");
    let mut b = Author::new(&f.community, 1, doc);
    b.merge(std::slice::from_ref(&base));
    let mut all = vec![base];
    all.extend((0..4).map(|i| a.put("标题", &format!("甲{i}"))));
    all.extend((0..2).map(|i| b.put("标题", &format!("乙{i}"))));
    let answer = edge_signed_batches(causal_order(all), BatchLimits::default());
    assert_eq!(answer.batches.len(), 1);
    let signed = answer.batches[0].iter().filter(|c| c[0] & 1 == 1).count();
    assert_eq!(signed, 2, "one signature per branch");
    assert_eq!(
        fresh_node_takes(&f, &g, answer.batches),
        1,
        "only the change before the fork"
    );
}

/// A fork with a third branch forked off the second: the node holding the
/// proof sends each branch at the fork as a line of its own, up to its
/// first signature, and nothing of the third (not needed to cut the key);
/// cutting the lines into small batches never leaves a run without its
/// signature. A node on the first branch takes all of it as proof
/// (nothing refused as unvouched) and is cut at the fork.
#[test]
fn a_branch_forked_off_a_branch_is_sent_as_a_line_of_its_own() {
    use gongjian_sync::{BatchLimits, causal_order, edge_signed_batches};
    let f = fed();
    let g = genesis(f.community_id, &f.community, &[]);
    let doc = gongjian_identity::DocId(g.hash());
    let mut a = Author::new(&f.community, 1, doc);
    let base = a.put("标题", "初稿");
    let first: Vec<_> = (0..3).map(|i| a.put("标题", &format!("甲{i}"))).collect();
    let mut b = Author::new(&f.community, 1, doc);
    b.merge(std::slice::from_ref(&base));
    let second: Vec<_> = (0..6).map(|i| b.put("标题", &format!("乙{i}"))).collect();
    let mut c = Author::new(&f.community, 1, doc);
    c.merge(&[base.clone(), second[0].clone(), second[1].clone()]);
    let third: Vec<_> = (0..3).map(|i| c.put("标题", &format!("丙{i}"))).collect();
    // As a relay would have passed them on: each line signed at its end.
    let edge = |run: &[gongjian_identity::SignedChange]| -> Vec<_> {
        let n = run.len();
        run.iter()
            .enumerate()
            .map(|(i, x)| {
                if i + 1 == n {
                    x.clone()
                } else {
                    x.without_signature()
                }
            })
            .collect()
    };
    let on_first = |dir: &std::path::Path| {
        let mut r = replica(dir, &f, None);
        r.insert_records(vec![g.clone()]).unwrap();
        let mut line = vec![base.clone()];
        line.extend(first.iter().cloned());
        assert_eq!(r.ingest_changes(line).unwrap().accepted, 4);
        r
    };
    let dir = tempdir().unwrap();
    let mut proof = on_first(dir.path());
    let mut rest = edge(&second);
    rest.extend(edge(&third));
    let s = proof.ingest_changes(rest).unwrap();
    assert_eq!((s.invalid, s.rejected), (0, 9), "{s:?}");

    let have = Host::have(&mut on_first(tempdir().unwrap().path()), &doc).unwrap();
    let groups = proof.answer_want(&doc, &have, &Default::default()).unwrap();
    let mut sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    sizes.sort();
    // The first branch came in one batch, so only its end kept a signature.
    assert_eq!(
        sizes,
        [3, 6],
        "each branch at the fork to its first signature, nothing more"
    );
    let small = BatchLimits {
        max_bytes: 1,
        max_changes: 2,
        ..BatchLimits::default()
    };
    let dir2 = tempdir().unwrap();
    let mut r = on_first(dir2.path());
    let mut rejected = 0;
    for group in groups {
        let answer = edge_signed_batches(causal_order(group), small);
        assert!(answer.complete);
        for batch in answer.batches {
            let s = r.ingest_changes(compact(doc, batch)).unwrap();
            assert_eq!((s.invalid, s.pending), (0, 0), "{s:?}");
            rejected += s.rejected;
        }
    }
    assert_eq!(rejected, 6, "the second branch, rejected");
    assert_eq!(
        held(&mut r, &doc),
        1,
        "cut at the fork: the first change only"
    );
}

/// A fork far down a long chain: 2,000 changes in common, then five on
/// each side. Asked by the other side, an answer that sends the actor's
/// chain from its first change stops at its cap long before the fork, and
/// the asker, holding all of that already, never learns of it; from the
/// highest back point of the `Want` where the chains agree (seq 981), the
/// same cap reaches the fork and the asker is cut there.
#[test]
fn a_fork_far_down_a_long_chain_is_found_from_a_back_point() {
    use gongjian_sync::{BatchLimits, back_seqs, causal_order, edge_signed_batches};
    let f = fed();
    let g = genesis(f.community_id, &f.community, &[]);
    let doc = gongjian_identity::DocId(g.hash());
    let mut a = Author::new(&f.community, 1, doc);
    let common: Vec<_> = (0..2000)
        .map(|i| a.put("标题", &format!("第{i}稿")))
        .collect();
    let mut b = Author::new(&f.community, 1, doc);
    b.merge(&common);
    let ours: Vec<_> = (0..5).map(|i| a.put("标题", &format!("甲{i}"))).collect();
    let theirs: Vec<_> = (0..5).map(|i| b.put("标题", &format!("乙{i}"))).collect();
    let node = |dir: &std::path::Path, tail: &[gongjian_identity::SignedChange]| {
        let mut r = replica(dir, &f, None);
        r.insert_records(vec![g.clone()]).unwrap();
        // In parts, as sync brings them: a signature every 50 changes,
        // where an answer may be cut.
        for part in common.chunks(50).chain([tail]) {
            let with_edge: Vec<_> = part
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i + 1 == part.len() {
                        c.clone()
                    } else {
                        c.without_signature()
                    }
                })
                .collect();
            assert_eq!(r.ingest_changes(with_edge).unwrap().accepted, part.len());
        }
        r
    };
    let (d1, d2) = (tempdir().unwrap(), tempdir().unwrap());
    let answerer = node(d1.path(), &ours);
    let mut asker = node(d2.path(), &theirs);
    let have = Host::have(&mut asker, &doc).unwrap();
    let actor = common[0].header().actor;
    assert_eq!(have[&actor].0, 2005);
    assert_eq!(back_seqs(2005), [981]);
    let mut back = gongjian_sync::Back::new();
    for seq in back_seqs(2005) {
        let h = Host::change_at(&mut asker, &doc, &actor, seq)
            .unwrap()
            .unwrap();
        back.entry(actor).or_default().push((seq, h));
    }
    // An answer cap that holds some 1,100 changes of this chain.
    let size: usize = common[..1100].iter().map(|c| c.chunk().len() + 70).sum();
    let limits = BatchLimits {
        max_answer_bytes: size,
        ..BatchLimits::default()
    };
    let take = |asker: &mut gongjian_engine::Replica, back: &gongjian_sync::Back| {
        let groups = answerer.answer_want(&doc, &have, back).unwrap();
        let mut forked = 0;
        for group in groups {
            for batch in edge_signed_batches(causal_order(group), limits).batches {
                let s = asker.ingest_changes(compact(doc, batch)).unwrap();
                assert_eq!(s.invalid, 0, "{s:?}");
                forked += s.forked;
            }
        }
        forked
    };
    assert_eq!(
        take(&mut asker, &Default::default()),
        0,
        "from the first change: the cap stops short"
    );
    assert_eq!(held(&mut asker, &doc), 2005, "nothing learnt");
    assert!(
        take(&mut asker, &back) > 0,
        "from the back point: the fork is found"
    );
    assert_eq!(held(&mut asker, &doc), 2000, "cut at the fork");
}

/// A community wrote `n` changes (relayed edge-signed: only the last keeps
/// its signature), and its street revoked its key with a cut after the
/// tenth.
struct Cut {
    f: Fed,
    g: gongjian_identity::SignedRecord,
    doc: gongjian_identity::DocId,
    all: Vec<gongjian_identity::SignedChange>,
    relayed: Vec<gongjian_identity::SignedChange>,
    revocation: gongjian_identity::SignedRecord,
}

fn cut_after_ten(n: usize) -> Cut {
    use gongjian_identity::{CutEntry, RecordBody, Revocation, RevocationCut, RevocationTarget};
    let f = fed();
    let g = genesis(f.community_id, &f.community, &[]);
    let doc = gongjian_identity::DocId(g.hash());
    let mut a = Author::new(&f.community, 1, doc);
    let all: Vec<_> = (0..n).map(|i| a.put("标题", &format!("第{i}稿"))).collect();
    let relayed: Vec<_> = all
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == n - 1 {
                c.clone()
            } else {
                c.without_signature()
            }
        })
        .collect();
    let revocation = Revocation {
        target: RevocationTarget::Key(f.community.public()),
        cut: RevocationCut {
            changes: vec![CutEntry::new(
                &doc,
                all[9].header().actor,
                10,
                all[9].hash(),
            )],
            records: vec![gongjian_identity::Blinded::of(&g.hash())],
        },
        reason: "密钥泄露".into(),
        issued_at: NOW,
    }
    .sign(&f.street);
    Cut {
        f,
        g,
        doc,
        all,
        relayed,
        revocation,
    }
}

/// A relay (the street) holding every change of `cut`, then its revocation.
fn relay_of(cut: &Cut, dir: &std::path::Path) -> gongjian_engine::Replica {
    let mut relay = replica(dir, &cut.f, Some((&cut.f.street, cut.f.street_id)));
    relay.insert_records(vec![cut.g.clone()]).unwrap();
    let s = relay.ingest_changes(cut.relayed.clone()).unwrap();
    assert_eq!(s.accepted, cut.all.len(), "{s:?}");
    relay.insert_records(vec![cut.revocation.clone()]).unwrap();
    relay
}

/// A relay took a key's fifteen changes with only the last signed (edge
/// signatures), then a revocation cut the key at its tenth. The relay
/// accepts the first ten, but holds no accepted signature vouching for
/// them: it sends the rejected run up to the signature with them, and a
/// fresh node accepts exactly the ten (and rejects the rest again), by
/// sync and by bundle alike. The key also forked after its tenth (another
/// five from the same seqs, rejected too): the run follows one branch's
/// hash links, never a mix of both that no signature would vouch for.
#[test]
fn a_prefix_kept_by_a_cut_is_passed_on_with_its_voucher() {
    use gongjian_sync::{BatchLimits, causal_order, edge_signed_batches};
    let cut = cut_after_ten(15);
    let relay_dir = tempdir().unwrap();
    let mut relay = relay_of(&cut, relay_dir.path());
    let Cut {
        f,
        g,
        doc,
        all,
        revocation,
        ..
    } = cut;
    let fresh = |dir: &std::path::Path| {
        let mut r = replica(dir, &f, None);
        r.insert_records(vec![g.clone(), revocation.clone()])
            .unwrap();
        r
    };

    assert_eq!(held(&mut relay, &doc), 10, "the cut keeps ten at the relay");
    let mut fork = Author::new(&f.community, 1, doc);
    fork.merge(&all[..10]);
    let other: Vec<_> = (0..5)
        .map(|i| {
            let c = fork.put("标题", &format!("另{i}稿"));
            if i == 4 { c } else { c.without_signature() }
        })
        .collect();
    let s = relay.ingest_changes(other).unwrap();
    assert_eq!((s.invalid, s.accepted, s.rejected), (0, 0, 5), "{s:?}");
    assert_eq!(held(&mut relay, &doc), 10);

    // What the relay sends: the ten, and the rejected run to the signature.
    let sent = relay.changes_to_send(&doc, &Default::default()).unwrap();
    assert_eq!(sent.len(), 15);
    let answer = edge_signed_batches(causal_order(sent), BatchLimits::default());
    assert!(answer.complete);
    assert_eq!(answer.changes(), 15, "nothing held back as unvouched");
    let dir = tempdir().unwrap();
    let mut r = fresh(dir.path());
    for batch in answer.batches {
        let s = r.ingest_changes(compact(doc, batch)).unwrap();
        assert_eq!((s.invalid, s.accepted, s.rejected), (0, 10, 5), "{s:?}");
    }
    assert_eq!(held(&mut r, &doc), 10);

    // The same through a bundle.
    let (bytes, _) = relay.export_bundle(f.district_id, None, NOW).unwrap();
    let dir2 = tempdir().unwrap();
    let mut r2 = fresh(dir2.path());
    r2.import_bundle(
        &gongjian_engine::Bundle::parse(&bytes).unwrap(),
        &dir2.path().join("scratch"),
        NOW,
    )
    .unwrap();
    assert_eq!(
        held(&mut r2, &doc),
        10,
        "the bundle carries the voucher too"
    );
}

/// A community whose street's key was revoked with a cut that leaves out
/// its certificate is refused at its hello; the hello it gets carries the
/// street's revocation, or its node never learns why and keeps what the
/// revocation cuts off.
#[test]
fn a_hello_carries_the_revocations_of_the_peers_certifiers() {
    use gongjian_identity::{RecordBody, Revocation, RevocationCut, RevocationTarget};
    let f = fed();
    let dir = tempdir().unwrap();
    let mut r = replica(dir.path(), &f, Some((&f.district, f.district_id)));
    let revocation = Revocation {
        target: RevocationTarget::Key(f.street.public()),
        cut: RevocationCut {
            changes: vec![],
            records: vec![],
        },
        reason: "街道密钥泄露".into(),
        issued_at: NOW,
    }
    .sign(&f.root);
    r.insert_records(vec![revocation.clone()]).unwrap();
    assert!(r.trust().admit(&f.community.public(), NOW).is_err());
    let hello = r.hello_records(&f.district.public(), &f.community.public(), 32, 8192, true);
    assert!(
        hello.iter().any(|h| h.hash() == revocation.hash()),
        "the street's revocation goes to the community"
    );
    // Not to a peer outside that branch of the tree.
    let hello = r.hello_records(&f.district.public(), &f.district.public(), 32, 8192, true);
    assert!(hello.iter().all(|h| h.hash() != revocation.hash()));

    // Forty certificates the district signed naming the street's key for
    // units it may not certify (any key that may sign records can sign
    // one), each ground to sort before the real one: the street's hello
    // still shows its valid path to the root.
    let dir = tempdir().unwrap();
    let mut r = replica(dir.path(), &f, Some((&f.street, f.street_id)));
    let forged: Vec<_> = (0..40)
        .map(|i| {
            let unit = format!("3201060020{:02}", i + 10).parse().unwrap();
            (0..)
                .map(|j| {
                    cert(
                        &f.district,
                        &f.street,
                        unit,
                        gongjian_identity::UnitKind::Community,
                        Some(f.street_id),
                        &format!("冒名社区{j}"),
                    )
                })
                .find(|c| c.hash() < f.records[1].hash())
                .unwrap()
        })
        .collect();
    r.insert_records(forged).unwrap();
    assert!(
        r.membership().len() >= 43,
        "the forged certificates are held"
    );
    let chain = r.cert_chain(&f.street.public());
    assert!(chain.len() <= 32);
    assert!(
        chain.iter().any(|c| c.hash() == f.records[1].hash()),
        "the street's own certificate is in its chain"
    );
}

/// `chunk` (an automerge change) with its `seq` set to `seq`: the header
/// rewritten, its checksum recomputed. The author's key can sign anything.
fn with_seq(chunk: &[u8], seq: u64) -> Vec<u8> {
    fn uleb(b: &[u8], at: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let x = b[*at];
            *at += 1;
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    fn put(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                return out.push(b);
            }
            out.push(b | 0x80);
        }
    }
    let mut at = 9;
    let len = uleb(chunk, &mut at) as usize;
    let body = &chunk[at..at + len];
    let mut i = 0;
    let deps = uleb(body, &mut i) as usize;
    i += 32 * deps;
    let actor = uleb(body, &mut i) as usize;
    i += actor;
    let start = i;
    uleb(body, &mut i);
    let mut new = body[..start].to_vec();
    put(&mut new, seq);
    new.extend_from_slice(&body[i..]);
    let mut len = Vec::new();
    put(&mut len, new.len() as u64);
    let hash = gongjian_identity::Hash::of_parts(&[&[1], &len, &new]);
    let mut out = chunk[..4].to_vec();
    out.extend_from_slice(&hash.as_bytes()[..4]);
    out.push(1);
    out.extend_from_slice(&len);
    out.extend_from_slice(&new);
    out
}

/// The rejected run a cut leaves is found by its hash links, one seq a
/// step, backing off a dead end. A revoked key wrote, from the kept
/// prefix's last change, a change whose hash sorts before the kept chain's
/// and then a signed one that skips a seq, and a signed change that depends
/// on the prefix's last but goes back to seq 5 (it may sign anything).
/// And a longer branch, signed at its third change, ground to sort first.
/// Taken step by seq, first candidate only, the run ended unsigned at the
/// first branch and the prefix, unvouched, was held back. Any hash link
/// taken as a step, the seq-5 change was the cheapest run: the receiver
/// keeps an actor's changes up to its highest signed seq, so seqs 6 to 10
/// went out unvouched. Depth first, the long branch went. The run is the
/// cheapest of those one seq a step: the kept chain's own next two.
#[test]
fn a_voucher_run_is_found_by_its_hash_links() {
    use gongjian_identity::SignedChange;
    use gongjian_sync::{BatchLimits, causal_order, edge_signed_batches};
    let cut = cut_after_ten(12);
    let relay_dir = tempdir().unwrap();
    let mut relay = relay_of(&cut, relay_dir.path());
    let Cut {
        f,
        g,
        doc,
        all,
        revocation,
        ..
    } = cut;
    // The branch: a change at seq 11 whose hash sorts before the kept
    // chain's, then a signed one at seq 13 that depends on it.
    let (b11, b13) = (0..)
        .find_map(|i| {
            let mut b = Author::new(&f.community, 1, doc);
            b.merge(&all[..10]);
            let b11 = b.put("标题", &format!("支{i}"));
            if b11.hash() >= all[10].hash() {
                return None;
            }
            let b12 = b.put("标题", "跳号");
            let b13 = SignedChange::sign(doc, with_seq(b12.chunk(), 13), &f.community).unwrap();
            Some((b11.without_signature(), b13))
        })
        .unwrap();
    assert_eq!(b13.header().seq, 13);
    assert!(b13.header().deps.contains(&b11.hash()));
    let back = {
        let mut b = Author::new(&f.community, 1, doc);
        b.merge(&all[..10]);
        let c = b.put("标题", "回到第五");
        SignedChange::sign(doc, with_seq(c.chunk(), 5), &f.community).unwrap()
    };
    assert_eq!(back.header().seq, 5);
    assert!(back.header().deps.contains(&all[9].hash()));

    // And a longer branch that does reach a signature (three changes,
    // the last signed), ground to sort first: the kept chain's own two
    // are fewer bytes.
    let long: Vec<_> = (0..)
        .find_map(|i| {
            let mut b = Author::new(&f.community, 1, doc);
            b.merge(&all[..10]);
            let l11 = b.put("标题", &format!("长{i}"));
            (l11.hash() < all[10].hash()).then(|| {
                vec![
                    l11.without_signature(),
                    b.put("标题", "长二").without_signature(),
                    b.put("标题", "长三"),
                ]
            })
        })
        .unwrap();

    let s = relay.ingest_changes(vec![b11, b13, back]).unwrap();
    assert_eq!((s.invalid, s.accepted, s.rejected), (0, 0, 3), "{s:?}");
    let s = relay.ingest_changes(long).unwrap();
    assert_eq!((s.invalid, s.accepted, s.rejected), (0, 0, 3), "{s:?}");
    assert_eq!(held(&mut relay, &doc), 10);

    let sent = relay.changes_to_send(&doc, &Default::default()).unwrap();
    assert_eq!(sent.len(), 12, "the ten and a run of two to a signature");
    assert!(
        sent[10..]
            .iter()
            .zip(&all[10..])
            .all(|(a, b)| a.hash() == b.hash())
    );
    let answer = edge_signed_batches(causal_order(sent), BatchLimits::default());
    let dir = tempdir().unwrap();
    let mut r = replica(dir.path(), &f, None);
    r.insert_records(vec![g, revocation]).unwrap();
    for batch in answer.batches {
        let s = r.ingest_changes(compact(doc, batch)).unwrap();
        assert_eq!((s.invalid, s.accepted), (0, 10), "{s:?}");
    }
    assert_eq!(held(&mut r, &doc), 10);
}

/// An answer stops at its byte cap (at a cut point, incomplete); asking
/// again from the new version vector brings the rest, and the two parts
/// together are the whole.
#[test]
fn a_large_answer_comes_in_parts() {
    use gongjian_sync::{BatchLimits, causal_order, edge_signed_batches};
    let f = fed();
    let g = genesis(f.community_id, &f.community, &[]);
    let doc = gongjian_identity::DocId(g.hash());
    let mut a = Author::new(&f.community, 1, doc);
    let all: Vec<_> = (0..60)
        .map(|i| a.put("标题", &format!("第{i}稿")))
        .collect();
    let src_dir = tempdir().unwrap();
    let mut src = replica(src_dir.path(), &f, None);
    src.insert_records(vec![g.clone()]).unwrap();
    // One at a time, so every change keeps its signature and can end a
    // batch (in one batch only the newest and the checkpoints would).
    for c in &all {
        src.ingest_changes(vec![c.clone()]).unwrap();
    }
    let limits = BatchLimits {
        max_bytes: 1,
        max_changes: 10,
        max_answer_bytes: 4000,
        ..BatchLimits::default()
    };
    let dir = tempdir().unwrap();
    let mut r = replica(dir.path(), &f, None);
    r.insert_records(vec![g]).unwrap();
    let mut parts = 0;
    loop {
        let have = Host::have(&mut r, &doc).unwrap();
        let have = have.into_iter().map(|(a, (s, _))| (a, s)).collect();
        let sent = src.changes_to_send(&doc, &have).unwrap();
        let answer = edge_signed_batches(causal_order(sent), limits);
        parts += 1;
        assert!(answer.changes() > 0);
        assert!(answer.bytes() < 4000 + 2000, "{} B", answer.bytes());
        for b in answer.batches {
            let s = r.ingest_changes(compact(doc, b)).unwrap();
            assert_eq!((s.invalid, s.pending), (0, 0));
        }
        if answer.complete {
            break;
        }
        assert!(parts < 60, "each part moves on");
    }
    assert!(
        parts > 2,
        "a 60-change document over a 4 kB cap: {parts} parts"
    );
    assert_eq!(held(&mut r, &doc), 60);
}

/// Frames of several peers folded into one ingest: each frame is told what
/// became of its own changes, as if it had been ingested alone after the
/// frames before it. A forged frame's changes are invalid for that frame
/// only; a change sent twice counts for the first frame that brought it;
/// a change waiting for its dependency counts as pending where it came.
#[test]
fn folded_frames_each_get_their_own_summary() {
    let (_dir, f, mut r, doc_a) = community_doc();
    let g = genesis(f.street_id, &f.street, &[]);
    let doc_b = gongjian_identity::DocId(g.hash());
    r.insert_records(vec![g]).unwrap();
    let mut a = Author::new(&f.community, 1, doc_a);
    let mut b = Author::new(&f.street, 1, doc_b);
    let ca: Vec<_> = (0..5).map(|i| a.put("标题", &format!("甲{i}"))).collect();
    let cb: Vec<_> = (0..4).map(|i| b.put("标题", &format!("乙{i}"))).collect();
    // The street's last change with its own signature flipped.
    let mut bytes = cb[3].encode();
    bytes[1 + 1 + 1 + 32 + 32 + 10] ^= 0x01;
    let forged = gongjian_identity::SignedChange::decode(&bytes).unwrap();
    let frames = vec![
        ca[..3].to_vec(),
        vec![cb[0].clone(), cb[1].clone(), cb[2].clone(), forged],
        // Two already in the first frame, and the community's last one
        // without the fourth it depends on.
        vec![ca[1].clone(), ca[2].clone(), ca[4].clone()],
    ];
    let s = r.ingest_folded(frames).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(
        (s[0].accepted, s[0].invalid, s[0].pending),
        (3, 0, 0),
        "{s:?}"
    );
    // The frame's newest signature fails, so each of that frame's is
    // checked on its own: the street's first three hold theirs, so only the
    // forged one is refused (the other frames are not checked again).
    assert_eq!((s[1].accepted, s[1].invalid), (3, 1), "{s:?}");
    assert_eq!(
        (s[2].accepted, s[2].pending, s[2].invalid),
        (0, 1, 0),
        "{s:?}"
    );
    // The fourth change comes alone and releases the pending fifth (the
    // summary counts the changes the frame brought).
    let s = r.ingest_folded(vec![vec![ca[3].clone()]]).unwrap();
    assert_eq!(s[0].accepted, 1, "{s:?}");
    assert_eq!(value(&r, &doc_a, "标题").as_deref(), Some("甲4"));
    assert_eq!(value(&r, &doc_b, "标题").as_deref(), Some("乙2"));
    // A forged copy in one frame is judged in that frame alone, even when
    // another frame's newer signed change vouches for the same change.
    let more: Vec<_> = (5..8).map(|i| a.put("标题", &format!("甲{i}"))).collect();
    let mut bytes = more[0].encode();
    bytes[1 + 1 + 1 + 32 + 32 + 10] ^= 0x01;
    let forged = gongjian_identity::SignedChange::decode(&bytes).unwrap();
    let s = r.ingest_folded(vec![vec![forged], more.clone()]).unwrap();
    assert_eq!((s[0].accepted, s[0].invalid), (0, 1), "{s:?}");
    assert_eq!((s[1].accepted, s[1].invalid), (3, 0), "{s:?}");
    assert_eq!(value(&r, &doc_a, "标题").as_deref(), Some("甲7"));
    // One frame brings a change unsigned (vouched for by the next), another
    // brings it signed: the signed copy is the one stored, as if the
    // frames had come one after the other.
    let pair: Vec<_> = (8..10).map(|i| a.put("标题", &format!("甲{i}"))).collect();
    let frames = vec![
        vec![pair[0].without_signature(), pair[1].clone()],
        vec![pair[0].clone()],
    ];
    let s = r.ingest_folded(frames).unwrap();
    assert_eq!((s[0].accepted, s[1].accepted), (2, 0), "{s:?}");
    let stored = r.store().change(&doc_a, &pair[0].hash()).unwrap().unwrap();
    assert!(stored.signature().is_some(), "the signed copy is kept");
    // The street's fourth, with its signature, is taken as a fresh change.
    let s = r.ingest_folded(vec![vec![cb[3].clone()], vec![]]).unwrap();
    assert_eq!((s[0].accepted, s[1]), (1, Default::default()), "{s:?}");
}

/// Changes of a sync message that do not decode never reach ingest; the
/// session reports them, and they count in the node's metrics under the
/// label ingest uses for the malformed changes it refuses.
#[test]
fn malformed_changes_of_a_message_count_in_the_metrics() {
    let (_dir, _f, mut r, _doc) = community_doc();
    assert_eq!(r.counters().invalid.get("malformed"), None);
    r.changes_malformed(3);
    assert_eq!(r.counters().invalid.get("malformed"), Some(&3));
}

/// What waits in quarantine is found from the quarantine itself (what new
/// records re-evaluate), and it is the documents whose metadata counts
/// quarantined changes.
#[test]
fn quarantined_documents_are_read_from_the_quarantine() {
    let (_dir, f, mut r, doc) = community_doc();
    assert!(r.store().quarantined_docs().unwrap().is_empty());
    let mut a = Author::new(&f.community, 1, doc);
    let _c1 = a.put("k", "一");
    let c2 = a.put("k", "二");
    let c3 = a.put("k", "三");
    // Its dependency never came: both wait.
    r.ingest(wire(&[c2, c3])).unwrap();
    let held = r.store().quarantined_docs().unwrap();
    assert_eq!(held, std::collections::BTreeSet::from([doc]));
    let with_count: std::collections::BTreeSet<_> = r
        .store()
        .docs()
        .unwrap()
        .into_iter()
        .filter(|(_, m)| m.quarantined > 0)
        .map(|(d, _)| d)
        .collect();
    assert_eq!(held, with_count);
}

/// One chunk can be a change of two documents (an actor writing the same
/// first edit to two in the same second): folded together, each frame
/// counts its own document's copy as accepted, so each document is
/// announced and its rows refreshed.
#[test]
fn the_same_change_in_two_documents_counts_for_each_frame() {
    let (_dir, f, mut r, doc_a) = community_doc();
    let g = genesis_at(f.community_id, &f.community, NOW + 1);
    let doc_c = gongjian_identity::DocId(g.hash());
    r.insert_records(vec![g]).unwrap();
    let ca = Author::new(&f.community, 1, doc_a).put("标题", "同一句话");
    let cc = Author::new(&f.community, 1, doc_c).put("标题", "同一句话");
    assert_eq!(ca.hash(), cc.hash(), "one chunk, signed for two documents");
    let s = r.ingest_folded(vec![vec![ca], vec![cc]]).unwrap();
    assert_eq!((s[0].accepted, s[1].accepted), (1, 1), "{s:?}");
    for doc in [&doc_a, &doc_c] {
        assert_eq!(value(&r, doc, "标题").as_deref(), Some("同一句话"));
    }
}
