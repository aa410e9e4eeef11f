//! Membership: the grow-only set of certificates, revocations, key records,
//! recoveries and geneses, and its evaluation into [`Trust`].
//!
//! [`Membership::evaluate`] is a pure function of the set (`PROTOCOL.md`,
//! "Membership evaluation"): it walks the administrative tree top-down, so a
//! key's validity only ever depends on records of units above it, and the
//! result never depends on the order records arrived in.

use std::collections::{BTreeMap, BTreeSet};

use gongjian_identity::{
    Certificate, DocId, Genesis, Hash, PublicKey, RevocationCut, RevocationTarget, UnitId, UnitKind,
};

use crate::verified::{Body, VerifiedRecord};

/// The grow-only set of membership records a node holds.
#[derive(Debug, Clone)]
pub struct Membership {
    root: PublicKey,
    records: BTreeMap<Hash, VerifiedRecord>,
    /// Certificates by the key they name, valid or not (what a hello
    /// shows of a key's chain).
    by_subject: BTreeMap<PublicKey, BTreeSet<Hash>>,
}

impl Membership {
    pub fn new(root: PublicKey) -> Self {
        Membership {
            root,
            records: BTreeMap::new(),
            by_subject: BTreeMap::new(),
        }
    }

    pub fn root(&self) -> &PublicKey {
        &self.root
    }

    /// Adds a record; returns false if it was already held.
    pub fn insert(&mut self, record: VerifiedRecord) -> bool {
        if let Body::Certificate(c) = &record.body {
            self.by_subject
                .entry(c.subject)
                .or_default()
                .insert(record.hash);
        }
        self.records.insert(record.hash, record).is_none()
    }

    /// Takes a record out again: for a caller that tried records in place
    /// and found them refused (the set itself only grows).
    pub fn remove(&mut self, hash: &Hash) -> Option<VerifiedRecord> {
        let record = self.records.remove(hash)?;
        if let Body::Certificate(c) = &record.body
            && let Some(hs) = self.by_subject.get_mut(&c.subject)
        {
            hs.remove(hash);
            if hs.is_empty() {
                self.by_subject.remove(&c.subject);
            }
        }
        Some(record)
    }

    /// The certificates held that name `key`, valid or not.
    pub fn certificates_of(&self, key: &PublicKey) -> impl Iterator<Item = &VerifiedRecord> {
        self.by_subject
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|h| self.records.get(h))
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.records.contains_key(hash)
    }

    pub fn get(&self, hash: &Hash) -> Option<&VerifiedRecord> {
        self.records.get(hash)
    }

    pub fn records(&self) -> impl Iterator<Item = &VerifiedRecord> {
        self.records.values()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Evaluates the set: valid certificates, effective revocations, valid
    /// geneses and write keys.
    pub fn evaluate(&self) -> Trust {
        Evaluator::new(self).run()
    }
}

/// A unit as its valid certificates describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitInfo {
    pub unit: UnitId,
    pub kind: UnitKind,
    pub name: String,
    pub parent: Option<UnitId>,
    pub keys: BTreeSet<PublicKey>,
}

#[derive(Debug, Clone)]
struct ValidCert {
    hash: Hash,
    signer: PublicKey,
    cert: Certificate,
}

/// Why a certificate chain does not admit a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertChainError {
    #[error("no certificate for key {0} chains to the pinned trust root")]
    NotRooted(PublicKey),
    #[error("key {key} is revoked (revocation {revocation})")]
    Revoked { key: PublicKey, revocation: Hash },
    #[error("certificate of {unit} ({name}) expired at {not_after} (now {now})")]
    Expired {
        unit: UnitId,
        name: String,
        not_after: u64,
        now: u64,
    },
    #[error("certificate of {unit} ({name}) is not valid before {not_before} (now {now})")]
    NotYetValid {
        unit: UnitId,
        name: String,
        not_before: u64,
        now: u64,
    },
}

/// One viewer's audience checks over many documents ([`Trust::audience`]):
/// whether it may see each unit, walked up the tree once per unit rather
/// than once per document.
#[derive(Debug)]
pub struct Audience<'a> {
    trust: &'a Trust,
    viewer: UnitId,
    units: std::collections::HashMap<UnitId, bool>,
}

