//! The gateway's metrics (Prometheus), counted by the engine and encoded for the shell's
//! HTTP endpoint.

use std::borrow::Cow;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
    requests: Family<RequestLabel, Counter>,
    response_time: Family<ServiceLabel, Histogram, fn() -> Histogram>,
    residence: Family<InputLabel, Histogram, fn() -> Histogram>,
    added: Histogram,
    /// Peers refused before any SIP was read (untrusted address or certificate).
    pub refused_peers: Counter,
    /// Connections closed because the peer did not take what was queued for it.
    pub queue_overflows: Counter,
    /// Sessions that should have had a per-session trace and got none (file limit, write error).
    pub session_traces_refused: Counter,
    /// Sessions alive.
    pub sessions: Gauge,
    /// Sessions started.
    pub sessions_started: Counter,
    /// PBX monitors held.
    pub monitors: Gauge,
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
    /// PBX link losses.
    pub pbx_link_losses: Counter,
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
        let mut registry = Registry::with_prefix("rcc_gateway");
        let m = Metrics {
            sip_requests: Family::default(),
            sip_responses: Family::default(),
            event_answer_codes: Family::default(),
            sessions_ended: Family::default(),
            refused_requests: Family::default(),
            requests: Family::default(),
            response_time: Family::new_with_constructor(latency_histogram),
            residence: Family::new_with_constructor(residence_histogram),
            added: added_histogram(),
            refused_peers: Counter::default(),
            queue_overflows: Counter::default(),
            session_traces_refused: Counter::default(),
            sessions: Gauge::default(),
            sessions_started: Counter::default(),
            monitors: Gauge::default(),
            refreshes: Counter::default(),
            events_sent: Counter::default(),
            event_timeouts: Counter::default(),
            pbx_events: Counter::default(),
            repeated_events: Counter::default(),
            pbx_up: Gauge::default(),
            draining: Gauge::default(),
            pbx_link_losses: Counter::default(),
            malformed: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "sip_requests",
            "SIP requests received, by method",
            m.sip_requests.clone(),
        );
        registry.register(
            "sip_responses",
            "SIP responses sent, by status code",
            m.sip_responses.clone(),
        );
        registry.register(
            "event_answers",
            "Answers to event INFOs, by status code",
            m.event_answer_codes.clone(),
        );
        registry.register(
            "sessions_ended",
            "RCC sessions ended, by reason",
            m.sessions_ended.clone(),
        );
        registry.register(
            "refused",
            "Requests refused, by reason",
            m.refused_requests.clone(),
        );
        registry.register(
            "csta_requests",
            "Client CSTA requests by service and outcome",
            m.requests.clone(),
        );
        registry.register(
            "csta_response_seconds",
            "Time from a client request to its answer, by service",
            m.response_time.clone(),
        );
        registry.register(
            "residence_seconds",
            "Time from reading a SIP message or PBX bytes to queueing what they caused, by input (sip, pbx): the gateway's own share of a request's latency is one of each",
            m.residence.clone(),
        );
        registry.register(
            "added_seconds",
            "Gateway-added time of a client CSTA request: INFO read to CSTA request queued, plus CSTA answer read to 200 OK queued",
            m.added.clone(),
        );
        registry.register(
            "refused_peers",
            "Connections refused: peer not trusted",
            m.refused_peers.clone(),
        );
        registry.register(
            "queue_overflows",
            "Connections closed because the peer did not take what was queued for it",
            m.queue_overflows.clone(),
        );
        registry.register(
            "session_traces_refused",
            "Sessions not traced: observe.session_traces.max_open reached or the file failed",
            m.session_traces_refused.clone(),
        );
        registry.register("sessions", "RCC sessions alive", m.sessions.clone());
        registry.register(
            "sessions_started",
            "RCC sessions started",
            m.sessions_started.clone(),
        );
        registry.register("monitors", "PBX device monitors held", m.monitors.clone());
        registry.register(
            "refreshes",
            "Session refreshes (re-INVITE, UPDATE)",
            m.refreshes.clone(),
        );
        registry.register(
            "events_sent",
            "Event INFOs sent to clients",
            m.events_sent.clone(),
        );
        registry.register(
            "event_timeouts",
            "Event INFOs given up unanswered",
            m.event_timeouts.clone(),
        );
        registry.register(
            "pbx_events",
            "CSTA events received from the PBX",
            m.pbx_events.clone(),
        );
        registry.register(
            "repeated_events",
            "PBX events dropped as exact repeats of their connection's previous event",
            m.repeated_events.clone(),
        );
        registry.register(
            "pbx_link_up",
            "1 when the PBX link is up and normal",
            m.pbx_up.clone(),
        );
        registry.register(
            "draining",
            "1 while the gateway drains: existing sessions are served, new ones refused",
            m.draining.clone(),
        );
        registry.register(
            "pbx_link_losses",
            "PBX link losses",
            m.pbx_link_losses.clone(),
        );
        registry.register(
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

    /// A session ended.
    pub fn ended(&self, reason: &'static str) {
        self.sessions_ended
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A request was refused.
    pub fn refused(&self, reason: &'static str) {
        self.refused_requests
            .get_or_create(&ReasonLabel { reason })
            .inc();
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

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
