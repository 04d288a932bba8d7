//! An app module as a peer hands it over (verified by hash only against
//! what an admin named): the WASM section reader, the ABI the node reads
//! from it (`read_abi`: the assembled section or the macros' fragments),
//! and rewriting its custom sections as `cargo mero build` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mero_abi::diff::AbiDiff;
use mero_abi::wasm::{custom_section, read_abi, replace_custom_section, sections};
use mero_abi::{ABI_FRAGMENT_SECTION, ABI_SECTION, AppAbi};

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    if let Ok(secs) = sections(data) {
        for s in &secs {
            assert!(s.range.start <= s.payload.start && s.payload.end == s.range.end);
            assert!(s.range.end <= data.len());
        }
        let _ = custom_section(data, ABI_SECTION);
        let out = replace_custom_section(data, &[ABI_FRAGMENT_SECTION], ABI_SECTION, b"{}")
            .expect("a module whose sections parse can be rewritten");
        assert_eq!(
            custom_section(&out, ABI_SECTION).expect("sections parse"),
            Some(b"{}".to_vec())
        );
    }
    if let Ok(abi) = read_abi(data) {
        for m in &abi.methods {
            assert!(abi.method(&m.name).is_some(), "lookups find every method");
        }
        let _ = abi.init();
        assert!(AbiDiff::between(&abi, &abi).is_empty());
        let _ = AbiDiff::between(&AppAbi::default(), &abi).to_string();
    }
    if let Ok(abi) = AppAbi::from_fragments(data) {
        assert!(abi.init().is_some());
        for m in &abi.methods {
            assert!(abi.method(&m.name).is_some());
        }
    }
});