impl Audience<'_> {
    /// [`Trust::may_see_unit`] for this viewer.
    pub fn may_see_unit(&mut self, owner: &UnitId) -> bool {
        if let Some(known) = self.units.get(owner) {
            return *known;
        }
        let seen = self.trust.may_see_unit(&self.viewer, owner);
        self.units.insert(*owner, seen);
        seen
    }

    /// [`Trust::may_see`] for this viewer.
    pub fn may_see(&mut self, doc: &DocId) -> bool {
        let trust = self.trust;
        let Some(g) = trust.genesis(doc) else {
            return false;
        };
        self.may_see_unit(&g.unit) || g.parties.iter().any(|p| self.may_see_unit(p))
    }
}

/// Why a peer or a local write is not admitted.
pub type AdmissionError = CertChainError;

/// The evaluated membership: a pure function of the records held.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    root: Option<PublicKey>,
    certs: BTreeMap<UnitId, Vec<ValidCert>>,
    units_of_key: BTreeMap<PublicKey, BTreeSet<UnitId>>,
    revoked: BTreeMap<PublicKey, Vec<(Hash, RevocationCut)>>,
    geneses: BTreeMap<DocId, (Genesis, PublicKey)>,
    write_keys: BTreeMap<DocId, BTreeSet<PublicKey>>,
    recoveries: Vec<(Hash, UnitId)>,
    /// Each certified unit's parent, as [`Trust::unit`] names it, once the
    /// evaluation is done: the audience checks ask it for every document
    /// and peer.
    parents: Option<std::collections::HashMap<UnitId, Option<UnitId>>>,
}

impl Trust {
    pub fn root(&self) -> Option<&PublicKey> {
        self.root.as_ref()
    }

    /// Keys validly certified for `unit` (revoked ones included).
    pub fn keys_of(&self, unit: &UnitId) -> BTreeSet<PublicKey> {
        self.certs
            .get(unit)
            .map(|cs| cs.iter().map(|c| c.cert.subject).collect())
            .unwrap_or_default()
    }

