//! The gateway core without sockets: SIP rules (transactions, dialogs, session timers, error
//! answers) driven with synthetic messages and synthetic time. The harness and the message
//! builders are here; the tests, by subject, in the modules.

mod admission;
mod pbx_requests;
mod sip_rules;
mod traces;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rcc_gateway::config;
use rcc_gateway::core::Metrics;
use rcc_gateway::core::notes::{Leg, SessionNote, Way};
use rcc_gateway::core::pbx::link::LinkOutput;
use rcc_gateway::core::{FlowId, Gateway, Output, Policy};
use rcc_protocol::csta::{self, Request, Response};
use rcc_protocol::sip::{Message, Method};
use rcc_testkit::ScriptedPbx;

const CONFIG: &str = r#"
[sip]
listen_tcp = "127.0.0.1:5066"
host = "gw.lab.example"
trusted_peer = [{ ip = "127.0.0.1" }]
session_expires_s = 1800
[pbx]
address = "127.0.0.1:1040"
"#;

struct Harness {
    gw: Gateway,
    metrics: Arc<Metrics>,
    now: Instant,
    responses: Vec<Message>,
    requests: Vec<Message>,
    pbx: ScriptedPbx,
    traces: Vec<SessionNote>,
}

fn rss(line: &str) -> Vec<u8> {
    csta::encode(
        &csta::Message::Request(Request::RequestSystemStatus {
            line: Some(line.to_owned()),
        }),
        csta::ED3,
    )
    .into_bytes()
}

