//! The scrub behind `gongjian verify`: a healthy store checks clean; a
//! stored change whose signature no longer verifies (a flipped byte) is
//! found and named; repair drops the document, which then comes back whole
//! from a peer's copy.

mod common;

use common::*;
use gongjian_identity::SignedChange;
use gongjian_store::Batch;

#[test]
fn a_flipped_signature_is_found_and_repair_refetches_the_document() {
    let (_dir, fed, mut r, doc) = community_doc();
    let mut a = Author::new(&fed.community, 3, doc);
    let changes = vec![
        a.put("标题", "独居老人助餐"),
        a.put("类别", "助老"),
        a.put("片区", "颐和路"),
    ];
    // One at a time, so each is the newest of its batch and keeps its own
    // signature (in one batch only the last would: the others are vouched).
    for c in &changes {
        let report = r.ingest(wire(std::slice::from_ref(c))).unwrap();
        assert_eq!(report.accepted, vec![c.hash()]);
    }
    let before = heads(&r, &doc);

    let clean = r.scrub(false).unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!((clean.documents, clean.changes), (1, 3));
    assert_eq!(clean.signatures_checked, 3);

    // A byte of the second change's stored signature flips on disk.
    let mut bytes = changes[1].encode();
    bytes[1 + 1 + 1 + 32 + 32 + 10] ^= 0x01;
    let tampered = SignedChange::decode(&bytes).expect("the envelope still parses");
    let mut b = Batch::new();
    b.put_change(&tampered);
    r.store().commit_blocking(b).unwrap();

    let found = r.scrub(false).unwrap();
    assert_eq!(found.problems.len(), 1, "{found:?}");
    assert_eq!(found.problems[0].doc, Some(doc.to_string()));
    assert!(
        found.problems[0]
            .what
            .contains(&changes[1].hash().to_string()),
        "{found:?}"
    );
    assert!(found.dropped.is_empty(), "nothing dropped without repair");
    assert!(r.store().doc_meta(&doc).unwrap().is_some());

    let repaired = r.scrub(true).unwrap();
    assert_eq!(repaired.dropped, vec![doc.to_string()]);
    assert!(r.store().doc_meta(&doc).unwrap().is_none());
    assert!(r.store().doc_changes(&doc).unwrap().is_empty());
    assert!(
        r.trust().genesis(&doc).is_some(),
        "the genesis stays, so sync asks for the document again"
    );
    assert!(r.scrub(false).unwrap().is_clean());

    // A peer's copy brings it back whole.
    let report = r.ingest(wire(&changes)).unwrap();
    assert_eq!(report.accepted.len(), 3, "{report:?}");
    assert_eq!(heads(&r, &doc), before);
    assert!(r.scrub(false).unwrap().is_clean());
}

