//! The gateway's metrics (Prometheus), counted by the engine and encoded for the shell's
//! HTTP endpoint.

use std::borrow::Cow;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Why a session ended (`rcc_gateway_sessions_ended{reason}`). Every reason's series exists
/// from the start, at zero, so alerts can be written before the first occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The client sent BYE.
    Bye,
    /// No refresh within Session-Expires.
    Expired,
    /// The client never acknowledged the session's 200 OK.
    NoAck,
    /// A client request got 481: the client had lost the dialog.
    Gone,
    /// More events queued than `sip.event_queue`: ended for the client to sign in and resync.
    EventOverflow,
    /// A reloaded policy no longer allows it.
    Reload,
    /// The PBX refused the monitor of its device for good (not for want of resources).
    MonitorRefused,
    /// The gateway shut down.
    Shutdown,
}

impl EndReason {
    /// Every reason.
    pub const ALL: [EndReason; 8] = [
        EndReason::Bye,
        EndReason::Expired,
        EndReason::NoAck,
        EndReason::Gone,
        EndReason::EventOverflow,
        EndReason::Reload,
        EndReason::MonitorRefused,
        EndReason::Shutdown,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Bye => "bye",
            EndReason::Expired => "expired",
            EndReason::NoAck => "no ACK",
            EndReason::Gone => "481",
            EndReason::EventOverflow => "event overflow",
            EndReason::Reload => "reload",
            EndReason::MonitorRefused => "monitor refused",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// Why a request was refused (`rcc_gateway_refused{reason}`); every series exists from the
/// start, at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// The user may not use that line (sign-in or a device-level request).
    Authorization,
    /// The user's line is not a party to the call the request names.
    CallAuthorization,
    /// The session holds as many call monitors as it may.
    CallMonitorLimit,
    /// SystemRegister and its cancel are the gateway's own, not a client's.
    SystemServices,
    /// The gateway drains: no new session.
    Draining,
    /// `sip.max_sessions` reached.
    Capacity,
    /// The PBX link is down.
    PbxDown,
    /// The connection's send queue is past half.
    Congested,
}

impl RefusalReason {
    /// Every reason.
    pub const ALL: [RefusalReason; 8] = [
        RefusalReason::Authorization,
        RefusalReason::CallAuthorization,
        RefusalReason::CallMonitorLimit,
        RefusalReason::SystemServices,
        RefusalReason::Draining,
        RefusalReason::Capacity,
        RefusalReason::PbxDown,
        RefusalReason::Congested,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Authorization => "authorization",
            RefusalReason::CallAuthorization => "call authorization",
            RefusalReason::CallMonitorLimit => "call monitor limit",
            RefusalReason::SystemServices => "system services",
            RefusalReason::Draining => "draining",
            RefusalReason::Capacity => "capacity",
            RefusalReason::PbxDown => "pbx down",
            RefusalReason::Congested => "congested",
        }
    }
}

/// Why the shell refused or closed a SIP connection to keep its resources bounded
/// (`rcc_gateway_connection_limits{reason}`); every series exists from the start, at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitReason {
    /// All `sip.max_connections` slots open (those reserved for trusted peers included).
    Connections,
    /// Only the slots reserved for trusted peers were left, and the peer's address is not one.
    Reserved,
    /// `sip.max_connections_per_peer` from this address.
    PerPeer,
    /// `sip.max_tls_handshakes` in progress, overall or from this address.
    Handshakes,
    /// The TLS handshake took longer than `sip.tls_handshake_timeout_ms`.
    HandshakeTimeout,
    /// A message stayed incomplete longer than `sip.message_timeout_ms`.
    MessageTimeout,
    /// Nothing arrived for `sip.idle_timeout_s`.
    Idle,
}

impl LimitReason {
    /// Every reason.
    pub const ALL: [LimitReason; 7] = [
        LimitReason::Connections,
        LimitReason::Reserved,
        LimitReason::PerPeer,
        LimitReason::Handshakes,
        LimitReason::HandshakeTimeout,
        LimitReason::MessageTimeout,
        LimitReason::Idle,
    ];

