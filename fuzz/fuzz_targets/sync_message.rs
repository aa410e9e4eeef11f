//! The sync wire decoder: any bytes a peer sends. Never panics; what
//! decodes encodes back to a message that decodes to the same.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = gongjian_sync::decode(data) {
        let again = gongjian_sync::decode(&gongjian_sync::encode(&m)).expect("re-decodes");
        assert_eq!(again, m);
    }
});
