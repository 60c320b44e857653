//! A scripted CSTA client for driving the PBX simulator over a real socket.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use rcc_protocol::csta::{
    self, CallEvent, CallEventKind, ConnectionId, Event, LocalConnectionState, Message, Request,
    Session,
};
use rcc_protocol::framing::{CstaFrameDecoder, EVENT_INVOKE_ID, Frame, Framing, InvokeId};
use rcc_simulators::pbx::{DeviceConfig, Listen, PbxConfig, PbxSim, Profile};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something the simulator should send at once.
pub const WAIT: Duration = Duration::from_secs(5);

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One received frame, decoded.
#[derive(Debug, Clone)]
pub struct Received {
    pub invoke: Option<u16>,
    pub message: Message,
    pub namespace: Option<String>,
    pub xml: String,
}

pub struct Client {
    stream: Box<dyn Stream>,
    dec: CstaFrameDecoder,
    next: u16,
    /// Frames read while waiting for something else.
    pub backlog: VecDeque<Received>,
    pub namespace: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr)
            .await
            .expect("connect to the simulator");
        Client::over(Box::new(s), false)
    }

    pub fn over(stream: Box<dyn Stream>, nul: bool) -> Client {
        Client {
            stream,
            dec: CstaFrameDecoder::new(if nul { Framing::Nul } else { Framing::AnnexJ }, 65_535),
            next: 1,
            backlog: VecDeque::new(),
            namespace: csta::ED3.to_owned(),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub async fn send(&mut self, invoke: u16, message: &Message) {
        let xml = csta::encode(message, &self.namespace);
        let bytes = self.dec.encode(invoke, xml.as_bytes()).expect("frame");
        self.send_raw(&bytes).await;
    }

    fn take_frame(&mut self) -> Option<Frame> {
        self.dec
            .next_frame()
            .expect("valid framing from the simulator")
    }

    /// The next frame from the wire, or `None` when the link closed or nothing came in time.
    pub async fn read_frame(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(f) = self.take_frame() {
                let invoke = match f.invoke_id {
                    Some(InvokeId::Id(n)) => Some(n),
                    _ => None,
                };
                let xml = String::from_utf8_lossy(&f.xml).into_owned();
                let d = csta::decode(&f.xml).unwrap_or_else(|e| panic!("undecodable {xml}: {e}"));
                return Some(Received {
                    invoke,
                    message: d.message,
                    namespace: d.namespace,
                    xml,
                });
            }
            let mut buf = [0u8; 8192];
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(_)) | Err(_) => return None,
            };
            if n == 0 {
                return None;
            }
            self.dec.push(&buf[..n]);
        }
    }

    /// Whether the simulator closed the link within `wait` (frames before the close are kept).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut buf = [0u8; 8192];
            match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.dec.push(&buf[..n]),
                Err(_) => return false,
            }
        }
    }

    /// Sends a request and waits for the frame answering it (same invoke ID; for NUL framing
    /// the first non-event); events read meanwhile go to the backlog.
    pub async fn call(&mut self, request: Message) -> Received {
        let invoke = self.next;
        self.next = if self.next >= 9998 { 1 } else { self.next + 1 };
        self.send(invoke, &request).await;
        self.answer_to(invoke).await
    }

    pub async fn answer_to(&mut self, invoke: u16) -> Received {
        loop {
            let r = self
                .read_frame(WAIT)
                .await
                .expect("an answer from the simulator");
            let is_event = matches!(r.message, Message::Event(_));
            let answers = match r.invoke {
                Some(id) => id == invoke && id != EVENT_INVOKE_ID && !is_event,
                None => !is_event,
            };
            if answers {
                return r;
            }
            self.backlog.push_back(r);
        }
    }

    pub async fn request(&mut self, request: Request) -> Message {
        self.call(Message::Request(request)).await.message
    }

    /// The next event (backlog first).
    pub async fn event(&mut self) -> Event {
        loop {
            if let Some(i) = self
                .backlog
                .iter()
                .position(|r| matches!(r.message, Message::Event(_)))
                && let Some(Received {
                    message: Message::Event(e),
                    ..
                }) = self.backlog.remove(i)
            {
                return e;
            }
            let r = self
                .read_frame(WAIT)
                .await
                .expect("an event from the simulator");
            self.backlog.push_back(r);
        }
    }

    pub async fn call_event(&mut self) -> CallEvent {
        match self.event().await {
            Event::Call(c) => c,
            other => panic!("expected a call event, got {other:?}"),
        }
    }

    /// The next `n` call events for monitor `xref`, leaving others in the backlog.
    pub async fn events_for(&mut self, xref: &str, n: usize) -> Vec<CallEvent> {
        let mut out = Vec::new();
        let mut skipped = VecDeque::new();
        while out.len() < n {
            match self.event().await {
                Event::Call(c) if c.cross_ref == xref => out.push(c),
                other => skipped.push_back(other),
            }
        }
        for e in skipped.into_iter().rev() {
            self.backlog.push_front(Received {
                invoke: Some(EVENT_INVOKE_ID),
                message: Message::Event(e),
                namespace: None,
                xml: String::new(),
            });
        }
        out
    }

    /// Nothing more arrives for `wait`.
    pub async fn quiet(&mut self, wait: Duration) -> Option<Received> {
        if let Some(r) = self.backlog.pop_front() {
            return Some(r);
        }
        self.read_frame(wait).await
    }

    pub async fn monitor(&mut self, device: &str) -> String {
        match self
            .request(Request::MonitorStart {
                object: csta::MonitorObject::Device(device.to_owned()),
                monitor_type: None,
            })
            .await
        {
            Message::Response(csta::Response::MonitorStart { cross_ref, .. }) => cross_ref,
            other => panic!("MonitorStart {device}: {other:?}"),
        }
    }

    pub async fn start_session(&mut self, user: Option<(&str, &str)>, version: &str) -> Message {
        self.call(Message::Session(Session::Start {
            application_id: "rcc-lab-test".to_owned(),
            user: user.map(|u| u.0.to_owned()),
            password: user.map(|u| u.1.to_owned()),
            protocol_versions: vec![version.to_owned()],
            duration: Some(180),
        }))
        .await
        .message
    }
}