    /// Whether the limit ends a connection that was open (a timeout) rather than refusing a
    /// new one.
    pub fn closes_open_connection(self) -> bool {
        matches!(
            self,
            LimitReason::HandshakeTimeout | LimitReason::MessageTimeout | LimitReason::Idle
        )
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitReason::Connections => "connections",
            LimitReason::Reserved => "reserved for trusted peers",
            LimitReason::PerPeer => "per peer",
            LimitReason::Handshakes => "tls handshakes",
            LimitReason::HandshakeTimeout => "tls handshake timeout",
            LimitReason::MessageTimeout => "message timeout",
            LimitReason::Idle => "idle",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabel {
    service: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InputLabel {
    input: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabel {
    version: &'static str,
}

/// Which text format `/metrics` answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposition {
    /// OpenMetrics 1.0 (`application/openmetrics-text`), for scrapers that ask for it.
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4 (`text/plain`), the default.
    Classic,
}

impl Exposition {
    /// The format a scraper's `Accept` header asks for.
    pub fn from_accept(accept: Option<&str>) -> Exposition {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Exposition::OpenMetrics,
            _ => Exposition::Classic,
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Classic => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

fn residence_histogram() -> Histogram {
    // 10 µs to about 0.3 s.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 15))
}

/// Bounds of 10 µs to 1 s on a 1-2.5-5 series with 0.75 ms and 1 ms, so that "under 1 ms"
/// can be read off exactly.
fn added_histogram() -> Histogram {
    Histogram::new([
        10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 750e-6, 1e-3, 1.5e-3, 2.5e-3, 5e-3, 10e-3,
        25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0,
    ])
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 13 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    sip_requests: Family<MethodLabel, Counter>,
    sip_responses: Family<CodeLabel, Counter>,
    event_answer_codes: Family<CodeLabel, Counter>,
    sessions_ended: Family<ReasonLabel, Counter>,
    refused_requests: Family<ReasonLabel, Counter>,
    connection_limits: Family<ReasonLabel, Counter>,
    connections: Family<PeerLabel, Gauge>,
    requests: Family<RequestLabel, Counter>,
    response_time: Family<ServiceLabel, Histogram, fn() -> Histogram>,
    residence: Family<InputLabel, Histogram, fn() -> Histogram>,
    added: Histogram,
    /// Peers refused before any SIP was read (untrusted address or certificate).
    pub refused_peers: Counter,
    /// Connections closed because the peer did not take what was queued for it.
    pub queue_overflows: Counter,
    /// SIP connections the gateway holds at most (`sip.max_connections`, or what the open-file
    /// limit leaves).
    pub connection_limit: Gauge,
    /// TLS handshakes in progress.
    pub tls_handshakes: Gauge,
    /// Sessions that should have had a per-session trace and got none (file limit, write error).
    pub session_traces_refused: Counter,
    /// Sessions alive.
    pub sessions: Gauge,
    /// Sessions started.
    pub sessions_started: Counter,
    /// PBX monitors held.
    pub monitors: Gauge,
    /// Monitors the PBX ended on its own (switch-initiated MonitorStop).
    pub monitors_ended_by_pbx: Counter,
    /// Device monitors the PBX refused for want of resources while sessions needed them,
    /// scheduled to be asked for again.
    pub monitor_retries: Counter,
    /// Devices whose sessions wait for such a retry.
    pub monitors_awaiting_retry: Gauge,
    /// Session refreshes (re-INVITE, UPDATE).
    pub refreshes: Counter,
    /// Event INFOs sent.
    pub events_sent: Counter,
    /// Event INFOs given up unanswered.
    pub event_timeouts: Counter,
    /// Events received from the PBX.
    pub pbx_events: Counter,
    /// PBX events dropped as exact repeats of their connection's previous event.
    pub repeated_events: Counter,
    /// 1 when the PBX link is up and normal.
    pub pbx_up: Gauge,
    /// 1 while the gateway drains (takes no new session).
    pub draining: Gauge,
    /// PBX link losses (the link had been up).
    pub pbx_link_losses: Counter,
    /// Attempts to connect to the PBX that failed (refused, or lost before the link was up).
    pub pbx_connect_failures: Counter,
    /// Malformed SIP or CSTA input.
    pub malformed: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let ours = registry.sub_registry_with_prefix("rcc_gateway");
        let m = Metrics {
            sip_requests: Family::default(),
            sip_responses: Family::default(),
            event_answer_codes: Family::default(),
            sessions_ended: Family::default(),
            refused_requests: Family::default(),
            connection_limits: Family::default(),
            connections: Family::default(),
            requests: Family::default(),
            response_time: Family::new_with_constructor(latency_histogram),
            residence: Family::new_with_constructor(residence_histogram),
            added: added_histogram(),
            refused_peers: Counter::default(),
            queue_overflows: Counter::default(),
            connection_limit: Gauge::default(),
            tls_handshakes: Gauge::default(),
            session_traces_refused: Counter::default(),
            sessions: Gauge::default(),
            sessions_started: Counter::default(),
            monitors: Gauge::default(),
            monitors_ended_by_pbx: Counter::default(),
            monitor_retries: Counter::default(),
            monitors_awaiting_retry: Gauge::default(),
            refreshes: Counter::default(),
            events_sent: Counter::default(),
            event_timeouts: Counter::default(),
            pbx_events: Counter::default(),
            repeated_events: Counter::default(),
            pbx_up: Gauge::default(),
            draining: Gauge::default(),
            pbx_link_losses: Counter::default(),
            pbx_connect_failures: Counter::default(),
            malformed: Counter::default(),
            registry: Registry::default(),
        };
        // Every labelled reason from the start, at zero.
        for r in EndReason::ALL {
            m.ended_series(r);
        }
        for r in RefusalReason::ALL {
            m.refused_series(r);
        }
        for r in LimitReason::ALL {
            m.limit_series(r);
        }
        let build: Family<BuildLabel, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        ours.register("build_info", "The gateway's version (value 1)", build);
        ours.register(
            "connections",
            "SIP connections open, by trusted peer address",
            m.connections.clone(),
        );
        ours.register(
            "pbx_connect_failures",
            "Attempts to connect to the PBX that failed (refused, or lost before the link was up)",
            m.pbx_connect_failures.clone(),
        );
        ours.register(
            "sip_requests",
            "SIP requests received, by method",
            m.sip_requests.clone(),
        );
        ours.register(
            "sip_responses",
            "SIP responses sent, by status code",
            m.sip_responses.clone(),
        );
        ours.register(
            "event_answers",
            "Answers to event INFOs, by status code",
            m.event_answer_codes.clone(),
        );
        ours.register(
            "sessions_ended",
            "RCC sessions ended, by reason",
            m.sessions_ended.clone(),
        );
        ours.register(
            "refused",
            "Requests refused, by reason",
            m.refused_requests.clone(),
        );
        ours.register(
            "csta_requests",
            "Client CSTA requests by service and outcome",
            m.requests.clone(),
        );
        ours.register(
            "csta_response_seconds",
            "Time from a client request to its answer, by service",
            m.response_time.clone(),
        );
        ours.register(
            "residence_seconds",
            "Time from reading a SIP message or PBX bytes to queueing what they caused, by input (sip, pbx): the gateway's own share of a request's latency is one of each",
            m.residence.clone(),
        );
        ours.register(
            "added_seconds",
            "Gateway-added time of a client CSTA request: INFO read to CSTA request queued, plus CSTA answer read to 200 OK queued",
            m.added.clone(),
        );
        ours.register(
            "refused_peers",
            "Connections refused: peer not trusted",
            m.refused_peers.clone(),
        );
        ours.register(
            "queue_overflows",
            "Connections closed because the peer did not take what was queued for it",
            m.queue_overflows.clone(),
        );
        ours.register(
            "connection_limits",
            "SIP connections refused or closed by a resource limit, by limit",
            m.connection_limits.clone(),
        );
        ours.register(
            "sip_connection_limit",
            "SIP connections held at most (sip.max_connections, or what the open-file limit leaves)",
            m.connection_limit.clone(),
        );
        ours.register(
            "tls_handshakes",
            "TLS handshakes in progress",
            m.tls_handshakes.clone(),
        );
        ours.register(
            "session_traces_refused",
            "Sessions not traced: observe.session_traces.max_open reached or the file failed",
            m.session_traces_refused.clone(),
        );
        ours.register("sessions", "RCC sessions alive", m.sessions.clone());
        ours.register(
            "sessions_started",
            "RCC sessions started",
            m.sessions_started.clone(),
        );
        ours.register("monitors", "PBX device monitors held", m.monitors.clone());
        ours.register(
            "monitors_ended_by_pbx",
            "Monitors the PBX ended on its own (a switch-initiated MonitorStop)",
            m.monitors_ended_by_pbx.clone(),
        );
        ours.register(
            "monitor_retries",
            "Device monitors the PBX refused for want of resources while sessions needed them, asked for again after a backoff",
            m.monitor_retries.clone(),
        );
        ours.register(
            "monitors_awaiting_retry",
            "Devices with sessions whose monitor waits for its next attempt",
            m.monitors_awaiting_retry.clone(),
        );
        ours.register(
            "refreshes",
            "Session refreshes (re-INVITE, UPDATE)",
            m.refreshes.clone(),
        );
        ours.register(
            "events_sent",
            "Event INFOs sent to clients",
            m.events_sent.clone(),
        );
        ours.register(
            "event_timeouts",
            "Event INFOs given up unanswered",
            m.event_timeouts.clone(),
        );
        ours.register(
            "pbx_events",
            "CSTA events received from the PBX",
            m.pbx_events.clone(),
        );
        ours.register(
            "repeated_events",
            "PBX events dropped as exact repeats of their connection's previous event",
            m.repeated_events.clone(),
        );
        ours.register(
            "pbx_link_up",
            "1 when the PBX link is up and normal",
            m.pbx_up.clone(),
        );
        ours.register(
            "draining",
            "1 while the gateway drains: existing sessions are served, new ones refused",
            m.draining.clone(),
        );
        ours.register(
            "pbx_link_losses",
            "PBX link losses: the link had been up",
            m.pbx_link_losses.clone(),
        );
        ours.register(
            "malformed",
            "Malformed SIP or CSTA input",
            m.malformed.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A SIP request arrived.
    pub fn sip_request(&self, method: &rcc_protocol::sip::Method) {
        // Labels are built for every increment: standard methods are not allocated.
        let method = match method.as_static() {
            Some(m) => Cow::Borrowed(m),
            None => Cow::Owned(method.as_str().to_owned()),
        };
        self.sip_requests
            .get_or_create(&MethodLabel { method })
            .inc();
    }

    /// A SIP response was sent.
    pub fn sip_response(&self, code: u16) {
        self.sip_responses.get_or_create(&CodeLabel { code }).inc();
    }

    /// A client answered an event INFO.
    pub fn event_answers(&self, code: u16) {
        self.event_answer_codes
            .get_or_create(&CodeLabel { code })
            .inc();
    }

    fn ended_series(&self, reason: EndReason) -> Counter {
        self.sessions_ended
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .clone()
    }

    fn refused_series(&self, reason: RefusalReason) -> Counter {
        self.refused_requests
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .clone()
    }

    /// A session ended.
    pub fn ended(&self, reason: EndReason) {
        self.ended_series(reason).inc();
    }

    fn limit_series(&self, reason: LimitReason) -> Counter {
        self.connection_limits
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .clone()
    }

    /// A connection was refused or closed by a resource limit.
    pub fn limited(&self, reason: LimitReason) {
        self.limit_series(reason).inc();
    }

    /// A request was refused.
    pub fn refused(&self, reason: RefusalReason) {
        self.refused_series(reason).inc();
    }

    /// A SIP connection with a trusted peer opened.
    pub fn connection_opened(&self, peer: std::net::IpAddr) {
        self.connections
            .get_or_create(&PeerLabel {
                peer: peer.to_string(),
            })
            .inc();
    }

    /// A SIP connection with a trusted peer closed.
    pub fn connection_closed(&self, peer: std::net::IpAddr) {
        self.connections
            .get_or_create(&PeerLabel {
                peer: peer.to_string(),
            })
            .dec();
    }

    /// Adds what only the shell can measure (the process, the certificate), encoded at each
    /// scrape; before the metrics are shared.
    pub fn register_collector(
        &mut self,
        collector: Box<dyn prometheus_client::collector::Collector>,
    ) {
        self.registry.register_collector(collector);
    }

    /// A client CSTA request was answered.
    pub fn request_done(&self, service: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabel { service, outcome })
            .inc();
    }

    /// Time a client request took.
    pub fn response_time(&self, service: &'static str, seconds: f64) {
        self.response_time
            .get_or_create(&ServiceLabel { service })
            .observe(seconds);
    }

    /// A client request's gateway-added time (see `Gateway::begin_step`).
    pub fn added(&self, seconds: f64) {
        self.added.observe(seconds);
    }

    /// Time from reading `input` (`sip` or `pbx`) to the outputs it caused being queued.
    pub fn residence(&self, input: &'static str, seconds: f64) {
        self.residence
            .get_or_create(&InputLabel { input })
            .observe(seconds);
    }

    /// The exposition in OpenMetrics (what tests and the load harness read).
    pub fn encode(&self) -> String {
        self.encode_as(Exposition::OpenMetrics)
    }

    /// The exposition in the format asked for.
    pub fn encode_as(&self, format: Exposition) -> String {
        let mut out = String::new();
        let done = match format {
            Exposition::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
            Exposition::Classic => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        };
        if done.is_err() {
            out.clear();
        }
        out
    }
}