/// The daemon's scrub step walks the store a slice at a time; it drops a
/// corrupt document of another unit (peers hold it) but leaves one this
/// node writes in place, reported, for the operator. An index entry that
/// names another change is caught on read.
#[test]
fn the_scrub_step_drops_other_units_documents_but_not_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let f = fed();
    let mut r = replica(dir.path(), &f, Some((&f.community, f.community_id)));
    let own_genesis = genesis(f.community_id, &f.community, &[]);
    let own = gongjian_identity::DocId(own_genesis.hash());
    let other_genesis = genesis(f.street_id, &f.street, &[]);
    let other = gongjian_identity::DocId(other_genesis.hash());
    r.insert_records(vec![own_genesis, other_genesis]).unwrap();
    let mut flipped = Vec::new();
    for (doc, key) in [(own, &f.community), (other, &f.street)] {
        let mut a = Author::new(key, 1, doc);
        let c = a.put("标题", "楼道灯");
        assert_eq!(
            r.ingest(wire(std::slice::from_ref(&c)))
                .unwrap()
                .accepted
                .len(),
            1
        );
        let mut bytes = c.encode();
        bytes[1 + 1 + 1 + 32 + 32 + 10] ^= 0x01;
        let mut b = Batch::new();
        b.put_change(&SignedChange::decode(&bytes).unwrap());
        r.store().commit_blocking(b).unwrap();
        flipped.push(doc);
    }
    {
        use gongjian_sync::{Host, SetId};
        let offered = Host::items(&mut r, SetId::Docs, &f.district_id).unwrap();
        assert!(
            offered.iter().any(|i| i.key == *own.as_bytes()),
            "offered before"
        );
    }
    // One document a step: two steps cover the store, the second ends the pass.
    let (first, cursor) = r.scrub_step(None, 1, u64::MAX).unwrap();
    assert_eq!(first.documents, 1);
    assert!(cursor.is_some());
    let (second, end) = r.scrub_step(cursor, 1, u64::MAX).unwrap();
    assert_eq!(second.documents, 1);
    let (third, end) = match end {
        Some(c) => r.scrub_step(Some(c), 1, u64::MAX).unwrap(),
        None => (Default::default(), None),
    };
    assert_eq!(end, None, "the pass is complete");
    let dropped: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|s| s.dropped.clone())
        .collect();
    let kept: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|s| s.kept.clone())
        .collect();
    assert_eq!(dropped, vec![other.to_string()]);
    assert_eq!(kept, vec![own.to_string()]);
    // Kept but withheld: not offered to a peer that may see it, and its
    // changes not sent, until a scrub finds it clean.
    use gongjian_sync::{Host, SetId};
    let offered = Host::items(&mut r, SetId::Docs, &f.district_id).unwrap();
    assert!(
        offered.iter().all(|i| i.key != *own.as_bytes()),
        "{offered:?}"
    );
    let asked = Host::changes_after(
        &mut r,
        &own,
        &Default::default(),
        &Default::default(),
        &f.district_id,
    )
    .unwrap();
    assert!(asked.is_none());
    assert!(r.store().doc_meta(&other).unwrap().is_none());
    assert!(r.store().doc_meta(&own).unwrap().is_some(), "its own stays");
    assert!(!r.scrub(false).unwrap().is_clean(), "and is still reported");
    // The operator's repair drops it; this node's changes were in it, so it
    // writes under a new epoch from now on (a new write there must not take
    // seq 1 again under the actor whose seq 1 peers already hold).
    let epoch = r.actor().unwrap().epoch;
    let repaired = r.scrub(true).unwrap();
    assert_eq!(repaired.dropped, vec![own.to_string()]);
    assert!(r.actor().unwrap().epoch > epoch);
}

