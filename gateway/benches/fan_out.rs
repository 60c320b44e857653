//! The gateway core's event fan-out, without sockets: one PBX event for a line that N Lync
//! endpoints monitor (MPOP) becomes N event INFOs, each answered 200 OK.
//! `cargo bench -p rcc-gateway --bench fan_out`; figures go to BENCHMARKS.md.
//!
//! Each iteration decodes one Annex J DeliveredEvent, translates and encodes it once per session,
//! builds the N INFOs, and takes the N 200 OKs back. Building those 200 OKs (the client's side)
//! is inside the loop too, so the figure is a ceiling on the gateway's own cost.

use std::sync::Arc;
use std::time::Instant;

use divan::Bencher;
use rcc_gateway::config;
use rcc_gateway::core::Metrics;
use rcc_gateway::core::pbx::link::LinkOutput;
use rcc_gateway::core::{FlowId, Gateway, Output, Policy};
use rcc_protocol::csta::{
    self, CallEvent, CallEventKind, ConnectionId, DeviceRef, Event, MonitorObject, Request,
};
use rcc_protocol::sip::{Message, Method};
use rcc_testkit::ScriptedPbx;

/// The allocator of the gateway binary, so the figure is the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

const CONFIG: &str = r#"
[sip]
listen_tcp = "127.0.0.1:5066"
host = "gw.lab.example"
trusted_peer = [{ ip = "127.0.0.1" }]
[pbx]
address = "127.0.0.1:1040"
"#;

const LINE: &str = "tel:+14255551001;ext=1001";
const PBX_XREF: &str = "PX1";

/// The gateway core with the scripted PBX answering what a sign-in needs.
struct Rig {
    gw: Gateway,
    now: Instant,
    pbx: ScriptedPbx,
    /// SIP requests the gateway sent (event INFOs), waiting for their 200 OK.
    requests: Vec<Message>,
    /// SIP responses the gateway sent.
    responses: Vec<Message>,
}

impl Rig {
    fn new() -> Rig {
        let config = Arc::new(config::parse(CONFIG).expect("bench config parses"));
        let now = Instant::now();
        let policy = Policy::build(&config).expect("policy");
        let gw = Gateway::new(config, policy, Arc::new(Metrics::new()), now, 0x5eed);
        let mut rig = Rig {
            gw,
            now,
            pbx: ScriptedPbx::answering_sign_ins(PBX_XREF),
            requests: Vec::new(),
            responses: Vec::new(),
        };
        rig.gw.pbx_connected(now);
        rig.pump();
        rig
    }

    /// Runs the gateway's outputs: answers PBX requests, collects SIP messages.
    fn pump(&mut self) {
        while let Some(o) = self.gw.poll_output() {
            match o {
                Output::Respond { bytes, .. } => self
                    .responses
                    .push(Message::parse(&bytes).expect("gateway response parses")),
                Output::Request { bytes, .. } => self
                    .requests
                    .push(Message::parse(&bytes).expect("gateway request parses")),
                Output::Pbx(LinkOutput::Send(bytes)) => {
                    for answer in self.pbx.receive(&bytes) {
                        self.gw.pbx_bytes(&answer, self.now);
                    }
                }
                Output::Pbx(_) | Output::Trace(_) => {}
            }
        }
    }

    fn sip(&mut self, text: &str, body: &[u8]) -> Message {
        let mut bytes = text.replace('\n', "\r\n").into_bytes();
        bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        bytes.extend_from_slice(body);
        let before = self.responses.len();
        self.gw.sip_message(
            FlowId(1),
            Message::parse(&bytes).expect("bench SIP parses"),
            self.now,
        );
        self.pump();
        self.responses
            .get(before)
            .cloned()
            .expect("the gateway answers")
    }

