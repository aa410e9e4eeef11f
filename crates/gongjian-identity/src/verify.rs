//! Batch verification that never disagrees with `verify_strict`.
//!
//! `verify_batch` is cofactored and skips the small-order checks that
//! `verify_strict` makes. Keys are torsion-free by construction
//! ([`PublicKey::from_bytes`]); here each R is checked to be a torsion-free
//! point before batching. With A and R torsion-free, the batch equation holds
//! exactly when every single strict equation does. On a batch failure, each
//! signature is verified alone to say which ones failed.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};

use crate::error::SignatureFailure;
use crate::key::{PublicKey, Signature};

/// One signature to check.
#[derive(Debug, Clone, Copy)]
pub struct VerifyItem<'a> {
    pub key: &'a PublicKey,
    pub msg: &'a [u8],
    pub sig: &'a Signature,
}

/// Batches smaller than this are verified one by one with `verify_strict`:
/// below it the torsion checks cost more than batching saves.
const MIN_BATCH: usize = 4;

/// Whether `p` is in the prime-order subgroup: [ℓ]P = O, computed in
/// variable time (R is public) as [ℓ−1]P + P, ℓ−1 being −1 as a reduced
/// scalar. For P = P₀ + T (T of order dividing 8), [ℓ]P = [ℓ]T, which is O
/// only if T is (ℓ is odd). About twice as fast as the constant-time
/// `is_torsion_free`, which it agrees with (tests below).
fn torsion_free(p: &EdwardsPoint) -> bool {
    (EdwardsPoint::vartime_multiscalar_mul([-Scalar::ONE], [p]) + p).is_identity()
}

/// Whether an encoded point's y is reduced (below p = 2^255 − 19): the
/// encodings of y ≥ p are the 19 values p..2^255 − 1, bytes `ed`..`ff`,
/// then thirty `ff`, then `7f` (the sign bit aside). Read from the bytes,
/// instead of compressing the point again (a field inversion).
fn y_is_reduced(r: &[u8; 32]) -> bool {
    !(r[0] >= 0xed && r[1..31].iter().all(|b| *b == 0xff) && r[31] & 0x7f == 0x7f)
}

/// R, if it is a canonically encoded torsion-free point that is not of
/// small order (what `verify_strict` asks of it, and what makes the batch
/// equation exact).
fn torsion_free_r(sig: &Signature) -> Option<EdwardsPoint> {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig.0[..32]);
    // Canonical encoding too: a non-canonical R would pass the batch
    // equation but fail `verify_strict`, which compares R's bytes. The
    // other non-canonical encodings (x = 0 with the sign bit set) are of
    // y = ±1, small-order points, refused below.
    if !y_is_reduced(&r) {
        return None;
    }
    CompressedEdwardsY(r)
        .decompress()
        .filter(|p| torsion_free(p) && !p.is_small_order())
}

/// S, if canonical (below ℓ), as `verify_strict` requires.
fn canonical_s(sig: &Signature) -> Option<Scalar> {
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig.0[32..]);
    Scalar::from_canonical_bytes(s).into()
}