/// A record damaged on disk is found by the scrub and, while the verified
/// copy is in memory, written again from it; one damaged before the node
/// opened (so no verified copy) does not stop the node from opening, and
/// the scrub drops it for records sync to fetch again.
#[test]
fn a_corrupt_record_is_rewritten_from_memory_or_dropped_and_fetched_again() {
    let (dir, fed, mut r, doc) = community_doc();
    let key = doc.0; // the genesis: its hash is the document's id
    let original = r.store().record(&key).unwrap().unwrap();
    let damage = |r: &gongjian_engine::Replica| {
        let mut bytes = original.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01; // a byte of the signature
        let tampered = gongjian_identity::SignedRecord::decode(&bytes).unwrap();
        let mut b = Batch::new();
        b.put_record_under(&key, &tampered);
        r.store().commit_blocking(b).unwrap();
    };
    damage(&r);
    let found = r.scrub(false).unwrap();
    assert_eq!(found.problems.len(), 1, "{found:?}");
    assert!(
        found.problems[0].what.contains(&key.to_string()),
        "{found:?}"
    );

    let (step, next) = r.scrub_records_step(None, 1000).unwrap();
    assert_eq!(next, None, "one step covers the few records");
    assert_eq!(
        (step.problems.len(), step.rewritten, step.dropped),
        (1, 1, 0)
    );
    assert_eq!(r.store().record(&key).unwrap(), Some(original.clone()));
    assert!(r.scrub(false).unwrap().is_clean());

    // The document holds a change of its unit's.
    let mut a = Author::new(&fed.community, 3, doc);
    let c = a.put("标题", "独居老人助餐");
    let accepted = r.ingest(wire(std::slice::from_ref(&c))).unwrap().accepted;
    assert_eq!(accepted, vec![c.hash()]);

    // Damaged while the node was down: it opens all the same, without the
    // record (and without its document, which it cannot place yet).
    damage(&r);
    drop(r);
    let mut r = reopen(dir.path(), &fed);
    assert!(r.trust().genesis(&doc).is_none());
    let (step, _) = r.scrub_records_step(None, 1000).unwrap();
    assert_eq!((step.rewritten, step.dropped), (0, 1), "{step:?}");
    assert_eq!(r.store().record(&key).unwrap(), None);
    // Until it is back, its document waits, reported, not served, and its
    // changes are kept: not by the daemon's scrub step, not by a repair.
    let (step, _) = r.scrub_step(None, 100, 10_000).unwrap();
    assert!(step.dropped.is_empty(), "{step:?}");
    let after = r.scrub(true).unwrap();
    assert!(after.dropped.is_empty(), "{after:?}");
    assert_eq!(after.problems.len(), 1, "{after:?}");
    assert!(
        after.problems[0]
            .what
            .contains("genesis record is not held"),
        "{after:?}"
    );
    assert_eq!(r.store().doc_changes(&doc).unwrap().len(), 1);
    // A peer sends it again.
    r.insert_records(vec![original.clone()]).unwrap();
    assert!(r.trust().genesis(&doc).is_some());
    assert!(r.scrub(false).unwrap().is_clean());
    assert_eq!(heads(&r, &doc), vec![c.hash()]);

    // A record whose bytes are intact (its key is their hash) but that does
    // not verify is this build's rules, not damage: reported, never dropped.
    let mut bytes = original.encode();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let odd = gongjian_identity::SignedRecord::decode(&bytes).unwrap();
    let mut b = Batch::new();
    b.put_record_under(&odd.hash(), &odd);
    r.store().commit_blocking(b).unwrap();
    let (step, _) = r.scrub_records_step(None, 1000).unwrap();
    let counts = (step.problems.len(), step.rewritten, step.dropped);
    assert_eq!(counts, (1, 0, 0), "{step:?}");
    assert!(step.problems[0].what.contains("kept"), "{step:?}");
    assert_eq!(r.store().record(&odd.hash()).unwrap(), Some(odd));
}

/// The records' table file of a closed store, after flushing and compacting
/// every column family (so the records are in a table file, not the log).
/// Asserts a scrub report names a problem whose text contains `what`.
#[track_caller]
fn assert_problem(report: &gongjian_engine::ScrubReport, what: &str) {
    assert!(
        report.problems.iter().any(|p| p.what.contains(what)),
        "no problem with {what:?} in {report:?}"
    );
}

fn records_table_file(dir: &std::path::Path) -> std::path::PathBuf {
    table_file(dir, "records")
}

/// The table file of `family` after everything was flushed and compacted
/// into one.
fn table_file(dir: &std::path::Path, family: &str) -> std::path::PathBuf {
    let opts = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&opts, dir).unwrap();
    let db = rocksdb::DB::open_cf(&opts, dir, &names).unwrap();
    for n in &names {
        let cf = db.cf_handle(n).unwrap();
        db.flush_cf(&cf).unwrap();
        db.compact_range_cf(&cf, None::<&[u8]>, None::<&[u8]>);
    }
    let files: Vec<_> = db
        .live_files()
        .unwrap()
        .into_iter()
        .filter(|f| f.column_family_name == family)
        .collect();
    assert_eq!(files.len(), 1, "one table file after compaction");
    dir.join(files[0].name.trim_start_matches('/'))
}

