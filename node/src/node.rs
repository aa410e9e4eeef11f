//! Opening a data dir's store and replica for a command.

use anyhow::Context;
use gongjian_engine::{EngineError, LocalIdentity, Replica};
use gongjian_identity::{DocId, DocType, UnitId};
use gongjian_store::{Store, StoreError};

use crate::config::{Checked, DataDir};
use crate::exit::{Coded, Exit};

/// Unix seconds, the same clock as the daemon's (`GONGJIAN_FAKE_NOW`
/// overrides it).
pub fn now() -> u64 {
    gongjian_net::now_secs()
}

/// An opened node: its config, its replica, its data dir.
#[derive(Debug)]
pub struct Opened {
    pub dir: DataDir,
    pub checked: Checked,
    pub replica: Replica,
}

pub fn open_store(dir: &DataDir) -> anyhow::Result<Store> {
    Store::open(&dir.db()).map_err(|e| {
        let exit = match e {
            StoreError::Locked { .. } => Exit::Locked,
            StoreError::Missing { .. } => Exit::DataDir,
            _ => Exit::Failure,
        };
        anyhow::Error::new(e).context(exit)
    })
}

pub fn open(dir: &DataDir) -> anyhow::Result<Opened> {
    let (_, checked) = dir.load_config()?;
    let secret = dir.secret()?;
    let store = open_store(dir)?;
    let replica = Replica::open(
        store,
        checked.trust_root,
        Some(LocalIdentity {
            secret,
            unit: checked.unit,
        }),
    )
    .context("opening the replica")
    .code(Exit::Failure)?;
    Ok(Opened {
        dir: dir.clone(),
        checked,
        replica,
    })
}

/// This unit's document of `doc_type` (the first by id), created on first
/// use.
pub fn own_doc(r: &mut Replica, unit: &UnitId, doc_type: DocType) -> Result<DocId, EngineError> {
    // Only a document this node's key may write: a parent may mint one in
    // this unit's name with its own key (PROTOCOL.md §6), and picking that
    // would refuse every write. Documents this key is a genesis writer of
    // come first, then by id, so every node of the unit picks the same.
    let me = r.actor()?.key;
    let mut docs: Vec<(bool, DocId)> = r
        .documents_of(unit, doc_type)
        .into_iter()
        .filter(|d| r.trust().write_keys(d).is_some_and(|k| k.contains(&me)))
        .map(|d| {
            let mine = r
                .trust()
                .genesis(&d)
                .is_some_and(|g| g.write_keys.contains(&me));
            (!mine, d)
        })
        .collect();
    docs.sort();
    match docs.first() {
        Some((_, d)) => Ok(*d),
        None => r.create_document(doc_type, now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gongjian_engine::LocalIdentity;
    use gongjian_identity::{Certificate, Genesis, RecordBody, Secret, UnitKind};

    /// A street certifies a second key of its own for its community and
    /// mints needs documents in the community's name with it (PROTOCOL.md
    /// §6 allows it), some sorting first: the community's node still writes
    /// to a document of its own, and those documents are flagged.
    #[test]
    fn own_doc_never_picks_a_document_this_key_may_not_write() {
        let t = 1_790_000_000u64;
        let root = Secret::from_seed([1; 32]);
        let street = Secret::from_seed([3; 32]);
        let community = Secret::from_seed([4; 32]);
        let (sid, cid): (UnitId, UnitId) = (
            "320106002000".parse().unwrap(),
            "320106002001".parse().unwrap(),
        );
        let cert = |signer: &Secret, subject: &Secret, unit, kind, parent| {
            Certificate {
                subject: subject.public(),
                unit,
                kind,
                parent,
                name: "单位".into(),
                not_before: t - 100,
                not_after: t + 86_400 * 365,
            }
            .sign(signer)
        };
        let parents_key = Secret::from_seed([5; 32]);
        let records = vec![
            cert(
                &root,
                &street,
                sid,
                UnitKind::Street,
                Some("320106000000".parse().unwrap()),
            ),
            cert(&street, &community, cid, UnitKind::Community, Some(sid)),
        ];
        let second = Certificate {
            not_before: t - 50,
            ..cert(&street, &parents_key, cid, UnitKind::Community, Some(sid))
                .open::<Certificate>()
                .unwrap()
        }
        .sign(&street);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        store.bump_epoch(1).unwrap();
        let mut r = Replica::open(
            store,
            root.public(),
            Some(LocalIdentity {
                secret: community.clone(),
                unit: cid,
            }),
        )
        .unwrap();
        r.insert_records(records).unwrap();
        r.insert_records(vec![second]).unwrap();
        // Street-minted documents until one sorts before any the
        // community could make.
        let mut minted = Vec::new();
        for k in 0..8u64 {
            let g = Genesis {
                doc_type: DocType::Needs,
                unit: cid,
                parties: vec![],
                created_at: t + k,
                write_keys: vec![parents_key.public()],
            }
            .sign(&parents_key);
            minted.push(DocId(g.hash()));
            r.insert_records(vec![g]).unwrap();
        }
        assert_eq!(r.documents_of(&cid, DocType::Needs).len(), 8);
        let d = own_doc(&mut r, &cid, DocType::Needs).unwrap();
        assert!(
            !minted.contains(&d),
            "a document the community's key may write"
        );
        assert!(r.trust().minted_by_other(&minted[0]));
        assert!(!r.trust().minted_by_other(&d));
        r.local_change(&d, t, |am| {
            gongjian_model::ListDoc::open(am, DocType::Needs)?.add(
                "n1",
                &gongjian_model::ItemFields {
                    title: Some("独居老人助餐".into()),
                    ..Default::default()
                },
                t as i64,
            )
        })
        .unwrap();
        assert_eq!(own_doc(&mut r, &cid, DocType::Needs).unwrap(), d, "stable");
    }
}
