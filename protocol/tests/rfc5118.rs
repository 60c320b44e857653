//! RFC 5118 IPv6 torture messages (../shared/vectors/rfc5118). The files are stored with bare LF
//! line ends and some Content-Length values that fit no convention; as the vectors' README
//! prescribes, each is turned into its wire form (CRLF, closing blank line, Content-Length of
//! the CRLF body) before parsing.

use std::path::PathBuf;

use rcc_protocol::sip::{Host, Message};
use rstest::rstest;

fn wire_form(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/rfc5118")
        .join(name);
    let raw = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let (head, body) = raw
        .split_once("\n\n")
        .unwrap_or((raw.trim_end_matches('\n'), ""));
    let body = body.replace('\n', "\r\n");
    let head: Vec<String> = head
        .lines()
        .map(|l| match l.split_once(':') {
            Some((n, _)) if n.trim().eq_ignore_ascii_case("Content-Length") => {
                format!("Content-Length: {}", body.len())
            }
            _ => l.to_owned(),
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes()
}

#[rstest]
#[case::ipv6_good("ipv6-good")]
#[case::port_ambiguous("port-ambiguous")]
#[case::port_unambiguous("port-unambiguous")]
#[case::via_received_param_with_delim("via-received-param-with-delim")]
#[case::via_received_param_no_delim("via-received-param-no-delim")]
#[case::ipv6_in_sdp("ipv6-in-sdp")]
#[case::mult_ip_in_header("mult-ip-in-header")]
#[case::mult_ip_in_sdp("mult-ip-in-sdp")]
#[case::ipv4_mapped_ipv6("ipv4-mapped-ipv6")]
#[case::ipv6_bug_abnf_3_colons("ipv6-bug-abnf-3-colons")]
#[case::ipv6_correct_abnf_2_colons("ipv6-correct-abnf-2-colons")]
fn accepted(#[case] name: &str) {
    let msg = Message::parse(&wire_form(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    msg.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[test]
fn ipv6_bad_is_rejected() {
    let result = Message::parse(&wire_form("ipv6-bad")).and_then(|m| m.validate());
    assert!(
        result.is_err(),
        "sip:2001:db8::10 without brackets must be rejected"
    );
}

#[test]
fn mult_ip_in_header_vias() {
    let msg = Message::parse(&wire_form("mult-ip-in-header")).expect("parses");
    let vias = msg.vias().expect("Via");
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].host.clone(), vias[0].port),
        (Host::V6("2001:db8::9:1".into()), Some(6050))
    );
    assert_eq!(vias[2].received(), Some("192.0.2.200"));
}
