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
}

impl Membership {
    pub fn new(root: PublicKey) -> Self {
        Membership {
            root,
            records: BTreeMap::new(),
        }
    }

    pub fn root(&self) -> &PublicKey {
        &self.root
    }

    /// Adds a record; returns false if it was already held.
    pub fn insert(&mut self, record: VerifiedRecord) -> bool {
        self.records.insert(record.hash, record).is_none()
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

    /// Every unit with a valid certificate.
    pub fn units(&self) -> impl Iterator<Item = UnitInfo> + '_ {
        self.certs.keys().filter_map(|u| self.unit(u))
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

    pub fn documents(&self) -> impl Iterator<Item = (&DocId, &Genesis)> {
        self.geneses.iter().map(|(d, (g, _))| (d, g))
    }

    /// The write keys of a document: its genesis keys, closed under the
    /// unit's valid key records and its parent's recoveries.
    pub fn write_keys(&self, doc: &DocId) -> Option<&BTreeSet<PublicKey>> {
        self.write_keys.get(doc)
    }

    /// Whether every revocation of the author admits (doc, actor, seq).
    pub fn change_within_cuts(
        &self,
        doc: &DocId,
        actor: &gongjian_identity::ActorId,
        seq: u64,
    ) -> Result<(), Hash> {
        for (hash, cut) in self.revocations_of(&actor.key) {
            if !cut.admits_change(doc, actor, seq) {
                return Err(*hash);
            }
        }
        Ok(())
    }

    /// Recoveries in effect: every view shows them.
    pub fn recoveries(&self) -> &[(Hash, UnitId)] {
        &self.recoveries
    }

    /// Admission of a key at `now` (connections, local writes): a chain of
    /// certificates valid at `now` up to the root, and no revocation.
    pub fn admit(&self, key: &PublicKey, now: u64) -> Result<UnitInfo, CertChainError> {
        if let Some((hash, _)) = self.revocations_of(key).first() {
            return Err(CertChainError::Revoked {
                key: *key,
                revocation: *hash,
            });
        }
        let mut last_err = CertChainError::NotRooted(*key);
        for unit in self.units_of(key) {
            match self.chain_at(key, &unit, now, 0) {
                Ok(()) => {
                    if let Some(info) = self.unit(&unit) {
                        return Ok(info);
                    }
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn chain_at(
        &self,
        key: &PublicKey,
        unit: &UnitId,
        now: u64,
        depth: u8,
    ) -> Result<(), CertChainError> {
        let mut last_err = CertChainError::NotRooted(*key);
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
                return Ok(());
            }
            let Some(parent) = c.parent else { continue };
            if let Some((hash, _)) = self.revocations_of(&vc.signer).first() {
                last_err = CertChainError::Revoked {
                    key: vc.signer,
                    revocation: *hash,
                };
                continue;
            }
            match self.chain_at(&vc.signer, &parent, now, depth + 1) {
                Ok(()) => return Ok(()),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
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

    fn ancestors(&self, unit: &UnitId) -> BTreeSet<UnitId> {
        let mut out = BTreeSet::new();
        let mut todo = vec![*unit];
        while let Some(u) = todo.pop() {
            for vc in self.t.certs.get(&u).into_iter().flatten() {
                if let Some(p) = vc.cert.parent
                    && out.insert(p)
                {
                    todo.push(p);
                }
            }
            if out.len() > 16 {
                break;
            }
        }
        out
    }

    /// May `signer` revoke keys of `unit`? The root, or an issuer of a
    /// proper ancestor.
    fn has_authority(&self, signer: &PublicKey, unit: &UnitId) -> bool {
        *signer == self.m.root
            || self
                .ancestors(unit)
                .iter()
                .any(|a| self.issuers(a).contains(signer))
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
        // Claimed write keys of each unit, ignoring revocations: who a
        // unit-scoped revocation may name besides certified keys.
        let claimed = self.claimed_write_keys(&recs);

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
            // Revocations of keys certified at this level: their authorities
            // sit at lower levels, already settled.
            for (rec, rv) in &revocations {
                if !self.t.record_signed_ok(&rec.hash, &rec.signer) {
                    continue;
                }
                for key in rv.target.keys() {
                    let units: Vec<UnitId> = match &rv.target {
                        RevocationTarget::Key(_) => self.units_of_key_at(key, level),
                        RevocationTarget::Unit { unit, .. } => {
                            if self.unit_level(unit) == Some(level)
                                && (self.t.keys_of(unit).contains(key)
                                    || claimed.get(unit).is_some_and(|c| c.contains(key)))
                            {
                                vec![*unit]
                            } else {
                                vec![]
                            }
                        }
                    };
                    if units.iter().any(|u| self.has_authority(&rec.signer, u)) {
                        let entry = self.t.revoked.entry(*key).or_default();
                        if !entry.iter().any(|(h, _)| *h == rec.hash) {
                            entry.push((rec.hash, rv.cut.clone()));
                        }
                    }
                }
            }
        }
        // Revocations of uncertified write keys, by key: authority over a
        // unit that claims them.
        for (rec, rv) in &revocations {
            if let RevocationTarget::Key(key) = &rv.target
                && !self.t.units_of_key.contains_key(key)
                && self.t.record_signed_ok(&rec.hash, &rec.signer)
            {
                let authorized = claimed
                    .iter()
                    .filter(|(_, keys)| keys.contains(key))
                    .any(|(u, _)| self.has_authority(&rec.signer, u));
                if authorized {
                    self.t
                        .revoked
                        .entry(*key)
                        .or_default()
                        .push((rec.hash, rv.cut.clone()));
                }
            }
        }
        for list in self.t.revoked.values_mut() {
            list.sort_by_key(|(h, _)| *h);
            list.dedup_by_key(|(h, _)| *h);
        }
        self.settle_documents(&recs);
        self.t
    }

    fn unit_level(&self, unit: &UnitId) -> Option<u8> {
        self.t
            .certs
            .get(unit)?
            .iter()
            .filter_map(|c| depth(&c.cert))
            .min()
    }

    fn units_of_key_at(&self, key: &PublicKey, level: u8) -> Vec<UnitId> {
        self.t
            .units_of(key)
            .into_iter()
            .filter(|u| self.unit_level(u) == Some(level))
            .collect()
    }

    fn genesis_valid(&self, rec: &VerifiedRecord, g: &Genesis) -> bool {
        g.write_keys.contains(&rec.signer)
            && self.t.keys_of(&g.unit).contains(&rec.signer)
            && self.t.record_signed_ok(&rec.hash, &rec.signer)
    }

    fn claimed_write_keys(
        &self,
        recs: &[&VerifiedRecord],
    ) -> BTreeMap<UnitId, BTreeSet<PublicKey>> {
        let mut claimed: BTreeMap<UnitId, BTreeSet<PublicKey>> = BTreeMap::new();
        for r in recs {
            match &r.body {
                Body::Genesis(g) if g.write_keys.contains(&r.signer) => {
                    claimed
                        .entry(g.unit)
                        .or_default()
                        .extend(g.write_keys.iter().copied());
                }
                Body::Recovery(rc) => {
                    claimed
                        .entry(rc.unit)
                        .or_default()
                        .extend(rc.keys.iter().copied());
                }
                _ => {}
            }
        }
        // Close under key records signed by a claimed key.
        loop {
            let mut grew = false;
            for r in recs {
                if let Body::KeyAdd(ka) = &r.body {
                    let set = claimed.entry(ka.unit).or_default();
                    if set.contains(&r.signer) && set.insert(ka.key) {
                        grew = true;
                    }
                }
            }
            if !grew {
                return claimed;
            }
        }
    }

    fn settle_documents(&mut self, recs: &[&VerifiedRecord]) {
        // Recoveries: signed by an issuer of the unit's parent.
        let mut recovered: BTreeMap<UnitId, BTreeSet<PublicKey>> = BTreeMap::new();
        for r in recs {
            if let Body::Recovery(rc) = &r.body {
                let parents: BTreeSet<UnitId> = self
                    .t
                    .certs
                    .get(&rc.unit)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.cert.parent)
                    .collect();
                let authorized = parents.iter().any(|p| self.issuers(p).contains(&r.signer));
                if authorized && self.t.record_signed_ok(&r.hash, &r.signer) {
                    recovered
                        .entry(rc.unit)
                        .or_default()
                        .extend(rc.keys.iter().copied());
                    self.t.recoveries.push((r.hash, rc.unit));
                }
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
            keys.extend(recovered.get(&g.unit).into_iter().flatten().copied());
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
