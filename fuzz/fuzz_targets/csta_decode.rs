//! CSTA decoder on arbitrary bytes; whatever decodes must re-encode and decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcc_protocol::csta;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = csta::decode(data) {
        let xml = csta::encode(&d.message, csta::ED3);
        csta::decode(xml.as_bytes()).expect("our own canonical encoding must decode");
    }
});