/// Shape of an event: kind, connection, local state, cause.
pub fn shape(
    e: &CallEvent,
) -> (
    CallEventKind,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    (
        e.kind,
        e.connection.as_ref().and_then(|c| c.device_id.clone()),
        e.local_state.as_ref().map(|s| s.as_str().to_owned()),
        e.cause.as_ref().map(|c| c.as_str().to_owned()),
    )
}

pub fn s(
    kind: CallEventKind,
    dev: &str,
    lci: &str,
    cause: &str,
) -> (
    CallEventKind,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    (
        kind,
        Some(dev.to_owned()),
        Some(lci.to_owned()),
        Some(cause.to_owned()),
    )
}

pub fn conn(call: &str, dev: &str) -> ConnectionId {
    ConnectionId::new(call, dev)
}

pub fn call_id(e: &CallEvent) -> String {
    e.connection
        .as_ref()
        .and_then(|c| c.call_id.clone())
        .expect("event has a call ID")
}

pub fn lci(e: &CallEvent) -> Option<LocalConnectionState> {
    e.local_state.clone()
}

/// Three internal devices A = 1001, B = 1002, C = 1003 (with E.164 numbers).
pub fn devices() -> Vec<DeviceConfig> {
    vec![
        DeviceConfig::new("1001", Some("+14255551001")),
        DeviceConfig::new("1002", Some("+14255551002")),
        DeviceConfig::new("1003", Some("+14255551003")),
    ]
}

pub async fn start(profile: Profile) -> PbxSim {
    start_with(PbxConfig::for_profile(profile)).await
}

pub async fn start_with(config: PbxConfig) -> PbxSim {
    PbxSim::start(config, devices(), Listen::loopback())
        .await
        .expect("start the PBX simulator")
}

pub async fn client(sim: &PbxSim) -> Client {
    Client::connect(sim.tcp_addr().expect("TCP listener")).await
}