    /// Every key some valid certificate names (revoked ones included).
    pub fn certified_keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.units_of_key.keys()
    }

    /// The hashes of the valid certificates naming `key`.
    pub fn certificates_of(&self, key: &PublicKey) -> Vec<Hash> {
        self.units_of_key
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|u| self.certs.get(u))
            .flatten()
            .filter(|c| c.cert.subject == *key)
            .map(|c| c.hash)
            .collect()
    }

    pub fn units_of(&self, key: &PublicKey) -> BTreeSet<UnitId> {
        self.units_of_key.get(key).cloned().unwrap_or_default()
    }

    pub fn unit(&self, unit: &UnitId) -> Option<UnitInfo> {
        let certs = self.certs.get(unit)?;
        // The name and parent of the certificate with the highest hash win a
        // tie between several valid certificates: deterministic, order-free.
        let newest = certs.iter().max_by_key(|c| (c.cert.not_before, c.hash))?;
        Some(UnitInfo {
            unit: *unit,
            kind: newest.cert.kind,
            name: newest.cert.name.clone(),
            parent: newest.cert.parent,
            keys: certs.iter().map(|c| c.cert.subject).collect(),
        })
    }

    /// The parent of `unit` as [`Trust::unit`] names it, without building
    /// the rest (asked for every document and peer by the audience checks).
    fn parent(&self, unit: &UnitId) -> Option<UnitId> {
        if let Some(parents) = &self.parents {
            return parents.get(unit).copied().flatten();
        }
        self.newest_parent(unit)
    }

    fn newest_parent(&self, unit: &UnitId) -> Option<UnitId> {
        self.certs
            .get(unit)?
            .iter()
            .max_by_key(|c| (c.cert.not_before, c.hash))?
            .cert
            .parent
    }

    /// The street whose region holds `unit` (a district is its own): a
    /// division code's by its digits, a resident unit's through its
    /// certified parent. `None` for a resident unit not certified here.
    pub fn street_of(&self, unit: &UnitId) -> Option<UnitId> {
        unit.division_street()
            .or_else(|| self.parent(unit)?.division_street())
    }

    /// Every unit with a valid certificate.
    pub fn units(&self) -> impl Iterator<Item = UnitInfo> + '_ {
        self.certs.keys().filter_map(|u| self.unit(u))
    }

    /// Whether `ancestor` is above `unit` in the certified tree (its parent,
    /// the parent's parent, ...). A unit is not below itself.
    pub fn is_below(&self, unit: &UnitId, ancestor: &UnitId) -> bool {
        let mut at = *unit;
        // The tree has at most four levels; the bound also stops a cycle.
        for _ in 0..8 {
            match self.parent(&at) {
                Some(p) if p == *ancestor => return true,
                Some(p) => at = p,
                None => return false,
            }
        }
        false
    }

    /// Whether `viewer` is in the audience of `owner`'s documents: the owner
    /// itself, its ancestors (the hubs that hold and relay them) and its
    /// subtree.
    pub fn may_see_unit(&self, viewer: &UnitId, owner: &UnitId) -> bool {
        viewer == owner || self.is_below(owner, viewer) || self.is_below(viewer, owner)
    }

    /// Whether `viewer` may hold document `doc`, or even learn its id: it is
    /// in the audience of the owner or of one of the genesis's parties.
    /// Unknown documents are visible to nobody.
    pub fn may_see(&self, viewer: &UnitId, doc: &DocId) -> bool {
        self.genesis(doc).is_some_and(|g| {
            self.may_see_unit(viewer, &g.unit)
                || g.parties.iter().any(|p| self.may_see_unit(viewer, p))
        })
    }

    /// [`Trust::may_see`] and [`Trust::may_see_unit`] for one viewer over
    /// many documents (a session's snapshot, a record set): each owner's
    /// answer worked out once, the same answers.
    pub fn audience<'a>(&'a self, viewer: &UnitId) -> Audience<'a> {
        Audience {
            trust: self,
            viewer: *viewer,
            units: std::collections::HashMap::new(),
        }
    }

    /// Units whose certificates name `parent` (the roster a parent keeps).
    pub fn children_of(&self, parent: &UnitId) -> Vec<UnitInfo> {
        self.units()
            .filter(|u| u.parent.as_ref() == Some(parent))
            .collect()
    }

    /// Effective revocations of `key`.
    pub fn revocations_of(&self, key: &PublicKey) -> &[(Hash, RevocationCut)] {
        self.revoked.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// How many effective revocations there are (each counted once per
    /// key it revokes): what changes when one takes effect.
    pub fn revocation_count(&self) -> usize {
        self.revoked.values().map(Vec::len).sum()
    }

    pub fn is_revoked(&self, key: &PublicKey) -> bool {
        !self.revocations_of(key).is_empty()
    }

    /// A record signed by `signer` counts unless a revocation of the signer
    /// leaves it outside its cut. The root is never revoked.
    pub fn record_signed_ok(&self, hash: &Hash, signer: &PublicKey) -> bool {
        Some(signer) == self.root.as_ref()
            || self
                .revocations_of(signer)
                .iter()
                .all(|(_, cut)| cut.admits_record(hash))
    }

    /// The valid genesis of a document and its signer.
    pub fn genesis(&self, doc: &DocId) -> Option<&Genesis> {
        self.geneses.get(doc).map(|(g, _)| g)
    }

    /// The key that signed a document's valid genesis.
    pub fn genesis_signer(&self, doc: &DocId) -> Option<&PublicKey> {
        self.geneses.get(doc).map(|(_, k)| k)
    }

    /// Whether a document's genesis was signed by a key other than the
    /// unit's enrolment key: the key of its earliest valid certificate not
    /// revoked. A parent can certify a second key of its own for a child
    /// and mint documents in the child's name (PROTOCOL.md §6); views flag
    /// such documents (a second device's documents are flagged too, and
    /// show their signer, so someone can confirm them).
    pub fn minted_by_other(&self, doc: &DocId) -> bool {
        let Some((g, signer)) = self.geneses.get(doc) else {
            return false;
        };
        let enrolment = self.certs.get(&g.unit).and_then(|cs| {
            cs.iter()
                .filter(|c| !self.is_revoked(&c.cert.subject))
                .min_by_key(|c| (c.cert.not_before, c.cert.subject))
                .map(|c| c.cert.subject)
        });
        enrolment.is_some_and(|k| k != *signer)
    }

    pub fn documents(&self) -> impl Iterator<Item = (&DocId, &Genesis)> {
        self.geneses.iter().map(|(d, (g, _))| (d, g))
    }

    /// The write keys of a document: its genesis keys, closed under the
    /// unit's valid key records and its parent's recoveries.
    pub fn write_keys(&self, doc: &DocId) -> Option<&BTreeSet<PublicKey>> {
        self.write_keys.get(doc)
    }

    /// For each effective revocation of the actor's key: its id and the
    /// prefix of the actor in `doc` it keeps (none: nothing kept).
    pub fn cuts_for(
        &self,
        doc: &DocId,
        actor: &gongjian_identity::ActorId,
    ) -> Vec<(Hash, Option<gongjian_identity::CutEntry>)> {
        self.revocations_of(&actor.key)
            .iter()
            .map(|(hash, cut)| (*hash, cut.entry(doc, actor).cloned()))
            .collect()
    }

    /// Whether the effective revocations are the same in both.
    pub fn same_revocations(&self, other: &Trust) -> bool {
        self.revoked == other.revoked
    }

    /// Documents whose validity or write keys differ between two evaluations.
    pub fn documents_changed(&self, other: &Trust) -> BTreeSet<DocId> {
        let mut out = BTreeSet::new();
        for (doc, keys) in &self.write_keys {
            if other.write_keys.get(doc) != Some(keys) {
                out.insert(*doc);
            }
        }
        for doc in other.write_keys.keys() {
            if !self.write_keys.contains_key(doc) {
                out.insert(*doc);
            }
        }
        out
    }

    /// Recoveries in effect: every view shows them.
    pub fn recoveries(&self) -> &[(Hash, UnitId)] {
        &self.recoveries
    }

    /// Admission of a key at `now` (connections, local writes): a chain of
    /// certificates valid at `now` up to the root, and no revocation.
    pub fn admit(&self, key: &PublicKey, now: u64) -> Result<UnitInfo, CertChainError> {
        self.admit_until(key, now).map(|(info, _)| info)
    }

    /// Whether `key` is admitted now as `unit` (a chain valid now up to
    /// the root for that unit, no revocation): [`Trust::admit`] for a
    /// peer already admitted as `unit`, whatever other units its key has.
    pub fn admit_as(&self, key: &PublicKey, unit: &UnitId, now: u64) -> Result<(), CertChainError> {
        if let Some((hash, _)) = self.revocations_of(key).first() {
            return Err(CertChainError::Revoked {
                key: *key,
                revocation: *hash,
            });
        }
        self.chain_at(key, unit, now, 0).map(|_| ())
    }

    /// [`Trust::admit`], with when the admission ends: the earliest
    /// `not_after` along the longest-lived valid chain (for expiry warnings).
    pub fn admit_until(
        &self,
        key: &PublicKey,
        now: u64,
    ) -> Result<(UnitInfo, u64), CertChainError> {
        if let Some((hash, _)) = self.revocations_of(key).first() {
            return Err(CertChainError::Revoked {
                key: *key,
                revocation: *hash,
            });
        }
        let mut last_err = CertChainError::NotRooted(*key);
        let mut best: Option<(UnitInfo, u64)> = None;
        for unit in self.units_of(key) {
            match self.chain_at(key, &unit, now, 0) {
                Ok(until) => {
                    if let Some(info) = self.unit(&unit)
                        && best.as_ref().is_none_or(|(_, b)| until > *b)
                    {
                        best = Some((info, until));
                    }
                }
                Err(e) => last_err = e,
            }
        }
        best.ok_or(last_err)
    }

    fn chain_at(
        &self,
        key: &PublicKey,
        unit: &UnitId,
        now: u64,
        depth: u8,
    ) -> Result<u64, CertChainError> {
        let mut last_err = CertChainError::NotRooted(*key);
        let mut best: Option<u64> = None;
        if depth > 8 {
            return Err(last_err);
        }
        for vc in self.certs.get(unit).into_iter().flatten() {
            if vc.cert.subject != *key {
                continue;
            }
            let c = &vc.cert;
            if now < c.not_before {
                last_err = CertChainError::NotYetValid {
                    unit: c.unit,
                    name: c.name.clone(),
                    not_before: c.not_before,
                    now,
                };
                continue;
            }
            if now > c.not_after {
                last_err = CertChainError::Expired {
                    unit: c.unit,
                    name: c.name.clone(),
                    not_after: c.not_after,
                    now,
                };
                continue;
            }
            if Some(&vc.signer) == self.root.as_ref() {
                best = best.max(Some(c.not_after));
                continue;
            }
            let Some(parent) = c.parent else { continue };
            // A revoked issuer's certificates count only inside its cut, and
            // that was settled when `certs` was built: a certificate kept by
            // the cut still admits (PROTOCOL.md 5.2).
            match self.chain_at(&vc.signer, &parent, now, depth + 1) {
                Ok(until) => best = best.max(Some(until.min(c.not_after))),
                Err(e) => last_err = e,
            }
        }
        best.ok_or(last_err)
    }
}

