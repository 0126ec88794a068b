#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custdata::fuzz::mxo_definition(data));
