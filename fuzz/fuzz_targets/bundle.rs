//! Sneakernet bundles: any file as a bundle (the header checks and the
//! signature), then the same bytes as the body of a bundle a valid key
//! signed, so the head's records and every document's changes are decoded
//! (the capped decoders) as an import would before touching the store.
#![no_main]
use gongjian_engine::{BUNDLE_MAGIC, BUNDLE_VERSION, Bundle};
use gongjian_identity::{Hash, Secret};
use libfuzzer_sys::fuzz_target;

/// A bundle whose body (head length, head, changes) is `body`, signed the
/// way `Bundle::seal` signs.
fn signed(secret: &Secret, body: &[u8]) -> Vec<u8> {
    let mut out = BUNDLE_MAGIC.to_vec();
    out.extend_from_slice(&BUNDLE_VERSION.to_be_bytes());
    out.extend_from_slice(secret.public().as_bytes());
    let msg = Hash::of_parts(&[b"gongjian-bundle-v2", &BUNDLE_VERSION.to_be_bytes(), body]);
    out.extend_from_slice(&secret.sign(msg.as_bytes()).0);
    out.extend_from_slice(body);
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Bundle::parse(data) {
        let _ = b.count_changes();
    }
    let secret = Secret::from_seed([5; 32]);
    let bytes = signed(&secret, data);
    if data.len() >= 4 {
        // The signing above must be the one `parse` checks, or this target
        // would test nothing past the signature.
        let head_len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if head_len == 0 {
            assert!(
                !matches!(
                    Bundle::parse(&bytes),
                    Err(gongjian_engine::BundleError::BadSignature)
                ),
                "a body signed like seal's verifies"
            );
        }
    }
    if let Ok(b) = Bundle::parse(&bytes) {
        let _ = (b.from_unit(), b.made_for(), b.created_at());
        let _ = b.count_changes();
    }
});