/// Depth in the administrative tree implied by a certificate.
fn depth(c: &Certificate) -> Option<u8> {
    match (c.kind, c.parent.map(|p| p.implied_kind())) {
        (UnitKind::District, None) => Some(0),
        (UnitKind::Street, Some(UnitKind::District)) => Some(1),
        (UnitKind::Community, Some(UnitKind::Street)) => Some(2),
        (UnitKind::Resident, Some(UnitKind::Street)) => Some(2),
        (UnitKind::Resident, Some(UnitKind::Community)) => Some(3),
        _ => None,
    }
}

struct Evaluator<'a> {
    m: &'a Membership,
    t: Trust,
}

impl<'a> Evaluator<'a> {
    fn new(m: &'a Membership) -> Self {
        Evaluator {
            m,
            t: Trust {
                root: Some(m.root),
                ..Trust::default()
            },
        }
    }

    /// Keys that may issue certificates for the children of `unit`, and
    /// revoke keys below it: the root for the district, else its own
    /// certified keys.
    fn issuers(&self, unit: &UnitId) -> BTreeSet<PublicKey> {
        if unit.implied_kind() == UnitKind::District {
            BTreeSet::from([self.m.root])
        } else {
            self.t.keys_of(unit)
        }
    }

    /// Parents named in the valid certificates binding `key` to `unit`.
    fn lineage_parents(&self, key: &PublicKey, unit: &UnitId) -> BTreeSet<UnitId> {
        self.t
            .certs
            .get(unit)
            .into_iter()
            .flatten()
            .filter(|c| c.cert.subject == *key)
            .filter_map(|c| c.cert.parent)
            .collect()
    }