/// Flips 32 bytes of `family`'s one table file at `1/at` of its length
/// (a damaged block RocksDB's checksums find); returns the file.
fn damage_table(dir: &std::path::Path, family: &str, at: usize) -> std::path::PathBuf {
    let sst = table_file(dir, family);
    let mut bytes = std::fs::read(&sst).unwrap();
    let mid = bytes.len() / at;
    for b in &mut bytes[mid..mid + 32] {
        *b ^= 0x5a;
    }
    std::fs::write(&sst, bytes).unwrap();
    sst
}

/// Three hundred needs documents of the community, each with `changes`
/// changes, ingested one document per call; returns them as sent.
fn three_hundred_documents(
    r: &mut gongjian_engine::Replica,
    fed: &Fed,
    changes: usize,
) -> Vec<(gongjian_identity::DocId, Vec<SignedChange>)> {
    use gongjian_identity::{DocId, DocType, Genesis, RecordBody};
    (0..300u64)
        .map(|i| {
            let g = Genesis {
                doc_type: DocType::Needs,
                unit: fed.community_id,
                parties: vec![],
                created_at: NOW + i,
                write_keys: vec![fed.community.public()],
            }
            .sign(&fed.community);
            let doc = DocId(g.hash());
            r.insert_records(vec![g]).unwrap();
            let mut a = Author::new(&fed.community, 1, doc);
            let cs: Vec<SignedChange> = (0..changes)
                .map(|k| a.put("标题", &format!("第{i}件第{k}稿")))
                .collect();
            assert_eq!(r.ingest(wire(&cs)).unwrap().accepted.len(), changes);
            (doc, cs)
        })
        .collect()
}

/// Damage RocksDB detects in the blocks of the documents' changes: the
/// daemon's scrub holds the families' compactions (one reading the damage
/// would leave the store read-only); `gongjian verify --repair` writes the
/// family again from what can be read, the damaged file kept aside, and
/// drops the documents that lost changes; a compaction then runs clean,
/// and a peer's changes bring every document back whole.
#[test]
fn damaged_blocks_of_changes_are_written_again_and_the_documents_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let fed = fed();
    let mut r = replica(dir.path(), &fed, None);
    let sent = three_hundred_documents(&mut r, &fed, 3);
    let heads_before: Vec<Vec<gongjian_identity::Hash>> =
        sent.iter().map(|(d, _)| heads(&r, d)).collect();
    drop(r);
    let sst = damage_table(dir.path(), "changes", 2);

    let mut r = reopen(dir.path(), &fed);
    assert_eq!(r.store().stats().unwrap().damaged, ["changes"]);
    let (step, _) = r.scrub_step(None, 1000, u64::MAX).unwrap();
    assert_problem(&step, "compactions held");
    let repaired = r.scrub(true).unwrap();
    assert_problem(&repaired, "column family changes: written again");
    let aside: Vec<_> = std::fs::read_dir(dir.path().join("salvage"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name())
        .collect();
    assert!(
        aside.contains(&sst.file_name().unwrap().to_owned()),
        "{aside:?}"
    );
    let after = r.scrub(false).unwrap();
    assert!(after.is_clean(), "{after:?}");
    let held = r.store().stats().unwrap();
    assert!(
        held.docs < 300 && held.docs > 200,
        "the damaged ones dropped: {held:?}"
    );
    drop(r);

    // The damaged file no longer read: a compaction, then a write, succeed.
    {
        let opts = rocksdb::Options::default();
        let names = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), &names).unwrap();
        let cf = db.cf_handle("changes").unwrap();
        db.compact_range_cf(&cf, None::<&[u8]>, None::<&[u8]>);
        db.put_cf(&cf, [0xff; 64], b"after").unwrap();
        db.delete_cf(&cf, [0xff; 64]).unwrap();
    }
    // A peer sends every document again: all whole.
    let mut r = reopen(dir.path(), &fed);
    for (doc, cs) in &sent {
        r.ingest(wire(cs)).unwrap();
        assert_eq!(heads(&r, doc).len(), 1);
    }
    let heads_after: Vec<Vec<gongjian_identity::Hash>> =
        sent.iter().map(|(d, _)| heads(&r, d)).collect();
    assert_eq!(heads_after, heads_before);
    assert_eq!(r.store().stats().unwrap().changes, 900);
    assert!(r.scrub(false).unwrap().is_clean());
}

