//! RFC 4475 torture messages (../shared/vectors/rfc4475): each accepted or rejected as the
//! vectors' README says. Messages are read as datagrams, then validated as an element would.

use std::path::PathBuf;

use rcc_protocol::sip::{Limits, Message, SipError, StreamFramer, StreamItem, parse_datagram};
use rstest::rstest;

fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/rfc4475")
        .join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read test vector {}: {e}", path.display()))
}

fn parse_and_validate(name: &str) -> Result<Message, SipError> {
    let msg = parse_datagram(&vector(name), &Limits::default())?;
    msg.validate()?;
    Ok(msg)
}

#[rstest]
#[case::wsinv("wsinv.dat")]
#[case::intmeth("intmeth.dat")]
#[case::esc01("esc01.dat")]
#[case::escnull("escnull.dat")]
#[case::esc02("esc02.dat")]
#[case::lwsdisp("lwsdisp.dat")]
#[case::longreq("longreq.dat")]
#[case::dblreq("dblreq.dat")]
#[case::semiuri("semiuri.dat")]
#[case::transports("transports.dat")]
#[case::mpart01("mpart01.dat")]
#[case::unreason("unreason.dat")]
#[case::noreason("noreason.dat")]
#[case::unkscm("unkscm.dat")]
#[case::novelsc("novelsc.dat")]
#[case::unksm2("unksm2.dat")]
#[case::bext01("bext01.dat")]
#[case::invut("invut.dat")]
#[case::regaut01("regaut01.dat")]
#[case::bcast("bcast.dat")]
#[case::zeromf("zeromf.dat")]
#[case::cparam01("cparam01.dat")]
#[case::cparam02("cparam02.dat")]
#[case::regescrt("regescrt.dat")]
#[case::sdp01("sdp01.dat")]
#[case::inv2543("inv2543.dat")]
fn valid_messages_are_accepted(#[case] name: &str) {
    if let Err(e) = parse_and_validate(name) {
        panic!("{name} must be accepted, got: {e}");
    }
}

#[rstest]
#[case::badinv01("badinv01.dat")]
#[case::clerr("clerr.dat")]
#[case::ncl("ncl.dat")]
#[case::scalar02("scalar02.dat")]
#[case::scalarlg("scalarlg.dat")]
#[case::quotbal("quotbal.dat")]
#[case::ltgtruri("ltgtruri.dat")]
#[case::lwsruri("lwsruri.dat")]
#[case::lwsstart("lwsstart.dat")]
#[case::trws("trws.dat")]
#[case::escruri("escruri.dat")]
#[case::baddate("baddate.dat")]
#[case::regbadct("regbadct.dat")]
#[case::badaspec("badaspec.dat")]
#[case::baddn("baddn.dat")]
#[case::badvers("badvers.dat")]
#[case::mismatch01("mismatch01.dat")]
#[case::mismatch02("mismatch02.dat")]
#[case::bigcode("bigcode.dat")]
fn invalid_messages_are_rejected(#[case] name: &str) {
    if let Ok(msg) = parse_and_validate(name) {
        panic!("{name} must be rejected, but it was accepted:\n{msg}");
    }
}

/// Messages that parse but that an element must refuse (README class "parses; must be refused").
#[rstest]
#[case::insuf("insuf.dat")]
#[case::multi01("multi01.dat")]
fn parsed_but_refused(#[case] name: &str) {
    let msg = parse_datagram(&vector(name), &Limits::default()).expect("the syntax parses");
    let err = msg.validate().expect_err("an element must refuse it");
    assert_eq!(err.status_code(), 400, "{name}: {err}");
}

#[test]
fn badbranch_parses_without_crashing() {
    let msg = parse_and_validate("badbranch.dat").expect("accepted (RFC 2543 matching fallback)");
    assert_eq!(msg.top_via().expect("Via").branch(), Some("z9hG4bK"));
}

#[test]
fn mcl01_is_a_framing_error() {
    let err =
        parse_datagram(&vector("mcl01.dat"), &Limits::default()).expect_err("two Content-Lengths");
    assert!(matches!(err, SipError::ContentLength(_)), "{err}");
}

#[test]
fn badvers_asks_for_505() {
    let err = parse_and_validate("badvers.dat").expect_err("rejected");
    assert_eq!(err.status_code(), 505);
}

#[test]
fn dblreq_ignores_the_trailing_octets() {
    let msg = parse_and_validate("dblreq.dat").expect("accepted");
    assert!(msg.body.is_empty());
    assert_eq!(msg.method().map(|m| m.as_str()), Some("REGISTER"));
}

#[test]
fn inv2543_takes_the_rest_of_the_datagram_as_body() {
    let msg = parse_and_validate("inv2543.dat").expect("accepted");
    assert_eq!(msg.body.len(), 105);
}

#[test]
fn mpart01_body_is_kept_byte_exact() {
    let raw = vector("mpart01.dat");
    let msg = parse_and_validate("mpart01.dat").expect("accepted");
    assert_eq!(msg.body.len(), 553);
    assert!(raw.ends_with(&msg.body));
}

#[test]
fn wsinv_views() {
    let msg = parse_and_validate("wsinv.dat").expect("accepted");
    assert_eq!(msg.max_forwards().expect("Max-Forwards"), Some(68));
    assert_eq!(msg.cseq().expect("CSeq").seq, 9);
    let vias = msg.vias().expect("Via");
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(msg.header("Subject"), Some(""));
    assert_eq!(
        msg.header("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(msg.to_header().expect("To").tag(), Some("1918181833n"));
}

#[test]
fn longreq_has_34_vias() {
    let msg = parse_and_validate("longreq.dat").expect("accepted");
    assert_eq!(msg.vias().expect("Via").len(), 34);
}

#[test]
fn esc02_has_two_contacts_and_an_unknown_header() {
    let msg = parse_and_validate("esc02.dat").expect("accepted");
    assert_eq!(msg.contacts().expect("Contact").len(), 2);
    assert!(msg.method().is_some_and(|m| m.as_str() == "RE%47IST%45R"));
    assert!(msg.header("C%6Fntact").is_some());
}

#[test]
fn cparam_params_land_where_they_belong() {
    let c = parse_and_validate("cparam01.dat")
        .expect("accepted")
        .contacts()
        .expect("Contact");
    assert!(c[0].params.has("unknownparam"));
    let c = parse_and_validate("cparam02.dat")
        .expect("accepted")
        .contacts()
        .expect("Contact");
    assert!(
        c[0].uri
            .as_sip()
            .is_some_and(|u| u.params.has("unknownparam"))
    );
}

/// Every message that parses also survives the stream framer after canonical serialisation,
/// and re-parses to the same model.
#[rstest]
#[case::wsinv("wsinv.dat")]
#[case::intmeth("intmeth.dat")]
#[case::longreq("longreq.dat")]
#[case::mpart01("mpart01.dat")]
#[case::unreason("unreason.dat")]
#[case::regescrt("regescrt.dat")]
fn canonical_form_reparses_identically(#[case] name: &str) {
    let msg = parse_and_validate(name).expect("accepted");
    let wire = msg.to_bytes();
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(&wire);
    let Some(StreamItem::Message(again)) = framer.next_item().expect("frames") else {
        panic!("{name}: canonical form did not frame");
    };
    assert_eq!(again, msg);
}