    /// May `signer` revoke (or recover for) `key` as a key of `unit`? The
    /// root, or an issuer of a unit above it along the key's own
    /// certificates. Streets and communities have one parent each (their
    /// codes fix it), so the chain above the first parent is unique.
    fn has_authority_over(&self, signer: &PublicKey, key: &PublicKey, unit: &UnitId) -> bool {
        // Every parent named must lead to the signer: a second parent that
        // certified the same key (a resident unit may sit under any street
        // or community) can deny, never grant.
        if *signer == self.m.root {
            return true;
        }
        let parents = self.lineage_parents(key, unit);
        !parents.is_empty() && parents.iter().all(|p| self.chain_has_issuer(p, signer))
    }

    /// Is `signer` an issuer of `unit` or of a unit above it?
    fn chain_has_issuer(&self, unit: &UnitId, signer: &PublicKey) -> bool {
        let mut cursor = Some(*unit);
        let mut hops = 0;
        while let Some(u) = cursor {
            if self.issuers(&u).contains(signer) {
                return true;
            }
            cursor = u.implied_parent();
            hops += 1;
            if hops > 4 {
                break;
            }
        }
        false
    }

    /// Depths of the key's own valid certificates, per unit.
    fn key_levels(&self, key: &PublicKey) -> BTreeMap<UnitId, u8> {
        let mut out = BTreeMap::new();
        for unit in self.t.units_of(key) {
            for c in self.t.certs.get(&unit).into_iter().flatten() {
                if c.cert.subject == *key
                    && let Some(d) = depth(&c.cert)
                {
                    let e = out.entry(unit).or_insert(d);
                    *e = (*e).min(d);
                }
            }
        }
        out
    }

    fn min_level(&self, key: &PublicKey) -> Option<u8> {
        self.key_levels(key).values().copied().min()
    }

    /// A recovery for `unit` counts for documents whose genesis `anchor`
    /// signed if its signer issues for every parent named in the anchor's
    /// own certificates for the unit (the root for children of the district).
    fn recovery_authorized(&self, signer: &PublicKey, anchor: &PublicKey, unit: &UnitId) -> bool {
        let parents = self.lineage_parents(anchor, unit);
        !parents.is_empty() && parents.iter().all(|p| self.issuers(p).contains(signer))
    }

