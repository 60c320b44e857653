//! Every XML example in the two protocol documents (extracted by csta_examples/extract.py)
//! decodes, and its canonical encoding decodes to the same message.

use std::path::PathBuf;

use rcc_protocol::csta::{self, DecodeError};
use rstest::rstest;

/// Examples in the docs that are not CSTA messages: a roaming category and a lone connection.
const NOT_CSTA: [&str; 2] = ["rcc-sip-01-userProperties.xml", "rcc-sip-09-connection.xml"];

#[rstest]
fn doc_example_decodes_and_round_trips(#[files("tests/csta_examples/*.xml")] path: PathBuf) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    match csta::decode(&bytes) {
        Err(DecodeError::UnknownRoot(_)) if NOT_CSTA.contains(&name.as_str()) => {}
        Err(e) => panic!("{name}: {e}"),
        Ok(_) if NOT_CSTA.contains(&name.as_str()) => panic!("{name} is not CSTA but decoded"),
        Ok(decoded) => {
            let ns = decoded.namespace.clone().unwrap_or_default();
            let xml = csta::encode(&decoded.message, &ns);
            let again = csta::decode(xml.as_bytes())
                .unwrap_or_else(|e| panic!("{name}: re-decoding {xml}: {e}"));
            assert_eq!(
                again.message, decoded.message,
                "{name}: canonical form {xml}"
            );
        }
    }
}
