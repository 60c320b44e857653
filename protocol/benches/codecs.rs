//! Codec benchmarks: `cargo bench -p rcc-protocol --bench codecs`. Figures go to BENCHMARKS.md.

use divan::{Bencher, black_box};
use rcc_protocol::csta::{self, ConnectionId, ED3, Message as Csta, Response};
use rcc_protocol::framing::{AnnexJDecoder, encode_annex_j};
use rcc_protocol::sip::{Limits, Message, StreamFramer, StreamItem};

/// The allocator every rcc-lab binary uses (BENCHMARKS.md has figures with glibc malloc too).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

const MAKE_CALL: &str = r#"<?xml version="1.0"?><MakeCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3"><callingDevice>tel:+14255550100;ext=100</callingDevice><calledDirectoryNumber>tel:+3222220220</calledDirectoryNumber><autoOriginate>doNotPrompt</autoOriginate></MakeCall>"#;

const DELIVERED: &str = r#"<?xml version="1.0" encoding="UTF-8"?><DeliveredEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3"><monitorCrossRefID>99fda87c</monitorCrossRefID><connection><callID>21</callID><deviceID>tel:+14255550100;ext=100</deviceID></connection><alertingDevice><deviceIdentifier>tel:+14255550100;ext=100</deviceIdentifier></alertingDevice><callingDevice><deviceIdentifier>tel:+14255550177</deviceIdentifier></callingDevice><calledDevice><deviceIdentifier>tel:+14255550100;ext=100</deviceIdentifier></calledDevice><lastRedirectionDevice><notRequired/></lastRedirectionDevice><localConnectionInfo>alerting</localConnectionInfo><cause>newCall</cause></DeliveredEvent>"#;

/// A client INFO carrying MakeCall as it reaches the gateway behind a Front End.
fn info() -> Vec<u8> {
    let head = "INFO sip:rccgateway@gw.contoso.com:5065;transport=tls SIP/2.0\r\n\
Via: SIP/2.0/TLS 10.0.0.11:5061;branch=z9hG4bKc2a1f7e3\r\n\
Max-Forwards: 69\r\n\
From: <sip:alice@contoso.com>;tag=9708e2df90;epid=bd23d94254\r\n\
To: <sip:rccgateway@rcc.contoso.com>;tag=gw7c1e0a52\r\n\
Call-ID: a3f0077597a645ed91dfed3bf7e88d93\r\n\
CSeq: 5 INFO\r\n\
Content-Disposition: signal;handling=required\r\n\
Content-Type: application/csta+xml\r\n";
    format!(
        "{head}Content-Length: {}\r\n\r\n{MAKE_CALL}",
        MAKE_CALL.len()
    )
    .into_bytes()
}

#[divan::bench]
fn sip_frame_and_parse_info(b: Bencher) {
    let wire = info();
    // One long-lived framer per connection, as in the gateway.
    let mut f = StreamFramer::new(Limits::default());
    b.counter(divan::counter::BytesCount::new(wire.len()))
        .bench_local(|| {
            f.push(black_box(&wire));
            match f.next_item() {
                Ok(Some(StreamItem::Message(m))) => m,
                _ => unreachable!("the INFO frames"),
            }
        });
}

#[divan::bench]
fn sip_info_to_make_call(b: Bencher) {
    let wire = info();
    b.bench(|| {
        let msg = Message::parse(black_box(&wire)).expect("parses");
        csta::decode(&msg.body).expect("decodes")
    });
}

#[divan::bench]
fn sip_encode_make_call_response(b: Bencher) {
    let req = Message::parse(&info()).expect("parses");
    let resp = Csta::Response(Response::MakeCall {
        calling: ConnectionId::new("0_99f261b4", "tel:+14255550100;ext=100"),
    });
    b.bench(|| {
        let body = csta::encode(black_box(&resp), ED3);
        Message::response_to(&req, 200, "OK", "gw7c1e0a52")
            .with_body(
                "application/csta+xml",
                Some("signal;handling=required"),
                body.into_bytes(),
            )
            .to_bytes()
    });
}

#[divan::bench]
fn csta_decode_delivered_event(b: Bencher) {
    b.counter(divan::counter::BytesCount::new(DELIVERED.len()))
        .bench(|| csta::decode(black_box(DELIVERED.as_bytes())).expect("decodes"));
}

#[divan::bench]
fn csta_encode_delivered_event(b: Bencher) {
    let ev = csta::decode(DELIVERED.as_bytes()).expect("decodes").message;
    b.bench(|| csta::encode(black_box(&ev), ED3));
}

#[divan::bench]
fn annex_j_decode_stream_of_100_events(b: Bencher) {
    let mut stream = Vec::new();
    for _ in 0..100 {
        stream.extend(encode_annex_j(9999, DELIVERED.as_bytes()).expect("encodes"));
    }
    b.counter(divan::counter::ItemsCount::new(100usize))
        .bench(|| {
            let mut d = AnnexJDecoder::new();
            let mut n = 0;
            for chunk in black_box(&stream).chunks(1460) {
                d.push(chunk);
                while let Ok(Some(_)) = d.next_frame() {
                    n += 1;
                }
            }
            n
        });
}