/// Damage in the marks of documents whose application waits (a hub
/// defers it): the repair writes the family again, and since a mark lost
/// with the damage cannot be told from one never made, every document is
/// marked first; settling then applies each (again) and clears its mark.
#[test]
fn damaged_marks_of_unapplied_documents_are_written_again_and_every_document_settled() {
    let dir = tempfile::tempdir().unwrap();
    let fed = fed();
    let mut r = replica(dir.path(), &fed, None);
    r.defer_application(true);
    three_hundred_documents(&mut r, &fed, 2);
    // Half settled: their marks cleared (deletions in the family too).
    r.settle(300).unwrap();
    let marked = r.unapplied().unwrap();
    assert!(marked > 0 && marked < 300, "{marked}");
    drop(r);
    damage_table(dir.path(), "unapplied", 3);

    let mut r = reopen(dir.path(), &fed);
    assert_eq!(r.store().stats().unwrap().damaged, ["unapplied"]);
    let repaired = r.scrub(true).unwrap();
    assert_problem(&repaired, "column family unapplied: written again");
    assert!(r.store().stats().unwrap().damaged.is_empty());
    assert_eq!(r.unapplied().unwrap(), 300, "every document marked");
    let settled = r.settle(usize::MAX).unwrap();
    assert_eq!(settled.documents, 300);
    assert!(settled.changed.is_empty(), "nothing applies differently");
    assert_eq!(r.unapplied().unwrap(), 0);
    assert!(r.scrub(false).unwrap().is_clean());
}

/// Damage RocksDB itself detects in the records' blocks (a checksum that
/// fails) no longer stops the node: it opens with every record still
/// readable past the damaged block, the scrub reports it, and the
/// operator's repair writes the family again (the damaged file kept aside,
/// not destroyed); the records lost come back from a peer.
#[test]
fn damaged_blocks_of_records_are_read_past_and_the_records_written_again() {
    use gongjian_identity::{DocType, Genesis, RecordBody, SignedRecord};
    let dir = tempfile::tempdir().unwrap();
    let fed = fed();
    let mut r = replica(dir.path(), &fed, None);
    // Enough records for many 4 KiB blocks.
    let geneses: Vec<SignedRecord> = (0..400)
        .map(|i| {
            Genesis {
                doc_type: DocType::Needs,
                unit: fed.community_id,
                parties: vec![],
                created_at: NOW + i,
                write_keys: vec![fed.community.public()],
            }
            .sign(&fed.community)
        })
        .collect();
    r.insert_records(geneses.clone()).unwrap();
    let all = r.membership().len();
    assert_eq!(all, fed.records.len() + geneses.len());
    drop(r);

    let sst = records_table_file(dir.path());
    let mut bytes = std::fs::read(&sst).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 32] {
        *b ^= 0x5a;
    }
    std::fs::write(&sst, bytes).unwrap();

    let mut r = reopen(dir.path(), &fed);
    let held = r.membership().len();
    assert!(
        held < all && held > all * 3 / 4,
        "one block lost, the records past it read: {held} of {all}"
    );
    // The status counts on: the damaged family named, its count stopped.
    let stats = r.store().stats().unwrap();
    assert_eq!(stats.damaged, ["records"]);
    assert!(
        stats.records < all as u64 && stats.changes == 0,
        "{stats:?}"
    );
    let found = r.scrub(false).unwrap();
    assert_problem(&found, "column family records");
    assert!(
        r.store().records().is_err(),
        "nothing written without repair"
    );

    // The daemon's records scrub reports it and leaves the repair to the
    // operator: writing the family again drops its table files.
    let (step, next) = r.scrub_records_step(None, 1000).unwrap();
    assert!(step.unreadable && !step.rebuilt, "{step:?}");
    assert_eq!(next, None);
    assert!(r.store().records().is_err(), "still as it was");
    // `gongjian verify --repair` writes it again, the old file kept aside.
    let repaired = r.scrub(true).unwrap();
    assert_problem(&repaired, "written again");
    let kept = dir.path().join("salvage");
    let aside: Vec<_> = std::fs::read_dir(&kept)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name())
        .collect();
    assert_eq!(aside, [sst.file_name().unwrap()], "the damaged file kept");
    // Clean but for the documents whose geneses were in the lost block:
    // reported, their data kept until the geneses are back.
    let after = r.scrub(false).unwrap();
    assert_eq!(after.problems.len(), all - held, "{after:?}");
    assert!(
        after
            .problems
            .iter()
            .all(|p| p.what.contains("genesis record is not held")),
        "{after:?}"
    );
    assert_eq!(r.store().records().unwrap().len(), held);
    assert!(r.store().stats().unwrap().damaged.is_empty());

    // A peer sends what was lost.
    let mut everything = fed.records.clone();
    everything.extend(geneses);
    r.insert_records(everything).unwrap();
    assert_eq!(r.membership().len(), all);
    drop(r);
    let mut r = reopen(dir.path(), &fed);
    assert_eq!(r.membership().len(), all);
    assert_eq!(r.store().records().unwrap().len(), all);
    assert!(r.scrub(false).unwrap().is_clean());
}

