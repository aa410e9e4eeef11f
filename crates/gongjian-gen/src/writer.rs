//! Writing documents as a unit would: `Open` holds one document being
//! written (its automerge state and signed changes); `Gen` holds the run
//! (the seeded randomness, the records and documents made, the counts).

use automerge::Automerge;
use gongjian_identity::{
    ActorId, Certificate, DocId, DocType, Genesis, RecordBody, Secret, SignedChange, SignedRecord,
    UnitId,
};
use gongjian_model::{Act, ActKind, ActsDoc, ItemFields, ItemStatus, ListDoc, ListKind, Target};
use rand::RngExt;
use rand::rngs::StdRng;

use crate::{DAY, Doc, GenError, Summary, Unit, gen_err};

/// A document being written: its automerge state and its changes so far.
pub(crate) struct Open {
    pub(crate) id: DocId,
    pub(crate) unit: UnitId,
    pub(crate) doc_type: DocType,
    pub(crate) secret: Secret,
    pub(crate) am: Automerge,
    pub(crate) changes: Vec<SignedChange>,
    pub(crate) epoch2: bool,
}

impl Open {
    fn new(
        unit: &Unit,
        doc_type: DocType,
        parties: Vec<UnitId>,
        created_at: u64,
    ) -> (Open, SignedRecord) {
        let genesis = Genesis {
            doc_type,
            unit: unit.id,
            parties,
            created_at,
            write_keys: vec![unit.secret.public()],
        }
        .sign(&unit.secret);
        let actor = ActorId {
            key: unit.secret.public(),
            epoch: 1,
        };
        let open = Open {
            id: DocId(genesis.hash()),
            unit: unit.id,
            doc_type,
            secret: unit.secret.clone(),
            am: Automerge::new().with_actor(automerge::ActorId::from(actor.to_bytes())),
            changes: Vec::new(),
            epoch2: false,
        };
        (open, genesis)
    }

    /// One local change made by `edit`, signed.
    pub(crate) fn commit<E: std::fmt::Display>(
        &mut self,
        edit: impl FnOnce(&mut Automerge) -> Result<Vec<u8>, E>,
    ) -> Result<(), GenError> {
        let chunk = edit(&mut self.am).map_err(|e| gen_err(self.what(), e))?;
        let c = SignedChange::sign(self.id, chunk, &self.secret)
            .map_err(|e| gen_err(self.what(), e))?;
        self.changes.push(c);
        Ok(())
    }

    /// Two edits made at the same time: `here` on this device, `there` on
    /// the owner's second device (the same key, another actor), then
    /// merged as sync would.
    pub(crate) fn concurrent<E: std::fmt::Display>(
        &mut self,
        here: impl FnOnce(&mut Automerge) -> Result<Vec<u8>, E>,
        there: impl FnOnce(&mut Automerge) -> Result<Vec<u8>, E>,
    ) -> Result<(), GenError> {
        let second = ActorId {
            key: self.secret.public(),
            epoch: 2,
        };
        let mut fork = self
            .am
            .fork()
            .with_actor(automerge::ActorId::from(second.to_bytes()));
        let chunk = there(&mut fork).map_err(|e| gen_err(self.what(), e))?;
        let theirs = SignedChange::sign(self.id, chunk, &self.secret)
            .map_err(|e| gen_err(self.what(), e))?;
        self.commit(here)?;
        self.changes.push(theirs);
        self.am
            .merge(&mut fork)
            .map_err(|e| gen_err(self.what(), e))?;
        self.epoch2 = true;
        Ok(())
    }

    pub(crate) fn what(&self) -> String {
        format!("{:?} of {}", self.doc_type, self.unit)
    }

    pub(crate) fn close(self) -> Doc {
        Doc {
            id: self.id,
            unit: self.unit,
            doc_type: self.doc_type,
            changes: self.changes,
        }
    }
}

/// Shares `total` among `n` slots as evenly as possible.
pub(crate) fn share(total: usize, n: usize, i: usize) -> usize {
    total / n + usize::from(i < total % n)
}

/// A valid unified social credit code from a 17-character prefix.
pub(crate) fn credit_code(prefix17: &str) -> Result<UnitId, GenError> {
    "0123456789ABCDEFGHJKLMNPQRTUWXY"
        .chars()
        .find_map(|c| format!("{prefix17}{c}").parse().ok())
        .ok_or_else(|| {
            gen_err(
                "a credit code",
                format!("no check character fits {prefix17}"),
            )
        })
}

pub(crate) fn cert(signer: &Secret, u: &Unit, now: u64) -> SignedRecord {
    Certificate {
        subject: u.secret.public(),
        unit: u.id,
        kind: u.kind,
        parent: u.parent,
        name: u.name.clone(),
        not_before: now - 400 * DAY as u64,
        not_after: now + 3 * 365 * DAY as u64,
    }
    .sign(signer)
}

