//! The orchestrator's PBX side: link events, the answers to the gateway's PBX requests, device
//! monitors and their resync, and PBX events fanned out to the sessions on a device.

use rcc_protocol::csta::{self, CstaError, Event, MonitorObject, Request, Response};

use super::monitors::Reported;
use super::pending::{PendingAnswer, Purpose};
use super::services;
use super::session::QueueFull;
use super::{Gateway, Output, traces};
use crate::metrics::EndReason;
use crate::notes::Way;
use crate::pbx::link::{Failure, LinkEvent};
use crate::pbx::pacer::Priority;

impl Gateway {
    /// Moves the link's outputs and events along until it has nothing more.
    pub(super) fn pump_link(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.link.poll_output() {
                self.outputs.push_back(Output::Pbx(o));
                progressed = true;
            }
            while let Some((e, frame)) = self.link.poll_event_with_frame() {
                self.link_event(e, frame);
                progressed = true;
            }
            if !progressed {
                return;
            }
        }
    }

    /// The PBX connection is open.
    pub fn pbx_connected(&mut self, now: std::time::Instant) {
        self.now = now;
        self.link.connected(now);
        self.pump_link();
    }

    /// The PBX connection failed or closed.
    pub fn pbx_disconnected(&mut self, reason: &str, now: std::time::Instant) {
        self.now = now;
        self.link.disconnected(reason, now);
        self.pump_link();
    }

    /// Bytes from the PBX.
    pub fn pbx_bytes(&mut self, data: &[u8], now: std::time::Instant) {
        self.now = now;
        self.link.receive(data, now);
        self.pump_link();
    }

    /// Sends a PBX request; the traced sessions it belongs to record its frame. A request the
    /// link cannot take comes back with its purpose, to answer the client.
    /// MonitorStart on a device and SnapshotDevice are paced (`pbx.pace_per_s`): a client's
    /// before the gateway's own resync work; `Ok(None)` means queued for its turn (it is
    /// traced when it leaves: [`LinkEvent::PacedSent`]).
    #[allow(clippy::result_large_err)] // the purpose is handed back once, not copied
    pub(super) fn pbx_request(
        &mut self,
        purpose: Purpose,
        req: Request,
    ) -> Result<Option<u16>, (Failure, Purpose)> {
        let sids = self
            .traces
            .of_purpose(&self.sessions, &self.monitors, &purpose);
        let paced = matches!(
            req,
            Request::MonitorStart {
                object: MonitorObject::Device(_),
                ..
            } | Request::SnapshotDevice { .. }
        );
        let sent = if paced {
            let priority = match &purpose {
                Purpose::Client { .. } => Priority::Client,
                Purpose::Monitor { device } if self.monitors.has_waiting(device) => {
                    Priority::Client
                }
                _ => Priority::Background,
            };
            self.link.request_paced(purpose, req, priority, self.now)
        } else {
            self.link.request(purpose, req, self.now).map(Some)
        };
        if matches!(sent, Ok(Some(_))) && !sids.is_empty() {
            let frame = self.link.last_sent().map(<[u8]>::to_vec);
            traces::pbx_notes(&mut self.outputs, &sids, Way::Out, frame.as_deref());
        }
        sent
    }

    fn link_event(&mut self, e: LinkEvent<Purpose>, frame: Option<Vec<u8>>) {
        match e {
            LinkEvent::Up => {
                tracing::info!("PBX link up");
                self.metrics.pbx_up.set(1);
                let _ =
                    self.pbx_request(Purpose::Features, Request::GetCstaFeatures { line: None });
                self.resync();
            }
            LinkEvent::Down { reason, was_up } => {
                self.metrics.pbx_up.set(0);
                if was_up {
                    tracing::warn!(%reason, "PBX link lost");
                    self.metrics.pbx_link_losses.inc();
                } else {
                    tracing::warn!(%reason, "PBX link: connection attempt failed");
                    self.metrics.pbx_connect_failures.inc();
                }
                // Call monitors went with the link; the resync asks for every device again.
                self.sessions.forget_call_monitors();
                self.monitor_retries.clear_all();
                self.metrics.monitors_awaiting_retry.set(0);
                // Requests parked for a monitor get their answer now.
                for answer in self.monitors.link_lost() {
                    self.answer_error(answer, Failure::LinkDown.to_csta());
                }
            }
            LinkEvent::Status { normal } => {
                tracing::warn!(normal, "PBX system status changed");
                self.metrics.pbx_up.set(i64::from(normal));
                if normal {
                    self.resync();
                }
            }
            LinkEvent::Completed { purpose, result } => {
                if frame.is_some() {
                    let sids = self
                        .traces
                        .of_purpose(&self.sessions, &self.monitors, &purpose);
                    traces::pbx_notes(&mut self.outputs, &sids, Way::In, frame.as_deref());
                }
                self.completed(purpose, result);
            }
            LinkEvent::Event(e) => self.pbx_event(e, frame.as_deref()),
            LinkEvent::MonitorEnded { cross_ref } => self.monitor_ended(&cross_ref),
            LinkEvent::PacedSent { invoke } => {
                if let Some(purpose) = self.link.purpose_of(invoke) {
                    let sids = self
                        .traces
                        .of_purpose(&self.sessions, &self.monitors, purpose);
                    traces::pbx_notes(&mut self.outputs, &sids, Way::Out, frame.as_deref());
                }
            }
        }
    }

    /// The PBX ended a monitor on its own: a device monitor that sessions still use is started
    /// again (and its calls reconciled by the snapshot that follows), one nobody uses is
    /// forgotten; a call monitor leaves its session's list.
    fn monitor_ended(&mut self, cross_ref: &str) {
        self.metrics.monitors_ended_by_pbx.inc();
        match self.monitors.ended(cross_ref) {
            Some(device) if !self.monitors.sessions_on(&device).is_empty() => {
                tracing::warn!(%device, cross_ref, "the PBX ended the monitor; starting it again");
                self.start_monitor(&device);
            }
            Some(device) => self.release_if_unused(&device, Purpose::Quiet),
            None => {
                if !self.sessions.forget_call_monitor(cross_ref) {
                    tracing::debug!(
                        cross_ref,
                        "the PBX ended a monitor the gateway did not hold"
                    );
                }
            }
        }
        self.metrics.monitors.set(self.monitors.count() as i64);
    }

    /// Re-creates every monitor and asks for each device's calls.
    fn resync(&mut self) {
        for (device, old) in self.monitors.take_for_resync() {
            if let Some(cross_ref) = old {
                let _ = self.pbx_request(Purpose::Quiet, Request::MonitorStop { cross_ref });
            }
            self.start_monitor(&device);
        }
    }

    /// Sends the device's MonitorStart, unless one is in flight or the monitor is up.
    pub(super) fn start_monitor(&mut self, device: &str) {
        // A client's MonitorStart parked the device as starting already; a resync did not.
        if !self.monitors.begin_start(device)
            && !self.monitors.get(device).is_some_and(|m| m.is_starting())
        {
            return;
        }
        let req = Request::MonitorStart {
            object: MonitorObject::Device(device.to_owned()),
            monitor_type: None,
        };
        let purpose = Purpose::Monitor {
            device: device.to_owned(),
        };
        if let Err((f, _)) = self.pbx_request(purpose, req) {
            let err = f.to_csta();
            for answer in self.monitors.start_failed(device) {
                self.answer_error(answer, err.clone());
            }
            self.monitor_refused(device, &f);
            self.release_if_unused(device, Purpose::Quiet);
        }
    }

    /// Passes a client's request to the PBX; its answer completes `answer`.
    pub(super) fn forward(
        &mut self,
        answer: PendingAnswer,
        pbx_request: Request,
        service: &'static str,
    ) {
        let sid = answer.session;
        let key = self.ids.next();
        let purpose = Purpose::Client {
            answer,
            started: self.now,
            service,
            key,
        };
        match self.pbx_request(purpose, pbx_request) {
            Ok(invoke) => {
                tracing::debug!(session = %sid, ?invoke, service, "request sent to the PBX (None: paced, queued)");
                if let Some(s) = self.sessions.get_mut(sid) {
                    s.delivery.request_out();
                    if services::starts_call_monitor(service) {
                        s.call_monitors_pending += 1;
                    }
                }
                self.added.sent(key);
            }
            Err((f, purpose)) => {
                self.metrics.request_done(service, "busy");
                if let Purpose::Client { answer, .. } = purpose {
                    self.answer_error(answer, f.to_csta());
                }
            }
        }
    }

    fn completed(&mut self, purpose: Purpose, result: Result<Response, Failure>) {
        match purpose {
            Purpose::Client {
                answer,
                started,
                service,
                key,
            } => self.client_completed(answer, started, service, key, result),
            Purpose::Monitor { device } => match result {
                Ok(Response::MonitorStart { cross_ref, .. }) => {
                    self.monitor_settled(&device);
                    let started = self.monitors.started(&device, cross_ref);
                    for answer in started.waiting {
                        self.attach(&device, answer);
                    }
                    // Every session that waited for it may have ended meanwhile.
                    self.release_if_unused(&device, Purpose::Quiet);
                    if started.resync {
                        let purpose = Purpose::Snapshot {
                            device: device.clone(),
                        };
                        let _ = self.pbx_request(purpose, Request::SnapshotDevice { device });
                    }
                }
                other => {
                    let failure = match other {
                        Err(f) => f,
                        Ok(_) => Failure::Csta(CstaError::operation("generic")),
                    };
                    let err = failure.to_csta();
                    for answer in self.monitors.start_failed(&device) {
                        self.answer_error(answer, err.clone());
                    }
                    // A second MonitorStart for a monitor that is up meanwhile changes nothing.
                    if !self.monitors.get(&device).is_some_and(|m| m.is_up()) {
                        self.monitor_refused(&device, &failure);
                    }
                    self.release_if_unused(&device, Purpose::Quiet);
                }
            },
            Purpose::Snapshot { device } => {
                if let Ok(Response::SnapshotDevice { calls }) = result {
                    self.reconcile(&device, &calls);
                }
            }
            Purpose::Features => {
                if let Ok(Response::GetCstaFeatures { services, .. }) = result
                    && !services.is_empty()
                {
                    self.pbx_features = Some(services);
                }
            }
            Purpose::Quiet | Purpose::Release { .. } => {}
        }
    }

    fn client_completed(
        &mut self,
        answer: PendingAnswer,
        started: std::time::Instant,
        service: &'static str,
        key: u64,
        result: Result<Response, Failure>,
    ) {
        self.added.answered(key, result.is_ok());
        let outcome = match &result {
            Ok(_) => "ok",
            Err(Failure::Csta(_)) => "csta error",
            Err(Failure::Timeout) => "timeout",
            Err(Failure::LinkDown) => "pbx down",
            Err(Failure::Busy) => "busy",
        };
        self.metrics.request_done(service, outcome);
        self.metrics.response_time(
            service,
            self.now.saturating_duration_since(started).as_secs_f64(),
        );
        let sid = answer.session;
        let call_monitor = services::starts_call_monitor(service);
        let Some(s) = self.sessions.get_mut(sid) else {
            // The session ended meanwhile: a call monitor granted now would be nobody's.
            if let (true, Ok(Response::MonitorStart { cross_ref, .. })) = (call_monitor, &result) {
                let stop = Request::MonitorStop {
                    cross_ref: cross_ref.clone(),
                };
                let _ = self.pbx_request(Purpose::Quiet, stop);
            }
            return;
        };
        s.delivery.request_back();
        if call_monitor {
            s.call_monitors_pending = s.call_monitors_pending.saturating_sub(1);
        }
        match &result {
            // Calls the PBX names in its answer: the client may act on them as soon as it
            // has the answer, before the events.
            Ok(Response::MakeCall { calling: c })
            | Ok(Response::ConsultationCall { initiated: c }) => {
                if let Some(call) = &c.call_id {
                    s.told(call);
                }
            }
            Ok(Response::ConferenceCall {
                conference: Some(c),
                ..
            }) => {
                if let Some(call) = &c.call_id {
                    s.told(call);
                }
            }
            Ok(Response::SnapshotDevice { calls }) => {
                for call in calls.iter().filter_map(|c| c.connection.call_id.as_deref()) {
                    s.told(call);
                }
            }
            Ok(Response::MonitorStart { cross_ref, .. }) if call_monitor => {
                // A call monitor (the line's own monitor never comes this way).
                s.call_monitors.push(cross_ref.clone());
            }
            _ => {}
        }
        let message = match result {
            Ok(mut r) => {
                s.view(&self.policy).response_to_lync(&mut r);
                csta::Message::Response(r)
            }
            Err(f) => csta::Message::Error(f.to_csta()),
        };
        self.answer(answer, &message);
        self.pump_events(sid);
    }

    /// Stops the device's PBX monitor when no session uses it; `purpose` says on whose behalf.
    pub(super) fn release_if_unused(&mut self, device: &str, purpose: Purpose) {
        match self.monitors.release_if_unused(device) {
            Some(Some(cross_ref)) => {
                self.monitor_settled(device);
                let _ = self.pbx_request(purpose, Request::MonitorStop { cross_ref });
            }
            Some(None) => self.monitor_settled(device),
            None => {}
        }
        self.metrics.monitors.set(self.monitors.count() as i64);
    }

    /// After a resync: calls the sessions know that the PBX no longer has are cleared for them.
    fn reconcile(&mut self, device: &str, calls: &[csta::SnapshotCall]) {
        let live: Vec<&str> = calls
            .iter()
            .filter_map(|c| c.connection.call_id.as_deref())
            .collect();
        for call in self.monitors.reconcile(device, &live) {
            let mut e = csta::CallEvent::new(csta::CallEventKind::ConnectionCleared, "");
            e.connection = Some(csta::ConnectionId::new(call, device));
            e.subject = Some(csta::DeviceRef::id(device));
            e.local_state = Some(csta::LocalConnectionState::Null);
            e.cause = Some(csta::Cause::new("normalClearing"));
            self.fan_out(device, &Event::Call(e));
        }
    }

    fn pbx_event(&mut self, e: Event, frame: Option<&[u8]>) {
        self.metrics.pbx_events.inc();
        let (device, repeat) = match self.monitors.report(e.cross_ref(), &e) {
            Some(Reported::News(d)) => (d.to_owned(), false),
            Some(Reported::Repeat(d)) => (d.to_owned(), true),
            None => {
                tracing::debug!(xref = e.cross_ref(), "event for an unknown monitor");
                return;
            }
        };
        if frame.is_some() {
            let sids = self
                .traces
                .on_device(&self.sessions, &self.monitors, &device);
            traces::pbx_notes(&mut self.outputs, &sids, Way::In, frame);
        }
        if repeat {
            self.metrics.repeated_events.inc();
            if let Event::Call(c) = &e {
                tracing::debug!(%device, event = c.kind.root_name(), "repeated event dropped");
            }
            return;
        }
        self.fan_out(&device, &e);
    }

    /// Sends an event to every session on the device, each in its own terms.
    fn fan_out(&mut self, device: &str, e: &Event) {
        let limit = self.config.sip.event_queue;
        for sid in self.monitors.sessions_on(device).to_vec() {
            let Some(s) = self.sessions.get_mut(sid) else {
                continue;
            };
            let Some(xref) = s.xref.clone() else {
                continue;
            };
            let mut event = e.clone();
            s.view(&self.policy).event_to_lync(&mut event, &xref);
            let body = csta::encode(&csta::Message::Event(event), &s.namespace).into_bytes();
            if let Err(QueueFull) = s.delivery.enqueue(body, limit) {
                tracing::warn!(
                    session = %sid,
                    "event queue full; ending the session so the client re-syncs"
                );
                self.metrics.ended(EndReason::EventOverflow);
                self.end_session(sid, true);
                continue;
            }
            self.pump_events(sid);
        }
    }
}
