//! Annex J and NUL-terminated decoders on arbitrary chunked input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcc_protocol::framing::{AnnexJDecoder, NulDecoder};

fuzz_target!(|data: &[u8]| {
    let mut a = AnnexJDecoder::new();
    let mut n = NulDecoder::new(65_535);
    for chunk in data.chunks(7) {
        a.push(chunk);
        n.push(chunk);
        while let Ok(Some(frame)) = a.next_frame() {
            assert!(frame.xml.len() <= 65_527);
        }
        while let Ok(Some(_)) = n.next_frame() {}
    }
});