    /// Uncertified write keys → the (genesis signer, unit) of every valid
    /// document that names them, through its genesis or key records.
    fn write_key_claims(
        &self,
        recs: &[&VerifiedRecord],
    ) -> BTreeMap<PublicKey, BTreeSet<(PublicKey, UnitId)>> {
        let mut out: BTreeMap<PublicKey, BTreeSet<(PublicKey, UnitId)>> = BTreeMap::new();
        // Recoveries and key records by their unit, in the records' order:
        // each genesis looks only at its own unit's (linear in the records,
        // not geneses × records).
        let mut recoveries: BTreeMap<UnitId, Vec<&VerifiedRecord>> = BTreeMap::new();
        let mut key_adds: BTreeMap<UnitId, Vec<&VerifiedRecord>> = BTreeMap::new();
        for k in recs {
            match &k.body {
                Body::Recovery(rc) => recoveries.entry(rc.unit).or_default().push(k),
                Body::KeyAdd(ka) => key_adds.entry(ka.unit).or_default().push(k),
                _ => {}
            }
        }
        for r in recs {
            let Body::Genesis(g) = &r.body else { continue };
            if !self.genesis_valid(r, g) {
                continue;
            }
            let mut keys: BTreeSet<PublicKey> = g.write_keys.iter().copied().collect();
            for k in recoveries.get(&g.unit).into_iter().flatten() {
                if let Body::Recovery(rc) = &k.body
                    && self.recovery_authorized(&k.signer, &r.signer, &g.unit)
                {
                    keys.extend(rc.keys.iter().copied());
                }
            }
            let unit_adds = key_adds.get(&g.unit).map(Vec::as_slice).unwrap_or(&[]);
            loop {
                let before = keys.len();
                for k in unit_adds {
                    if let Body::KeyAdd(ka) = &k.body
                        && keys.contains(&k.signer)
                    {
                        keys.insert(ka.key);
                    }
                }
                if keys.len() == before {
                    break;
                }
            }
            for k in keys {
                if !self.t.units_of_key.contains_key(&k) {
                    out.entry(k).or_default().insert((r.signer, g.unit));
                }
            }
        }
        out
    }

    fn run(mut self) -> Trust {
        let recs: Vec<&VerifiedRecord> = self.m.records.values().collect();
        let certs: Vec<(&VerifiedRecord, &Certificate, u8)> = recs
            .iter()
            .filter_map(|r| match &r.body {
                Body::Certificate(c) => depth(c).map(|d| (*r, c, d)),
                _ => None,
            })
            .collect();
        let revocations: Vec<_> = recs
            .iter()
            .filter_map(|r| match &r.body {
                Body::Revocation(rv) => Some((*r, rv)),
                _ => None,
            })
            .collect();
        for level in 0..=3u8 {
            for (rec, cert, _) in certs.iter().filter(|(_, _, d)| *d == level) {
                let authorized = match cert.parent {
                    None => rec.signer == self.m.root,
                    Some(p) => self.issuers(&p).contains(&rec.signer),
                };
                if authorized && self.t.record_signed_ok(&rec.hash, &rec.signer) {
                    self.t.certs.entry(cert.unit).or_default().push(ValidCert {
                        hash: rec.hash,
                        signer: rec.signer,
                        cert: (*cert).clone(),
                    });
                    self.t
                        .units_of_key
                        .entry(cert.subject)
                        .or_default()
                        .insert(cert.unit);
                }
            }
            // Revocations of keys that first appear at this level. Their
            // authorities sit above it and are settled; the revoker needs
            // authority over every unit the key holds at this level, through
            // the key's own certificates (so certifying someone else's key
            // for a unit of one's own gives no power over it).
            for (rec, rv) in &revocations {
                if !self.t.record_signed_ok(&rec.hash, &rec.signer) {
                    continue;
                }
                for key in rv.target.keys() {
                    if self.min_level(key) != Some(level) {
                        continue;
                    }
                    let units = self.units_of_key_at(key, level);
                    let named = match &rv.target {
                        RevocationTarget::Key(_) => true,
                        RevocationTarget::Unit { unit, .. } => units.contains(unit),
                    };
                    if named
                        && !units.is_empty()
                        && units
                            .iter()
                            .all(|u| self.has_authority_over(&rec.signer, key, u))
                    {
                        self.t
                            .revoked
                            .entry(*key)
                            .or_default()
                            .push((rec.hash, rv.cut.clone()));
                    }
                }
            }
        }
        // Write keys without a certificate: revoked through the lineage of
        // every valid document that names them (computed without these
        // revocations: they only decide who must authorise).
        let claims = self.write_key_claims(&recs);
        for (rec, rv) in &revocations {
            let RevocationTarget::Key(key) = &rv.target else {
                continue;
            };
            if self.t.units_of_key.contains_key(key)
                || !self.t.record_signed_ok(&rec.hash, &rec.signer)
            {
                continue;
            }
            let Some(lineages) = claims.get(key) else {
                continue;
            };
            if lineages
                .iter()
                .all(|(signer, unit)| self.has_authority_over(&rec.signer, signer, unit))
            {
                self.t
                    .revoked
                    .entry(*key)
                    .or_default()
                    .push((rec.hash, rv.cut.clone()));
            }
        }
        for list in self.t.revoked.values_mut() {
            list.sort_by_key(|(h, _)| *h);
            list.dedup_by_key(|(h, _)| *h);
        }
        self.settle_documents(&recs);
        self.t.parents = Some(
            self.t
                .certs
                .keys()
                .map(|u| (*u, self.t.newest_parent(u)))
                .collect(),
        );
        self.t
    }