    /// One endpoint signs in (INVITE, ACK, MonitorStart) on the shared line.
    fn sign_in(&mut self, n: usize) {
        let rss = csta::encode(
            &csta::Message::Request(Request::RequestSystemStatus {
                line: Some(LINE.into()),
            }),
            csta::ED3,
        );
        let head = format!(
            "INVITE sip:rccgateway@rcc.lab.example SIP/2.0
Via: SIP/2.0/TLS fe.lab.example:5061;branch=z9hG4bKi{n}
Record-Route: <sip:fe.lab.example:5061;transport=tls;lr>
Max-Forwards: 69
From: <sip:alice@contoso.lab>;tag=a{n};epid=e{n}
To: <sip:rccgateway@rcc.lab.example>
Call-ID: c{n}
CSeq: 1 INVITE
Contact: <sip:alice@contoso.lab;opaque=user:epid:e{n};gruu>
Content-Type: application/csta+xml
"
        );
        let ok = self.sip(&head, rss.as_bytes());
        assert_eq!(ok.status(), Some(200), "INVITE answered");
        let to = ok.header("To").expect("To").to_owned();
        let in_dialog = |method: Method, cseq: u32, ct: &str| {
            format!(
                "{method} sip:rccgateway@gw.lab.example:5066;transport=tcp SIP/2.0
Via: SIP/2.0/TLS fe.lab.example:5061;branch=z9hG4bK{method}{n}
Max-Forwards: 69
From: <sip:alice@contoso.lab>;tag=a{n};epid=e{n}
To: {to}
Call-ID: c{n}
CSeq: {cseq} {method}
{ct}"
            )
        };
        let mut ack = in_dialog(Method::Ack, 1, "")
            .replace('\n', "\r\n")
            .into_bytes();
        ack.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        self.gw.sip_message(
            FlowId(1),
            Message::parse(&ack).expect("ACK parses"),
            self.now,
        );
        self.pump();
        let monitor = csta::encode(
            &csta::Message::Request(Request::MonitorStart {
                object: MonitorObject::Device(LINE.into()),
                monitor_type: None,
            }),
            csta::ED3,
        );
        let ok = self.sip(
            &in_dialog(Method::Info, 2, "Content-Type: application/csta+xml\n"),
            monitor.as_bytes(),
        );
        assert_eq!(ok.status(), Some(200), "MonitorStart answered");
    }

    /// Answers every event INFO 200 OK; returns how many were answered.
    fn answer_events(&mut self) -> usize {
        let infos = std::mem::take(&mut self.requests);
        let n = infos.len();
        for info in infos {
            let ok = Message::response_to(&info, 200, "OK", "");
            self.gw.sip_message(FlowId(1), ok, self.now);
        }
        self.pump();
        n
    }
}

/// A Delivered or an Established event for one connection: alternated, neither is an exact
/// repeat of the connection's previous event (which the gateway drops).
fn event_frame(kind: CallEventKind, state: csta::LocalConnectionState) -> Vec<u8> {
    let mut e = CallEvent::new(kind, PBX_XREF);
    e.connection = Some(ConnectionId::new("21", "1001"));
    e.subject = Some(DeviceRef::id("1001"));
    e.calling = Some(DeviceRef::id("+14255550177"));
    e.called = Some(DeviceRef::id("1001"));
    e.local_state = Some(state);
    e.cause = Some(csta::Cause::new("newCall"));
    ScriptedPbx::event(Event::Call(e))
}

/// One PBX event fanned out to `sessions` endpoints and their 200 OKs taken back.
#[divan::bench(args = [1, 4, 16])]
fn event_to_every_endpoint(b: Bencher, sessions: usize) {
    let mut rig = Rig::new();
    for n in 0..sessions {
        rig.sign_in(n);
    }
    rig.requests.clear();
    let frames = [
        event_frame(
            CallEventKind::Delivered,
            csta::LocalConnectionState::Alerting,
        ),
        event_frame(
            CallEventKind::Established,
            csta::LocalConnectionState::Connected,
        ),
    ];
    // Check once that each event reaches every endpoint before timing it.
    for frame in &frames {
        rig.gw.pbx_bytes(frame, rig.now);
        rig.pump();
        assert_eq!(rig.answer_events(), sessions, "one event INFO per endpoint");
    }
    let mut next = 0;
    b.counter(divan::counter::ItemsCount::new(sessions))
        .bench_local(|| {
            next ^= 1;
            rig.gw.pbx_bytes(divan::black_box(&frames[next]), rig.now);
            rig.pump();
            rig.answer_events()
        });
}
