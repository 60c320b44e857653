//! The CSTA service layer: what a client's request inside its session comes to — answered by
//! the gateway itself, a monitor to start or stop on the client's line, or a request passed to
//! the PBX in PBX terms — decided without touching the engine's state.

use rcc_protocol::csta::{
    self, ConnectionId, CstaError, MonitorObject, Request, Response, Service, SystemStatusValue,
};

use super::monitors::Monitors;
use super::session::RccSession;
use crate::metrics::RefusalReason;
use crate::pbx::link::Failure;
use crate::rcc::features::features;
use crate::setup::Policy;

/// What the engine must do with a client's CSTA request.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // returned by value and taken apart at once
pub(crate) enum Step {
    /// Answer it now (with the outcome to count under its service name, if any).
    Answer(csta::Message, Option<&'static str>),
    /// Refused as not the client's to ask: counted as refused for `reason`, and as `refused`
    /// under the service name when given.
    Refused {
        error: CstaError,
        service: Option<&'static str>,
        reason: RefusalReason,
    },
    /// The session's MonitorStart on its line, the PBX device named.
    Monitor(String),
    /// The session's MonitorStop, of the cross-reference ID it was given.
    StopMonitor,
    /// The session's MonitorStop of one of its call monitors: pass it to the PBX.
    StopCallMonitor(String),
    /// Pass it to the PBX.
    Forward(Request, &'static str),
    /// The PBX is not serving: answer the link failure (counted as `pbx down`).
    Unavailable(&'static str),
}

/// The gateway's own state a service may depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) policy: &'a Policy,
    /// What the PBX answered to the gateway's GetCSTAFeatures.
    pub(crate) pbx_features: Option<&'a [csta::Feature]>,
    pub(crate) pbx_serving: bool,
    /// The calls each monitored device is in.
    pub(crate) monitors: &'a Monitors,
}

/// Call monitors one session may hold.
pub(crate) const CALL_MONITORS_PER_SESSION: usize = 8;

fn refused(error: CstaError, service: Option<&'static str>, reason: RefusalReason) -> Step {
    Step::Refused {
        error,
        service,
        reason,
    }
}

/// A client may act on a call only when the device its request names (its own line unless the
/// request names another it may control) is a party to it, as that device's monitor knows.
fn foreign_call(r: &Request, session: &RccSession, monitors: &Monitors) -> bool {
    let own = session.device.as_str();
    let known = |c: &ConnectionId, on: Option<&str>| match &c.call_id {
        Some(call) => {
            session.told_calls.iter().any(|t| t == call)
                || monitors.has_call(on.or(c.device_id.as_deref()).unwrap_or(own), call)
        }
        // Without a call ID the PBX has nothing to act on; it answers that itself.
        None => true,
    };
    use Request as R;
    // At most two connections, named without allocating (this runs for every request).
    let named: [Option<(&ConnectionId, Option<&str>)>; 2] = match r {
        // Any party may be named here: the client's line must be in the call.
        R::ClearCall { call } => [Some((call, Some(own))), None],
        R::MonitorStart {
            object: MonitorObject::Call(c),
            ..
        } => [Some((c, Some(own))), None],
        R::AnswerCall { call }
        | R::HoldCall { call, .. }
        | R::RetrieveCall { call }
        | R::DeflectCall { call, .. } => [Some((call, None)), None],
        R::ClearConnection { connection, .. } | R::GenerateDigits { connection, .. } => {
            [Some((connection, None)), None]
        }
        R::AlternateCall { held, active }
        | R::ReconnectCall { active, held }
        | R::TransferCall { held, active }
        | R::ConferenceCall { held, active } => [Some((held, None)), Some((active, None))],
        R::ConsultationCall { existing, .. } => [Some((existing, None)), None],
        R::SingleStepTransferCall { active, .. } => [Some((active, None)), None],
        _ => [None, None],
    };
    named.into_iter().flatten().any(|(c, on)| !known(c, on))
}

/// Whether a request passed on under `service` starts a call monitor (the line's own
/// monitor never goes to the PBX as a client request).
pub(crate) fn starts_call_monitor(service: &str) -> bool {
    service == Service::MonitorStart.request_name()
}

/// Decides what `request` from `session` comes to.
pub(crate) fn decide(request: Request, session: &mut RccSession, cx: Context<'_>) -> Step {
    let status = if cx.pbx_serving {
        SystemStatusValue::Normal
    } else {
        SystemStatusValue::Disabled
    };
    match request {
        Request::GetCstaFeatures { .. } => Step::Answer(
            csta::Message::Response(features(cx.pbx_features)),
            Some("GetCSTAFeatures"),
        ),
        Request::RequestSystemStatus { .. } => Step::Answer(
            csta::Message::Response(Response::RequestSystemStatus { status }),
            None,
        ),
        Request::SystemStatus { .. } => Step::Answer(
            csta::Message::Response(Response::Empty(Service::SystemStatus)),
            None,
        ),
        request @ Request::MonitorStart {
            object: MonitorObject::Device(_),
            ..
        } => {
            let device = match session.view(cx.policy).request_to_pbx(&request) {
                Ok(Request::MonitorStart {
                    object: MonitorObject::Device(dev),
                    ..
                }) => dev,
                Ok(_) => {
                    return refused(
                        CstaError::operation("generic"),
                        None,
                        RefusalReason::Authorization,
                    );
                }
                Err(e) => return refused(e, None, RefusalReason::Authorization),
            };
            match &session.xref {
                // Already monitoring (a client repeating itself): same answer.
                Some(x) => Step::Answer(
                    csta::Message::Response(Response::MonitorStart {
                        cross_ref: x.clone(),
                        existing_calls: None,
                    }),
                    None,
                ),
                None => Step::Monitor(device),
            }
        }
        Request::MonitorStop { cross_ref } => {
            if session.xref.as_deref() == Some(cross_ref.as_str()) {
                Step::StopMonitor
            } else if session.call_monitors.contains(&cross_ref) {
                Step::StopCallMonitor(cross_ref)
            } else {
                Step::Answer(
                    csta::Message::Error(CstaError::operation("invalidMonitorCrossRefID")),
                    None,
                )
            }
        }
        Request::SystemRegister { .. } | Request::SystemRegisterCancel { .. } => {
            // The gateway's own registration with the PBX is not a client's to change.
            let service = request.service().request_name();
            refused(privilege(), Some(service), RefusalReason::SystemServices)
        }
        other => {
            let service = other.service().request_name();
            match session.view(cx.policy).request_to_pbx(&other) {
                Err(e) => refused(e, Some(service), RefusalReason::Authorization),
                Ok(_) if !cx.pbx_serving => Step::Unavailable(service),
                Ok(r) if foreign_call(&r, session, cx.monitors) => {
                    refused(privilege(), Some(service), RefusalReason::CallAuthorization)
                }
                Ok(Request::MonitorStart { .. })
                    if session.call_monitors.len() + session.call_monitors_pending
                        >= CALL_MONITORS_PER_SESSION =>
                {
                    let full = CstaError::resource("overallMonitorLimitExceeded");
                    refused(full, Some(service), RefusalReason::CallMonitorLimit)
                }
                Ok(pbx_request) => Step::Forward(pbx_request, service),
            }
        }
    }
}

/// The error a client gets for a device or call that is not its to act on.
fn privilege() -> CstaError {
    CstaError::operation("privilegeViolationSpecifiedDevice")
}

/// The error a client gets when the PBX cannot be reached.
pub(crate) fn link_down() -> CstaError {
    Failure::LinkDown.to_csta()
}
