use gongjian_identity::{
    Certificate, DecodeError, Genesis, Hash, HeadsAnnouncement, KeyAdd, PublicKey, RecordKind,
    Recovery, Revocation, SignatureFailure, SignedRecord,
};

/// Why a record was refused before it could join the set a node holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("malformed record: {0}")]
    Decode(#[from] DecodeError),
    #[error("bad signature on {kind:?} record {hash}: {failure}")]
    Signature {
        kind: RecordKind,
        hash: Hash,
        failure: SignatureFailure,
    },
    #[error("revocation cut is not sorted and deduplicated")]
    CutNotNormalized,
    #[error("{0} must list its keys without duplicates")]
    DuplicateKeys(&'static str),
    #[error("certificate validity ends ({not_after}) before it begins ({not_before})")]
    Validity { not_before: u64, not_after: u64 },
}

/// The decoded body of a verified record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Certificate(Certificate),
    Revocation(Revocation),
    KeyAdd(KeyAdd),
    Recovery(Recovery),
    Genesis(Genesis),
    Heads(HeadsAnnouncement),
}

/// A record whose signature verified and whose body decoded canonically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRecord {
    pub hash: Hash,
    pub signer: PublicKey,
    pub body: Body,
    pub record: SignedRecord,
}

fn distinct(keys: &[PublicKey], what: &'static str) -> Result<(), RecordError> {
    let mut sorted = keys.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() == keys.len() {
        Ok(())
    } else {
        Err(RecordError::DuplicateKeys(what))
    }
}

/// Checks the signature (strictly) and decodes the body of a record.
pub fn verify_record(record: SignedRecord) -> Result<VerifiedRecord, RecordError> {
    let hash = record.hash();
    record.verify().map_err(|failure| RecordError::Signature {
        kind: record.kind(),
        hash,
        failure,
    })?;
    open_record(record, hash)
}

/// [`verify_record`] for many records: the signatures checked in one batch
/// (`verify_many`: the verdict of `verify_strict` for each), then each body
/// decoded. The results are in the records' order.
pub fn verify_records(records: Vec<SignedRecord>) -> Vec<Result<VerifiedRecord, RecordError>> {
    let msgs: Vec<Vec<u8>> = records.iter().map(SignedRecord::message).collect();
    let items: Vec<gongjian_identity::VerifyItem> = records
        .iter()
        .zip(&msgs)
        .map(|(r, msg)| gongjian_identity::VerifyItem {
            key: r.signer(),
            msg,
            sig: r.signature(),
        })
        .collect();
    let sigs = gongjian_identity::verify_many(&items);
    records
        .into_iter()
        .zip(sigs)
        .map(|(record, sig)| {
            let hash = record.hash();
            match sig {
                Ok(()) => open_record(record, hash),
                Err(failure) => Err(RecordError::Signature {
                    kind: record.kind(),
                    hash,
                    failure,
                }),
            }
        })
        .collect()
}

/// Decodes and checks the body of a record whose signature verified.
fn open_record(record: SignedRecord, hash: Hash) -> Result<VerifiedRecord, RecordError> {
    let body = match record.kind() {
        RecordKind::Certificate => {
            let c: Certificate = record.open()?;
            c.unit.check_kind(c.kind).map_err(DecodeError::from)?;
            if let Some(p) = &c.parent {
                c.unit.check_parent(p).map_err(DecodeError::from)?;
            }
            if c.not_after < c.not_before {
                return Err(RecordError::Validity {
                    not_before: c.not_before,
                    not_after: c.not_after,
                });
            }
            Body::Certificate(c)
        }
        RecordKind::Revocation => {
            let r: Revocation = record.open()?;
            if !r.cut.is_normalized() {
                return Err(RecordError::CutNotNormalized);
            }
            distinct(r.target.keys(), "a revocation")?;
            Body::Revocation(r)
        }
        RecordKind::KeyAdd => Body::KeyAdd(record.open()?),
        RecordKind::Recovery => {
            let r: Recovery = record.open()?;
            distinct(&r.keys, "a recovery")?;
            Body::Recovery(r)
        }
        RecordKind::Genesis => {
            let g: Genesis = record.open()?;
            distinct(&g.write_keys, "a genesis")?;
            Body::Genesis(g)
        }
        RecordKind::Heads => Body::Heads(record.open()?),
    };
    Ok(VerifiedRecord {
        hash,
        signer: *record.signer(),
        body,
        record,
    })
}
