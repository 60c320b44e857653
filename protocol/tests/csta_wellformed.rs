//! Only well-formed XML comes out: characters XML 1.0 forbids are refused on the way in (as
//! text or as character references), and a name from a peer that is no element name is never
//! written back as one. Found by the `csta_decode` fuzz target's round trip.

use rcc_protocol::csta::{self, ErrorCategory, Message};

const ED3: &str = "http://www.ecma-international.org/standards/ecma-323/csta/ed3";

fn delivered_with_text(text: &str) -> String {
    format!(
        "<DeliveredEvent xmlns=\"{ED3}\"><monitorCrossRefID>1</monitorCrossRefID>\
         <connection><callID>{text}</callID><deviceID>100</deviceID></connection>\
         <localConnectionInfo>alerting</localConnectionInfo><cause>newCall</cause></DeliveredEvent>"
    )
}

#[test]
fn forbidden_characters_are_refused_raw_or_as_references() {
    for bad in [
        "C\u{0}1",
        "C\u{1}1",
        "C\u{1b}1",
        "C\u{FFFE}1",
        "C\u{FFFF}1",
        "C&#0;1",
        "C&#x1F;1",
        "C&#xFFFE;1",
    ] {
        let xml = delivered_with_text(bad);
        let r = csta::decode(xml.as_bytes());
        assert!(r.is_err(), "{bad:?} decoded: {r:?}");
    }
    // Wherever it falls in the scan's 32-byte blocks, and at the very end.
    for pad in 0..40 {
        let xml = delivered_with_text(&format!("{}\u{1}", "x".repeat(pad)));
        assert!(csta::decode(xml.as_bytes()).is_err(), "pad {pad}");
        let xml = delivered_with_text(&format!("{}\u{FFFF}", "x".repeat(pad)));
        assert!(csta::decode(xml.as_bytes()).is_err(), "pad {pad}");
    }
    let mut tail = delivered_with_text("C1").into_bytes();
    tail.push(0);
    assert!(csta::decode(&tail).is_err(), "a NUL after the root");
    // Tab, line feed, carriage return and the rest of Unicode are text.
    for good in ["C\t1", "C&#x9;1", "C\u{e9}1", "C\u{10000}1", "C&#xE000;1"] {
        let xml = delivered_with_text(good);
        assert!(csta::decode(xml.as_bytes()).is_ok(), "{good:?} refused");
    }
}

#[test]
fn an_error_category_that_is_no_element_name_is_written_as_unspecified() {
    let xml = format!(
        "<CSTAErrorCode xmlns:x=\"{ED3}\" xmlns=\"{ED3}\"><x:1bad>oops</x:1bad></CSTAErrorCode>"
    );
    let decoded = csta::decode(xml.as_bytes()).expect("decodes");
    let Message::Error(e) = &decoded.message else {
        panic!("an error, got {:?}", decoded.message);
    };
    assert_eq!(e.category.as_str(), "1bad");
    let out = csta::encode(&decoded.message, csta::ED3);
    assert!(!out.contains("<1bad"), "{out}");
    let again = csta::decode(out.as_bytes()).expect("our encoding decodes");
    let Message::Error(e) = again.message else {
        panic!("an error");
    };
    assert_eq!(e.category, ErrorCategory::Unspecified);
    assert_eq!(e.value, "1bad/oops", "the original is kept in the text");
}
