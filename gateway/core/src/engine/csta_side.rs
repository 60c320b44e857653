//! The orchestrator's CSTA side: a client's request in an INFO, decided by [`services`] and
//! applied here (answered, parked on the line's monitor, or passed to the PBX), and the answers
//! owed to clients.

use rcc_protocol::csta::{self, CstaError};
use rcc_protocol::sip::Message;

use super::Gateway;
use super::monitors::Parked;
use super::pending::{PendingAnswer, Purpose};
use super::services::{self, Context, Step};
use super::uas::{self, Refusal};
use crate::ids::{FlowId, SessionId};
use crate::sip::transaction::TxKey;

impl Gateway {
    /// Answers a client's INFO with a CSTA body (200 OK), in the session's namespace; a
    /// CSTAErrorCode (the gateway's or the PBX's) is also one log line with the session, user,
    /// line and error.
    pub(super) fn answer(&mut self, answer: PendingAnswer, msg: &csta::Message) {
        if let (csta::Message::Error(err), Some(s)) = (msg, self.sessions.get(answer.session)) {
            tracing::info!(
                session = %answer.session,
                user = %s.user,
                line = %s.line,
                peer = self.peer(answer.flow),
                category = err.category.as_str(),
                error = %err.value,
                "CSTA error answered"
            );
        }
        let ns = self
            .sessions
            .get(answer.session)
            .map_or(csta::ED3, |s| s.namespace.as_str());
        let body = csta::encode(msg, ns).into_bytes();
        let resp = uas::with_csta(*answer.head, body);
        self.metrics.sip_response(200);
        self.respond(answer.flow, Some(&answer.tx), &resp);
    }

    pub(super) fn answer_error(&mut self, answer: PendingAnswer, err: CstaError) {
        self.answer(answer, &csta::Message::Error(err));
    }

    pub(super) fn info(&mut self, sid: SessionId, flow: FlowId, tx: &TxKey, req: &Message) {
        let decoded = match uas::csta_body(req) {
            Ok(Some(d)) => d,
            // An INFO without a body is a keep-alive.
            Ok(None) => return self.reply_code(flow, tx, req, 200),
            Err(refusal) => {
                self.metrics.malformed.inc();
                return self.reply(flow, Some(tx), req, &refusal);
            }
        };
        let csta::Message::Request(request) = decoded.message else {
            let refusal = Refusal::new(400, "Bad Request (CSTA body is not a request)");
            return self.reply(flow, Some(tx), req, &refusal);
        };
        let tag = self.ids.unique("gw");
        let answer = PendingAnswer {
            session: sid,
            tx: tx.clone(),
            flow,
            head: Box::new(Message::response_to(req, 200, "OK", &tag)),
        };
        let cx = Context {
            policy: &self.policy,
            pbx_features: self.pbx_features.as_deref(),
            pbx_serving: self.link.is_serving(),
            monitors: &self.monitors,
        };
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        if let Some(ns) = decoded.namespace {
            s.namespace = ns;
        }
        match services::decide(request, s, cx) {
            Step::Answer(msg, counted) => {
                self.answer(answer, &msg);
                if let Some(service) = counted {
                    self.metrics.request_done(service, "ok");
                }
            }
            Step::Refused {
                error: err,
                service,
                reason,
            } => {
                tracing::info!(
                    session = %sid,
                    user = %s.user,
                    line = %s.line,
                    reason = reason.as_str(),
                    error = %err.value,
                    "CSTA request refused"
                );
                self.metrics.refused(reason);
                if let Some(service) = service {
                    self.metrics.request_done(service, "refused");
                }
                self.answer_error(answer, err);
            }
            Step::Unavailable(service) => {
                self.metrics.request_done(service, "pbx down");
                self.answer_error(answer, services::link_down());
            }
            Step::Monitor(pbx_device) => self.monitor_line(&pbx_device, answer),
            Step::StopMonitor => {
                self.detach(sid);
                let done = csta::Response::Empty(csta::Service::MonitorStop);
                self.answer(answer, &csta::Message::Response(done));
            }
            Step::StopCallMonitor(cross_ref) => {
                if let Some(s) = self.sessions.get_mut(sid) {
                    s.call_monitors.retain(|x| *x != cross_ref);
                }
                let stop = csta::Request::MonitorStop { cross_ref };
                self.forward(answer, stop, csta::Service::MonitorStop.request_name());
            }
            Step::Forward(pbx_request, service) => self.forward(answer, pbx_request, service),
        }
    }

    /// A client's MonitorStart on its line: attached at once, parked on the MonitorStart in
    /// flight, or parked on a new one.
    fn monitor_line(&mut self, device: &str, answer: PendingAnswer) {
        if !self.link.is_up() && self.monitors.get(device).is_none_or(|m| !m.is_up()) {
            self.answer_error(answer, services::link_down());
            return;
        }
        match self.monitors.park(device, answer) {
            Parked::Ready(answer) => self.attach(device, answer),
            Parked::Waiting => {}
            Parked::Start => self.start_monitor(device),
        }
    }

    /// Gives a session its cross-reference ID on a device whose PBX monitor is up.
    pub(super) fn attach(&mut self, device: &str, answer: PendingAnswer) {
        let xref = self.ids.unique("");
        let sid = answer.session;
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        s.xref = Some(xref.clone());
        s.monitor_device = Some(device.to_owned());
        self.monitors.attach(device, sid);
        self.metrics.monitors.set(self.monitors.count() as i64);
        let r = csta::Response::MonitorStart {
            cross_ref: xref,
            existing_calls: None,
        };
        self.answer(answer, &csta::Message::Response(r));
        self.pump_events(sid);
    }

    /// Takes a session off its device; the PBX monitor goes with the last session.
    pub(super) fn detach(&mut self, sid: SessionId) {
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        s.xref = None;
        // The device of its monitor (it may be another line than its own), else its line
        // (a MonitorStart may still be waiting there).
        let device = s.monitor_device.take().unwrap_or_else(|| s.device.clone());
        self.monitors.detach(&device, sid);
        self.release_if_unused(&device, Purpose::Release { session: sid });
    }
}
