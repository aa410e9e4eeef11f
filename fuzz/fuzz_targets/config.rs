//! The node's `config.toml` parser and its checks (`DataDir::load_config`
//! reads the file with toml, then through figment, then `Config::check`):
//! whatever an operator (or a broken editor) leaves in the file gives an
//! error, never a panic.
#![no_main]
#![allow(dead_code)]
use libfuzzer_sys::fuzz_target;

#[path = "../../node/src/exit.rs"]
mod exit;

#[path = "../../node/src/config.rs"]
mod config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = toml::from_str::<config::Config>(text) {
        let _ = c.check();
        // What was read writes back and reads the same.
        let again = toml::to_string_pretty(&c).expect("a parsed config encodes");
        let back: config::Config = toml::from_str(&again).expect("an encoded config parses");
        assert_eq!(format!("{back:?}"), format!("{c:?}"));
    }
    use figment::providers::Format as _;
    let _ = figment::Figment::from(figment::providers::Toml::string(text))
        .extract::<config::Config>()
        .map(|c| c.check());
});
