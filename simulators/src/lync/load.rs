//! Load mode: N users × M endpoints sign in at a rate, then click-to-dial calls (MakeCall, then
//! ClearConnection once the call exists) run at a rate for a duration. Response times go into
//! HDR histograms; one row per second is kept for the CSV and the plot. The generator drives the
//! pool in batches from one task, so it stays cheap next to the gateway it measures.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rcc_protocol::csta::{self, ConnectionId, Request, Response};
use serde::Serialize;

use super::endpoint::{ActionId, EndpointConfig, Phase};
use super::profile::ClientProfile;
use super::server::LyncSim;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Users (each on its own line, extension `first_extension + i`).
    pub users: usize,
    /// Endpoints per user (MPOP).
    pub endpoints_per_user: usize,
    /// The first user's extension.
    pub first_extension: u64,
    /// LineURI template: `{ext}` is replaced (e.g. `tel:+1425555{ext};ext={ext}`).
    pub line_template: String,
    /// LineServerURI.
    pub line_server: String,
    /// Client profile.
    pub profile: ClientProfile,
    /// Sign-ins per second.
    pub signin_rate: f64,
    /// Calls per second (each call is a script of CSTA requests, see [`CallPattern`]).
    pub call_rate: f64,
    /// How long calls run.
    pub duration: Duration,
    /// The number each call dials.
    pub callee: String,
    /// Longest wait for the sign-in storm to finish.
    pub signin_timeout: Duration,
    /// What each call does.
    pub pattern: CallPattern,
    /// Sign in again this long after a dialog is lost (a BYE, a 481), as Lync does; `None`:
    /// a lost session stays lost.
    pub reestablish: Option<Duration>,
}

/// What each call of the call phase does: MakeCall (the far end answers at once), then the
/// pattern's requests; or, for [`CallPattern::Snapshot`], one request and no call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallPattern {
    /// ClearConnection: two requests a call.
    #[default]
    ClickToDial,
    /// HoldCall, RetrieveCall, ClearConnection: four requests a call.
    HoldRetrieve,
    /// SingleStepTransferCall to the callee's neighbour: two requests a call.
    Transfer,
    /// SnapshotDevice of the caller's own line, as a client does after sign-in: one request,
    /// no call and no events. It loads the request path alone (INFO in, CSTA request to the
    /// PBX, answer, 200 OK out), without the event fan-out the call patterns add.
    Snapshot,
}

impl CallPattern {
    /// Parses `click-to-dial`, `hold-retrieve`, `transfer` or `snapshot`.
    pub fn parse(s: &str) -> Option<CallPattern> {
        match s {
            "click-to-dial" => Some(CallPattern::ClickToDial),
            "hold-retrieve" => Some(CallPattern::HoldRetrieve),
            "transfer" => Some(CallPattern::Transfer),
            "snapshot" => Some(CallPattern::Snapshot),
            _ => None,
        }
    }

    /// The first request of a call placed from `line`.
    fn first(self, line: String, callee: &str) -> Request {
        match self {
            CallPattern::Snapshot => Request::SnapshotDevice { device: line },
            _ => Request::MakeCall {
                calling: line,
                called: callee.to_owned(),
                auto_originate: Some(csta::AutoOriginate::DoNotPrompt),
            },
        }
    }

    /// The request for stage `stage` (1-based after MakeCall), or None when the call is done.
    fn next(self, stage: u8, me: ConnectionId, callee: &str) -> Option<Request> {
        use CallPattern as P;
        match (self, stage) {
            (P::ClickToDial, 1) | (P::HoldRetrieve, 3) => Some(Request::ClearConnection {
                connection: me,
                reason: None,
            }),
            (P::HoldRetrieve, 1) => Some(Request::HoldCall {
                call: me,
                reservation: None,
            }),
            (P::HoldRetrieve, 2) => Some(Request::RetrieveCall { call: me }),
            (P::Transfer, 1) => Some(Request::SingleStepTransferCall {
                active: me,
                transferred_to: format!("{callee}9"),
            }),
            _ => None,
        }
    }
}

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    /// Seconds since the start.
    pub t: u64,
    /// Phase: `sign-in` or `calls`.
    pub phase: &'static str,
    /// Sessions monitoring their line.
    pub sessions: u64,
    /// CSTA requests answered in this second.
    pub requests: u64,
    /// Requests that failed in this second.
    pub failures: u64,
    /// Median response time in this second, ms.
    pub p50_ms: f64,
    /// 99th percentile in this second, ms.
    pub p99_ms: f64,
    /// Events received in this second.
    pub events: u64,
}