    /// Units the key holds a certificate for at `level` (its own certificates).
    fn units_of_key_at(&self, key: &PublicKey, level: u8) -> Vec<UnitId> {
        self.key_levels(key)
            .into_iter()
            .filter(|(_, d)| *d == level)
            .map(|(u, _)| u)
            .collect()
    }

    fn genesis_valid(&self, rec: &VerifiedRecord, g: &Genesis) -> bool {
        g.write_keys.contains(&rec.signer)
            && self.t.keys_of(&g.unit).contains(&rec.signer)
            && self.t.record_signed_ok(&rec.hash, &rec.signer)
    }

    fn settle_documents(&mut self, recs: &[&VerifiedRecord]) {
        let recoveries: Vec<(&VerifiedRecord, &gongjian_identity::Recovery)> = recs
            .iter()
            .filter_map(|r| match &r.body {
                Body::Recovery(rc) if self.t.record_signed_ok(&r.hash, &r.signer) => Some((*r, rc)),
                _ => None,
            })
            .collect();
        // Every recovery signed by a real parent of the unit is shown, held
        // documents or not.
        for (rec, rc) in &recoveries {
            let by_parent = self
                .t
                .keys_of(&rc.unit)
                .iter()
                .any(|k| self.recovery_authorized(&rec.signer, k, &rc.unit));
            if by_parent {
                self.t.recoveries.push((rec.hash, rc.unit));
            }
        }
        let key_adds: Vec<(&VerifiedRecord, &gongjian_identity::KeyAdd)> = recs
            .iter()
            .filter_map(|r| match &r.body {
                Body::KeyAdd(ka) if self.t.record_signed_ok(&r.hash, &r.signer) => Some((*r, ka)),
                _ => None,
            })
            .collect();
        for r in recs {
            let Body::Genesis(g) = &r.body else { continue };
            if !self.genesis_valid(r, g) {
                continue;
            }
            let mut keys: BTreeSet<PublicKey> = g.write_keys.iter().copied().collect();
            // A recovery counts for this document if its signer is an
            // issuer of the parent named in the genesis signer's own
            // certificate: the unit's real parent, not any unit that
            // certified some key under the same id.
            for (rec, rc) in &recoveries {
                if rc.unit == g.unit && self.recovery_authorized(&rec.signer, &r.signer, &g.unit) {
                    keys.extend(rc.keys.iter().copied());
                }
            }
            loop {
                let before = keys.len();
                for (rec, ka) in &key_adds {
                    if ka.unit == g.unit && keys.contains(&rec.signer) {
                        keys.insert(ka.key);
                    }
                }
                if keys.len() == before {
                    break;
                }
            }
            let doc = DocId(r.hash);
            self.t.geneses.insert(doc, (g.clone(), r.signer));
            self.t.write_keys.insert(doc, keys);
        }
    }
}