fn sip(head: &str, content_type: Option<&str>, body: &[u8]) -> Message {
    let mut text = head.trim_start().replace('\n', "\r\n");
    if let Some(ct) = content_type {
        text.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    Message::parse(&bytes).expect("test message parses")
}

fn invite(call_id: &str, branch: &str, extra: &str) -> Message {
    invite_as("alice", "1001", call_id, branch, extra)
}

/// An initial INVITE from `user`@contoso.lab for line `+1425555{ext};ext={ext}`.
fn invite_as(user: &str, ext: &str, call_id: &str, branch: &str, extra: &str) -> Message {
    sip(
        &format!(
            "INVITE sip:rccgateway@rcc.lab.example SIP/2.0
Via: SIP/2.0/TLS fe.lab.example:5061;branch={branch}
Record-Route: <sip:fe.lab.example:5061;transport=tls;lr>
Max-Forwards: 69
From: <sip:{user}@contoso.lab>;tag=a1;epid=e1
To: <sip:rccgateway@rcc.lab.example>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: <sip:{user}@contoso.lab;opaque=user:epid:e1;gruu>
{extra}"
        ),
        Some("application/csta+xml"),
        &rss(&format!("tel:+1425555{ext};ext={ext}")),
    )
}

impl Harness {
    fn new(toml: &str) -> Harness {
        let config = Arc::new(config::parse(toml).expect("config"));
        let now = Instant::now();
        let metrics = Arc::new(Metrics::new());
        let policy = Policy::build(&config).expect("policy");
        let gw = Gateway::new(config, policy, metrics.clone(), now, 0x5eed);
        let mut h = Harness {
            gw,
            metrics,
            now,
            responses: Vec::new(),
            requests: Vec::new(),
            pbx: ScriptedPbx::new(),
            traces: Vec::new(),
        };
        h.tick(Duration::ZERO);
        h.gw.pbx_connected(h.now);
        h.drain();
        assert!(
            h.gw.pbx_serving(),
            "the PBX link is up once connected (generic profile)"
        );
        h
    }

    /// The gateway's metrics in Prometheus text.
    fn gw_metrics(&self) -> String {
        self.metrics.encode()
    }

    fn drain(&mut self) {
        while let Some(o) = self.gw.poll_output() {
            match o {
                Output::Respond { bytes, .. } => self
                    .responses
                    .push(Message::parse(&bytes).expect("gateway output parses")),
                Output::Request { bytes, .. } => self
                    .requests
                    .push(Message::parse(&bytes).expect("gateway output parses")),
                Output::Pbx(LinkOutput::Send(b)) => {
                    self.pbx.receive(&b);
                }
                Output::Pbx(_) => {}
                Output::Trace(n) => self.traces.push(n),
            }
        }
    }

    fn tick(&mut self, d: Duration) {
        self.now += d;
        self.gw.handle_timeout(self.now);
        self.drain();
    }

    fn send(&mut self, m: Message) -> Vec<Message> {
        let before = self.responses.len();
        self.gw.sip_message(FlowId(1), m, self.now);
        self.drain();
        self.responses[before..].to_vec()
    }

    fn one(&mut self, m: Message) -> Message {
        let r = self.send(m);
        assert_eq!(r.len(), 1, "expected one response, got {r:?}");
        r.into_iter().next().expect("one response")
    }

    /// Signs alice in; returns the 200 OK.
    fn signed_in(&mut self, call_id: &str) -> Message {
        let ok = self.one(invite(call_id, "z9hG4bKinv1", "Supported: timer\n"));
        assert_eq!(ok.status(), Some(200));
        let ack = self.in_dialog(&ok, Method::Ack, 1, "z9hG4bKack1", None, b"");
        assert!(self.send(ack).is_empty(), "no answer to ACK");
        ok
    }

    /// Alice's MonitorStart, answered by a forged PBX MonitorStartResponse with `xref`;
    /// returns the PBX answer frame.
    fn monitor_started(&mut self, ok: &Message, xref: &str) -> Vec<u8> {
        let ms = self.in_dialog(
            ok,
            Method::Info,
            2,
            "z9hG4bKms",
            Some("application/csta+xml"),
            &info_body(Request::MonitorStart {
                object: csta::MonitorObject::Device("tel:+14255551001;ext=1001".into()),
                monitor_type: None,
            }),
        );
        assert!(self.send(ms).is_empty(), "answered once the PBX answers");
        let invoke = self
            .pbx
            .last_request(|r| matches!(r, Request::MonitorStart { .. }))
            .and_then(|f| f.invoke)
            .expect("MonitorStart sent to the PBX");
        let bytes = ScriptedPbx::answer(
            invoke,
            Response::MonitorStart {
                cross_ref: xref.into(),
                existing_calls: None,
            },
        );
        self.gw.pbx_bytes(&bytes, self.now);
        self.drain();
        bytes
    }

    /// The Annex J frame answering the last frame sent to the PBX with `response`.
    fn answer_to_last(&self, response: Response) -> Vec<u8> {
        self.pbx
            .answer_last(response)
            .expect("a frame sent to the PBX")
    }

    fn in_dialog(
        &self,
        ok: &Message,
        method: Method,
        cseq: u32,
        branch: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Message {
        let to = ok.header("To").expect("To");
        let call_id = ok.call_id().expect("Call-ID");
        let via = if branch.is_empty() {
            "SIP/2.0/TLS fe.lab.example:5061".to_owned()
        } else {
            format!("SIP/2.0/TLS fe.lab.example:5061;branch={branch}")
        };
        sip(
            &format!(
                "{method} sip:rccgateway@gw.lab.example:5066;transport=tcp SIP/2.0
Via: {via}
Max-Forwards: 69
From: <sip:alice@contoso.lab>;tag=a1;epid=e1
To: {to}
Call-ID: {call_id}
CSeq: {cseq} {method}
"
            ),
            content_type,
            body,
        )
    }
}

/// A configuration with per-session traces (`extra` adds to the table) and its directory.
fn traced(extra: &str) -> (std::path::PathBuf, String) {
    // Tests run in parallel and remove their directory: one per distinct `extra`.
    let dir = std::env::temp_dir().join(format!(
        "rcc-engine-traces-{}-{}",
        std::process::id(),
        extra.len()
    ));
    let toml = format!(
        "{CONFIG}[observe.session_traces]\ndir = {:?}\n{extra}\n",
        dir.display().to_string()
    );
    (dir, toml)
}

fn info_body(r: Request) -> Vec<u8> {
    csta::encode(&csta::Message::Request(r), csta::ED3).into_bytes()
}

fn body(m: &Message) -> csta::Message {
    csta::decode(&m.body).expect("CSTA body").message
}

fn out_of_dialog_options(branch: &str) -> Message {
    sip(
        &format!(
            "OPTIONS sip:gw.lab.example SIP/2.0
Via: SIP/2.0/TLS fe.lab.example:5061;branch={branch}
Max-Forwards: 70
From: <sip:fe.lab.example>;tag=o1
To: <sip:gw.lab.example>
Call-ID: {branch}
CSeq: 1 OPTIONS
"
        ),
        None,
        b"",
    )
}

fn out_of_dialog(method: &str, extra: &str) -> Message {
    sip(
        &format!(
            "{method} sip:gw.lab.example SIP/2.0
Via: SIP/2.0/TLS fe.lab.example:5061;branch=z9hG4bK{method}
Max-Forwards: 70
From: <sip:fe.lab.example>;tag=o1
To: <sip:gw.lab.example>
Call-ID: {method}-1
CSeq: 1 {method}
{extra}"
        ),
        None,
        b"",
    )
}