/// The outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Endpoints that signed in.
    pub sessions_established: u64,
    /// Endpoints that did not.
    pub sessions_failed: u64,
    /// Seconds the sign-in storm took (all endpoints ready, or the timeout).
    pub signin_seconds: f64,
    /// Sign-in time percentiles, ms: p50, p90, p99, p99.9.
    pub signin_ms: [f64; 4],
    /// CSTA requests answered during the call phase.
    pub requests: u64,
    /// Requests per second during the call phase.
    pub requests_per_second: f64,
    /// Request response time percentiles, ms: p50, p90, p99, p99.9.
    pub request_ms: [f64; 4],
    /// Requests without a CSTA answer.
    pub failures: u64,
    /// Events received in all.
    pub events: u64,
    /// Rules the gateway broke, as endpoints saw them.
    pub violations: u64,
    /// Per-second rows.
    pub rows: Vec<Row>,
}

fn hist() -> Histogram<u32> {
    // 1 µs .. 60 s, 3 significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn pct(h: &Histogram<u32>) -> [f64; 4] {
    [50.0, 90.0, 99.0, 99.9].map(|q| h.value_at_quantile(q / 100.0) as f64 / 1000.0)
}

#[derive(Default)]
struct Collected {
    requests: Vec<u32>,
    sign_ins: Vec<u32>,
    failures: u64,
    events: u64,
    ready: u64,
}

async fn collect(sim: &LyncSim, last_events: &mut u64) -> anyhow::Result<Collected> {
    let (mut c, events) = sim
        .with(|fe, _| {
            let mut c = Collected::default();
            let mut events = 0;
            for i in 0..fe.endpoint_count() {
                if let Some(e) = fe.endpoint_mut(i) {
                    let t = e.drain_timings();
                    c.requests.extend(t.requests);
                    c.sign_ins.extend(t.sign_ins);
                    c.failures += u64::from(t.failures);
                    events += e.events_received();
                    if e.phase() == &Phase::Ready {
                        c.ready += 1;
                    }
                }
            }
            (c, events)
        })
        .await?;
    c.events = events.saturating_sub(*last_events);
    *last_events = events;
    Ok(c)
}

/// How often the call phase releases the requests that are due: a Front End pool merges many
/// users' clicks into a steady stream, so requests go out every 200 µs rather than in 1 ms
/// bursts (the runtime's timers tick in milliseconds, hence a pacing thread).
const CALL_TICK: Duration = Duration::from_micros(200);

/// Ticks at sub-millisecond intervals from a small thread; ends when dropped.
struct Pacer {
    ticks: tokio::sync::mpsc::Receiver<()>,
}

impl Pacer {
    fn start(every: Duration) -> Pacer {
        let (tx, ticks) = tokio::sync::mpsc::channel(1);
        std::thread::spawn(move || {
            while !tx.is_closed() {
                std::thread::sleep(every);
                // A full channel means the loop is behind: the tick is merged, not queued.
                let _ = tx.try_send(());
            }
        });
        Pacer { ticks }
    }

    async fn tick(&mut self) {
        // The thread only stops when this side is dropped.
        let _ = self.ticks.recv().await;
    }
}