/// A node whose own genesis record was lost (damaged records, read past at
/// open) still holds its document's changes but no longer knows the
/// document: it must not make a second list of the same kind beside it.
/// Making documents waits until the genesis is back from a peer.
#[test]
fn no_document_is_made_while_a_document_this_key_wrote_lacks_its_genesis() {
    use gongjian_engine::EngineError;
    use gongjian_identity::DocType;
    let dir = tempfile::tempdir().unwrap();
    let f = fed();
    let mut r = replica(dir.path(), &f, Some((&f.community, f.community_id)));
    let own_genesis = genesis(f.community_id, &f.community, &[]);
    let own = gongjian_identity::DocId(own_genesis.hash());
    r.insert_records(vec![own_genesis.clone()]).unwrap();
    let mut a = Author::new(&f.community, 1, own);
    let c = a.put("标题", "楼道灯");
    assert_eq!(r.ingest(wire(&[c])).unwrap().accepted.len(), 1);
    // The genesis is lost from the records; the document's data stays.
    let mut b = Batch::new();
    b.delete_record(&own_genesis.hash());
    r.store().commit_blocking(b).unwrap();
    drop(r);

    let mut r = reopen_with(dir.path(), &f, &f.community, f.community_id);
    assert!(r.trust().genesis(&own).is_none());
    // Judged again without its genesis (as after any revocation), its
    // changes go to quarantine: still this key's document.
    r.reevaluate_all().unwrap();
    assert_eq!(r.store().quarantined(&own).unwrap().len(), 1);
    let err = r.create_document(DocType::Needs, NOW).unwrap_err();
    assert!(
        matches!(&err, EngineError::GenesisMissing(d) if *d == own.to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("records sync"), "{err}");
    let records = r.membership().len();
    assert_eq!(
        r.store().records().unwrap().len(),
        records,
        "nothing was made"
    );

    // A peer sends the genesis back: the list is this unit's again, and
    // new documents can be made.
    r.insert_records(vec![own_genesis]).unwrap();
    assert!(r.trust().genesis(&own).is_some());
    r.create_document(DocType::Resources, NOW).unwrap();
}
