//! The record decoder (certificates, revocations, key records, geneses,
//! heads announcements) and record verification: any bytes a peer sends in
//! `Records` or a hello, or a file an operator installs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = gongjian_identity::SignedRecord::decode(data) {
        let again = gongjian_identity::SignedRecord::decode(&r.encode()).expect("re-decodes");
        assert_eq!(again.hash(), r.hash());
        let _ = gongjian_model::verify_record(r);
    }
});