/// Runs the plan against the pool; `progress` sees every second's row.
pub async fn run(
    sim: &LyncSim,
    plan: &LoadPlan,
    mut progress: impl FnMut(&Row),
) -> anyhow::Result<Summary> {
    let total = plan.users * plan.endpoints_per_user;
    anyhow::ensure!(total > 0, "nothing to load: 0 endpoints");
    anyhow::ensure!(plan.signin_rate > 0.0, "the sign-in rate must be positive");
    let configs: Vec<EndpointConfig> = (0..plan.users)
        .flat_map(|u| {
            let ext = plan.first_extension + u as u64;
            let line = plan.line_template.replace("{ext}", &ext.to_string());
            (0..plan.endpoints_per_user).map(move |e| (u, ext, line.clone(), e))
        })
        .map(|(u, ext, line, e)| EndpointConfig {
            user: format!("sip:user{ext}@load.lab"),
            epid: format!("{u:x}e{e}"),
            line,
            line_server: plan.line_server.clone(),
            profile: plan.profile,
            refresh: None,
            reestablish: plan.reestablish.is_some(),
            reestablish_delay: plan.reestablish.unwrap_or(Duration::from_secs(5)),
            address: format!("192.0.2.{}:{}", 1 + u % 250, 40000 + e),
        })
        .collect();
    let first = sim
        .with(move |fe, _| {
            fe.tracing = false;
            let first = fe.endpoint_count();
            for c in configs {
                let id = fe.add_endpoint(c);
                if let Some(e) = fe.endpoint_mut(id) {
                    e.keep_events = false;
                    e.report_done = true;
                }
            }
            first
        })
        .await?;
    let start = Instant::now();
    let mut rows = Vec::new();
    let mut signin_hist = hist();
    let mut request_hist = hist();
    let mut last_events = 0;
    let mut all_events = 0;
    let mut failures = 0;
    // A short tick: requests leave in small bursts, not queued behind each other.
    let tick = Duration::from_millis(1);

    // Sign-in storm.
    let mut started = 0usize;
    let mut second = hist();
    let mut row_start = Instant::now();
    let mut row = Row {
        phase: "sign-in",
        ..Row::default()
    };
    let signin_done;
    let mut last_look = Instant::now();
    loop {
        let due = ((start.elapsed().as_secs_f64() * plan.signin_rate) as usize).min(total);
        if due > started {
            let (from, to) = (first + started, first + due);
            sim.with(move |fe, now| {
                for id in from..to {
                    if let Some(e) = fe.endpoint_mut(id) {
                        e.sign_in(now);
                    }
                }
            })
            .await?;
            started = due;
        }
        // `collect` visits every endpoint: once a second, and every 100 ms once all are started
        // (to see the storm end), never on every tick.
        if row_start.elapsed() >= Duration::from_secs(1)
            || (started == total && last_look.elapsed() >= Duration::from_millis(100))
        {
            last_look = Instant::now();
            let c = collect(sim, &mut last_events).await?;
            for v in &c.sign_ins {
                let _ = signin_hist.record(u64::from(*v));
                let _ = second.record(u64::from(*v));
            }
            all_events += c.events;
            failures += c.failures;
            row.t = start.elapsed().as_secs();
            row.sessions = c.ready;
            row.events = c.events;
            row.requests = c.sign_ins.len() as u64;
            row.p50_ms = second.value_at_quantile(0.5) as f64 / 1000.0;
            row.p99_ms = second.value_at_quantile(0.99) as f64 / 1000.0;
            if row_start.elapsed() >= Duration::from_secs(1) {
                progress(&row);
                rows.push(row.clone());
                second.reset();
                row_start = Instant::now();
            }
            if c.ready as usize >= total || start.elapsed() > plan.signin_timeout {
                signin_done = start.elapsed();
                progress(&row);
                rows.push(row.clone());
                break;
            }
        }
        tokio::time::sleep(tick).await;
    }
    let ready: Vec<usize> = sim
        .with(move |fe, _| {
            (first..first + total)
                .filter(|id| fe.endpoint(*id).is_some_and(|e| e.phase() == &Phase::Ready))
                .collect()
        })
        .await?;
    let established = ready.len() as u64;

    // Calls: one endpoint per user places them, round robin.
    let callers: Vec<usize> = ready
        .iter()
        .copied()
        .filter(|id| (id - first) % plan.endpoints_per_user == 0)
        .collect();
    let calls_start = Instant::now();
    let mut pace = Pacer::start(CALL_TICK);
    let mut placed = 0usize;
    // (endpoint, action) → (stage, call ID); results are collected as they complete, not polled.
    let mut in_flight: std::collections::HashMap<(usize, ActionId), (u8, Option<String>)> =
        std::collections::HashMap::new();
    let pattern = plan.pattern;
    let mut requests = 0u64;
    second.reset();
    row_start = Instant::now();
    row = Row {
        phase: "calls",
        ..Row::default()
    };
    while !callers.is_empty() && (calls_start.elapsed() < plan.duration || !in_flight.is_empty()) {
        let due = if calls_start.elapsed() < plan.duration {
            (calls_start.elapsed().as_secs_f64() * plan.call_rate) as usize
        } else {
            placed
        };
        let new: Vec<usize> = (placed..due).map(|n| callers[n % callers.len()]).collect();
        placed = due.max(placed);
        let callee = plan.callee.clone();
        let mut next = std::mem::take(&mut in_flight);
        in_flight = sim
            .with(move |fe, now| {
                for (id, action) in fe.take_done() {
                    let Some((stage, call)) = next.remove(&(id, action)) else {
                        continue;
                    };
                    let Some(e) = fe.endpoint_mut(id) else {
                        continue;
                    };
                    let call = match e.take_result(action) {
                        None => continue,
                        Some(Ok(csta::Message::Response(Response::MakeCall { calling })))
                            if stage == 0 =>
                        {
                            calling.call_id
                        }
                        Some(Ok(csta::Message::Response(_))) if stage > 0 => call,
                        // A snapshot's answer, an error or a SIP failure ends the script (failures
                        // are counted by the endpoint).
                        Some(_) => None,
                    };
                    let Some(call_id) = call else {
                        continue;
                    };
                    let me = ConnectionId {
                        call_id: Some(call_id.clone()),
                        device_id: Some(e.config.line.clone()),
                    };
                    if let Some(r) = pattern.next(stage + 1, me, &callee)
                        && let Some(a) = e.request(r, now)
                    {
                        next.insert((id, a), (stage + 1, Some(call_id)));
                    }
                }
                for id in new {
                    if let Some(e) = fe.endpoint_mut(id) {
                        let line = e.config.line.clone();
                        if let Some(a) = e.request(pattern.first(line, &callee), now) {
                            next.insert((id, a), (0, None));
                        }
                    }
                }
                next
            })
            .await?;
        if row_start.elapsed() >= Duration::from_secs(1) {
            let c = collect(sim, &mut last_events).await?;
            for v in &c.requests {
                let _ = request_hist.record(u64::from(*v));
                let _ = second.record(u64::from(*v));
            }
            requests += c.requests.len() as u64;
            all_events += c.events;
            failures += c.failures;
            row.t = start.elapsed().as_secs();
            row.sessions = c.ready;
            row.requests = c.requests.len() as u64;
            row.failures = c.failures;
            row.events = c.events;
            row.p50_ms = second.value_at_quantile(0.5) as f64 / 1000.0;
            row.p99_ms = second.value_at_quantile(0.99) as f64 / 1000.0;
            progress(&row);
            rows.push(row.clone());
            second.reset();
            row_start = Instant::now();
        }
        if calls_start.elapsed() > plan.duration + Duration::from_secs(40) {
            // Requests still unanswered 40 s after the end are counted as failures.
            failures += in_flight.len() as u64;
            break;
        }
        pace.tick().await;
    }
    let c = collect(sim, &mut last_events).await?;
    for v in &c.requests {
        let _ = request_hist.record(u64::from(*v));
    }
    requests += c.requests.len() as u64;
    all_events += c.events;
    failures += c.failures;
    let call_secs = calls_start.elapsed().as_secs_f64().max(1e-9);
    let violations = sim
        .with(move |fe, _| {
            (first..first + total)
                .filter_map(|id| fe.endpoint(id).map(|e| e.violations().len() as u64))
                .sum::<u64>()
        })
        .await?;
    Ok(Summary {
        sessions_established: established,
        sessions_failed: total as u64 - established,
        signin_seconds: signin_done.as_secs_f64(),
        signin_ms: pct(&signin_hist),
        requests,
        requests_per_second: requests as f64 / call_secs,
        request_ms: pct(&request_hist),
        failures,
        events: all_events,
        violations,
        rows,
    })
}

/// The per-second rows as CSV.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from("t_s,phase,sessions,requests,failures,p50_ms,p99_ms,events\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{:.3},{:.3},{}\n",
            r.t, r.phase, r.sessions, r.requests, r.failures, r.p50_ms, r.p99_ms, r.events
        ));
    }
    out
}
