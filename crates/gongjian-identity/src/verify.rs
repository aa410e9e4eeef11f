//! Batch verification that never disagrees with `verify_strict`.
//!
//! `verify_batch` is cofactored and skips the small-order checks that
//! `verify_strict` makes. Keys are torsion-free by construction
//! ([`PublicKey::from_bytes`]); here each R is checked to be a torsion-free
//! point before batching. With A and R torsion-free, the batch equation holds
//! exactly when every single strict equation does. On a batch failure, each
//! signature is verified alone to say which ones failed.

use curve25519_dalek::edwards::CompressedEdwardsY;

use crate::error::SignatureFailure;
use crate::key::{PublicKey, Signature};

/// One signature to check.
#[derive(Debug, Clone, Copy)]
pub struct VerifyItem<'a> {
    pub key: &'a PublicKey,
    pub msg: &'a [u8],
    pub sig: &'a Signature,
}

fn r_is_torsion_free(sig: &Signature) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig.0[..32]);
    // Canonical encoding too: a non-canonical R (y ≥ p) would pass the batch
    // equation but fail `verify_strict`, which compares R's bytes.
    CompressedEdwardsY(r)
        .decompress()
        .is_some_and(|p| p.is_torsion_free() && !p.is_small_order() && p.compress().0 == r)
}

/// Verifies every item; the result for each is what `verify_strict` says.
pub fn verify_many(items: &[VerifyItem<'_>]) -> Vec<Result<(), SignatureFailure>> {
    let mut results: Vec<Result<(), SignatureFailure>> = vec![Ok(()); items.len()];
    let mut batch = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if r_is_torsion_free(item.sig) {
            batch.push(i);
        } else {
            results[i] = Err(SignatureFailure::Invalid);
        }
    }
    if batch.is_empty() {
        return results;
    }
    let msgs: Vec<&[u8]> = batch.iter().map(|&i| items[i].msg).collect();
    let sigs: Vec<ed25519_dalek::Signature> = batch
        .iter()
        .map(|&i| ed25519_dalek::Signature::from_bytes(&items[i].sig.0))
        .collect();
    // A batch's signatures come from few keys: each is decompressed once.
    let mut known: std::collections::HashMap<&PublicKey, ed25519_dalek::VerifyingKey> =
        std::collections::HashMap::new();
    let keys: Vec<ed25519_dalek::VerifyingKey> = batch
        .iter()
        .map(|&i| {
            *known
                .entry(items[i].key)
                .or_insert_with(|| items[i].key.verifying_key())
        })
        .collect();
    if ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_err() {
        for &i in &batch {
            results[i] = items[i].key.verify(items[i].msg, items[i].sig);
        }
    }
    results
}

/// Verifies the changes' own signatures in one batch, as
/// [`crate::SignedChange::verify`] would one by one: the signer must be the
/// actor's key, the signature strictly valid; an unsigned change fails.
pub fn verify_changes(changes: &[&crate::SignedChange]) -> Vec<Result<(), SignatureFailure>> {
    let msgs: Vec<[u8; 84]> = changes
        .iter()
        .map(|c| crate::change_signing_message(c.doc(), &c.hash()))
        .collect();
    let mut results: Vec<Result<(), SignatureFailure>> = Vec::with_capacity(changes.len());
    let mut items = Vec::new();
    let mut at = Vec::new();
    for (k, c) in changes.iter().enumerate() {
        match c.signature() {
            None => results.push(Err(SignatureFailure::Unsigned)),
            Some((signer, _)) if *signer != c.header().actor.key => {
                results.push(Err(SignatureFailure::ActorNotSigner))
            }
            Some((key, sig)) => {
                results.push(Ok(()));
                items.push(VerifyItem {
                    key,
                    msg: &msgs[k],
                    sig,
                });
                at.push(k);
            }
        }
    }
    for (k, r) in at.into_iter().zip(verify_many(&items)) {
        results[k] = r;
    }
    results
}