/// The batch equation Σ zᵢ(Rᵢ + kᵢAᵢ − sᵢB) = O, kᵢ = H(Rᵢ ‖ Aᵢ ‖ Mᵢ),
/// with random 128-bit weights zᵢ (`ed25519_dalek::verify_batch`'s), but
/// the A terms summed per key (a batch's signatures come from few keys, so
/// the multiscalar multiplication has about half the points) and each R
/// decompressed once (`torsion_free_r` did). With A and every R torsion-free
/// it holds exactly when every strict equation does, but with probability
/// 2⁻¹²⁸ over the weights.
fn batch_equation(items: &[VerifyItem<'_>], batch: &[(usize, EdwardsPoint, Scalar)]) -> bool {
    use sha2::{Digest, Sha512};
    let mut scalars: Vec<Scalar> = Vec::with_capacity(batch.len() + 9);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(batch.len() + 9);
    let mut per_key: std::collections::HashMap<&PublicKey, Scalar> =
        std::collections::HashMap::new();
    let mut b = Scalar::ZERO;
    for (i, r, s) in batch {
        let item = &items[*i];
        let hram: [u8; 64] = Sha512::new()
            .chain_update(&item.sig.0[..32])
            .chain_update(item.key.as_bytes())
            .chain_update(item.msg)
            .finalize()
            .into();
        let k = Scalar::from_bytes_mod_order_wide(&hram);
        let z = Scalar::from(rand::random::<u128>());
        b += z * s;
        scalars.push(z);
        points.push(*r);
        *per_key.entry(item.key).or_insert(Scalar::ZERO) += z * k;
    }
    for (key, c) in per_key {
        scalars.push(c);
        points.push(key.verifying_key().to_edwards());
    }
    scalars.push(-b);
    points.push(curve25519_dalek::constants::ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

/// From this many signatures a batch is verified in two halves on two
/// threads (when the machine has two cores): a cold sync or an open's
/// records otherwise leave a core idle. A thread costs some 30 µs to make,
/// a signature some 35 µs to check: from 32, half the batch on the other
/// core saves its caller half a millisecond or more (the few frames a sync
/// ingests at once carry some tens of signatures).
const PARALLEL_MIN: usize = 32;

/// Verifies every item; the result for each is what `verify_strict` says.
pub fn verify_many(items: &[VerifyItem<'_>]) -> Vec<Result<(), SignatureFailure>> {
    on_two_cores(items, PARALLEL_MIN, verify_on_one_core)
}

/// Whether this machine has two cores or more (asked once).
pub fn two_cores() -> bool {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) >= 2
}

/// `f` over `items`, results in order: from `min` items, in two halves on
/// two threads when the machine has two cores (the core count is read
/// once); else, or if the second thread cannot be made, on this one.
pub fn on_two_cores<T: Sync, R: Send>(
    items: &[T],
    min: usize,
    f: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    if items.len() < min || !two_cores() {
        return f(items);
    }
    let (first, second) = items.split_at(items.len() / 2);
    let f = &f;
    std::thread::scope(|s| {
        let Ok(other) = std::thread::Builder::new().spawn_scoped(s, move || f(second)) else {
            return f(items);
        };
        let mut out = f(first);
        out.extend(
            other
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        );
        out
    })
}

/// [`verify_many`] on this thread alone, whatever the batch's size (the
/// benchmarks' one-core limit).
pub fn verify_on_one_core(items: &[VerifyItem<'_>]) -> Vec<Result<(), SignatureFailure>> {
    if items.len() < MIN_BATCH {
        return items.iter().map(|i| i.key.verify(i.msg, i.sig)).collect();
    }
    let mut results: Vec<Result<(), SignatureFailure>> = vec![Ok(()); items.len()];
    let mut batch = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match (torsion_free_r(item.sig), canonical_s(item.sig)) {
            (Some(r), Some(s)) => batch.push((i, r, s)),
            _ => results[i] = Err(SignatureFailure::Invalid),
        }
    }
    if !batch.is_empty() && !batch_equation(items, &batch) {
        for (i, _, _) in &batch {
            results[*i] = items[*i].key.verify(items[*i].msg, items[*i].sig);
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

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use sha2::{Digest, Sha512};

    #[test]
    fn the_reduced_y_check_agrees_with_compressing_again() {
        // Points' own encodings, and every encoding of y ≥ p (with and
        // without the sign bit), and their neighbours below p.
        let mut cases: Vec<[u8; 32]> = (1..200u64)
            .map(|k| EdwardsPoint::mul_base(&Scalar::from(k)).compress().0)
            .collect();
        for low in 0xe0..=0xffu8 {
            for top in [0x7f, 0xff] {
                let mut b = [0xff; 32];
                b[0] = low;
                b[31] = top;
                cases.push(b);
            }
        }
        let mut unreduced_points = 0;
        for b in cases {
            // Where the bytes decompress, the check says what compressing
            // again does, but for y = ±1 (x = 0: small order, refused anyway).
            if let Some(p) = CompressedEdwardsY(b).decompress()
                && !p.is_small_order()
            {
                let same = p.compress().0 == b;
                assert_eq!(y_is_reduced(&b), same, "{b:02x?}");
                if !same {
                    unreduced_points += 1;
                }
            }
        }
        assert!(unreduced_points > 0, "some y ≥ p decodes to a point");
    }

    #[test]
    fn the_variable_time_torsion_check_agrees_with_dalek() {
        for t in EIGHT_TORSION {
            assert_eq!(torsion_free(&t), t.is_torsion_free());
            for k in [1u64, 2, 7, 8, 9_973, u64::MAX] {
                let q = EdwardsPoint::mul_base(&Scalar::from(k)) + t;
                assert_eq!(torsion_free(&q), q.is_torsion_free(), "k = {k}");
            }
        }
        assert!(torsion_free(&EdwardsPoint::mul_base(&Scalar::from(5u64))));
        assert!(!torsion_free(
            &(EdwardsPoint::mul_base(&Scalar::from(5u64)) + EIGHT_TORSION[4])
        ));
    }

    /// A signature made with R = rB + T, T of order 8: `verify_batch`'s
    /// equation holds for it whenever its weight is a multiple of 8 (one
    /// batch in eight), `verify_strict` never. `verify_many` must
    /// refuse it every time, alone and in a batch of honest signatures.
    #[test]
    fn a_signature_with_a_torsion_component_in_r_is_refused_every_time() {
        let secret = crate::Secret::from_seed([9; 32]);
        let a = ed25519_dalek::SigningKey::from_bytes(secret.seed()).to_scalar();
        let public = secret.public();
        let msg = b"torsion".to_vec();
        let r = Scalar::from(123_456_789u64);
        let big_r = (EdwardsPoint::mul_base(&r) + EIGHT_TORSION[1]).compress();
        let hram: [u8; 64] = Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(public.as_bytes())
            .chain_update(&msg)
            .finalize()
            .into();
        let s = r + Scalar::from_bytes_mod_order_wide(&hram) * a;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(big_r.as_bytes());
        bytes[32..].copy_from_slice(s.as_bytes());
        let forged = Signature(bytes);
        assert!(public.verify(&msg, &forged).is_err(), "strict refuses it");

        // `verify_batch` draws its weights from a transcript of the batch:
        // each of these batches weighs the forged signature differently.
        for round in 0..64u8 {
            let honest: Vec<(Vec<u8>, Signature)> = (0..5u8)
                .map(|i| (vec![round, i], secret.sign(&[round, i])))
                .collect();
            for n in [0usize, 1, 2, 5] {
                let mut items: Vec<VerifyItem> = honest[..n]
                    .iter()
                    .map(|(m, s)| VerifyItem {
                        key: &public,
                        msg: m,
                        sig: s,
                    })
                    .collect();
                items.push(VerifyItem {
                    key: &public,
                    msg: &msg,
                    sig: &forged,
                });
                let out = verify_many(&items);
                assert!(out[n].is_err(), "accepted in a batch of {}", n + 1);
                assert!(out[..n].iter().all(Result::is_ok));
            }
        }
    }
}