pub(crate) struct Gen {
    pub(crate) rng: StdRng,
    pub(crate) now: i64,
    pub(crate) start: i64,
    pub(crate) records: Vec<SignedRecord>,
    pub(crate) docs: Vec<Doc>,
    pub(crate) summary: Summary,
    pub(crate) genesis_clock: u64,
    pub(crate) empty: std::collections::BTreeSet<DocId>,
    /// Agreements written so far (the first few get a second party).
    pub(crate) agreement_no: usize,
}

impl Gen {
    pub(crate) fn new(rng: StdRng, now: u64) -> Gen {
        Gen {
            rng,
            now: now as i64,
            start: now as i64 - 365 * DAY,
            records: Vec::new(),
            docs: Vec::new(),
            summary: Summary::default(),
            genesis_clock: 0,
            empty: Default::default(),
            agreement_no: 0,
        }
    }

    pub(crate) fn open(&mut self, unit: &Unit, t: DocType, parties: Vec<UnitId>) -> Open {
        self.genesis_clock += 1;
        let (open, genesis) = Open::new(unit, t, parties, self.start as u64 + self.genesis_clock);
        self.records.push(genesis);
        open
    }

    pub(crate) fn close(&mut self, open: Open) {
        if open.epoch2 {
            self.summary.concurrent_edits += 1;
        }
        if open.changes.is_empty() {
            // A document is created on first write; an empty one is dropped
            // with its genesis (filtered out once, at the end).
            self.empty.insert(open.id);
            return;
        }
        self.docs.push(open.close());
    }

    /// A time in the past year, and one a little after `t`.
    pub(crate) fn when(&mut self) -> i64 {
        self.start + self.rng.random_range(0..(self.now - self.start - 30 * DAY))
    }
    pub(crate) fn after(&mut self, t: i64) -> i64 {
        (t + self.rng.random_range(DAY..20 * DAY)).min(self.now - 1)
    }

    pub(crate) fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.rng.random_range(0..xs.len())]
    }

    fn count_item(&mut self, kind: ListKind) {
        *self
            .summary
            .items
            .entry(kind.as_str().to_owned())
            .or_default() += 1;
    }

    fn count_act(&mut self, kind: ActKind) {
        *self
            .summary
            .acts
            .entry(kind.as_str().to_owned())
            .or_default() += 1;
    }

    /// Adds a record and gives it an edit history: a description edited
    /// once or twice, sometimes a concurrent title edit from the owner's
    /// second device (both titles kept: a conflict the view shows).
    pub(crate) fn item(
        &mut self,
        doc: &mut Open,
        kind: ListKind,
        id: &str,
        fields: ItemFields,
        t: i64,
    ) -> Result<i64, GenError> {
        doc.commit(|am| ListDoc::new(am, kind).add(id, &fields, t))?;
        self.count_item(kind);
        let mut t = t;
        let edits = match self.rng.random_range(0..100) {
            0..45 => 0,
            45..85 => 1,
            _ => 2,
        };
        for n in 0..edits {
            t = self.after(t);
            let desc = ItemFields {
                description: Some(format!(
                    "{}（第{}次修订）",
                    fields.description.clone().unwrap_or_default(),
                    n + 1
                )),
                ..ItemFields::default()
            };
            doc.commit(|am| ListDoc::new(am, kind).edit(id, &desc, t))?;
        }
        if self.rng.random_bool(0.04) {
            t = self.after(t);
            let title = fields.title.clone().unwrap_or_default();
            let here = ItemFields {
                title: Some(format!("{title}（更新）")),
                ..ItemFields::default()
            };
            let there = ItemFields {
                title: Some(format!("{title}（补充）")),
                ..ItemFields::default()
            };
            doc.concurrent(
                |am| ListDoc::new(am, kind).edit(id, &here, t),
                |am| ListDoc::new(am, kind).edit(id, &there, t),
            )?;
        }
        Ok(t)
    }

    pub(crate) fn status(
        &mut self,
        doc: &mut Open,
        kind: ListKind,
        id: &str,
        status: ItemStatus,
        t: i64,
    ) -> Result<(), GenError> {
        doc.commit(|am| ListDoc::new(am, kind).set_status(id, status, t))
    }

    /// A fresh act id: `prefix` and the number of acts written so far.
    pub(crate) fn act_id(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.summary.acts.values().sum::<usize>())
    }

    pub(crate) fn act(&mut self, acts: &mut Open, act: Act) -> Result<(), GenError> {
        let (unit, t) = (acts.unit, act.created_at);
        self.count_act(act.kind);
        acts.commit(|am| ActsDoc { doc: am, unit }.record(&act, t))
    }
}

pub(crate) fn target(owner: &Open, record: &str) -> Target {
    Target {
        unit: owner.unit,
        doc: owner.id,
        record: record.to_owned(),
    }
}
