//! The CSTA service layer: what a client's request inside its session comes to — answered by
//! the gateway itself, a monitor to start or stop on the client's line, or a request passed to
//! the PBX in PBX terms — decided without touching the engine's state.

use rcc_protocol::csta::{
    self, CstaError, MonitorObject, Request, Response, Service, SystemStatusValue,
};

use super::session::RccSession;
use crate::pbx::link::Failure;
use crate::rcc::features::features;
use crate::setup::Policy;

/// What the engine must do with a client's CSTA request.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // returned by value and taken apart at once
pub(crate) enum Step {
    /// Answer it now (with the outcome to count under its service name, if any).
    Answer(csta::Message, Option<&'static str>),
    /// Refused as not the client's to ask (counted as an authorization refusal, and as
    /// `refused` under the service name when given).
    Refused(CstaError, Option<&'static str>),
    /// The session's MonitorStart on its line, the PBX device named.
    Monitor(String),
    /// The session's MonitorStop, of the cross-reference ID it was given.
    StopMonitor,
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
                    return Step::Refused(CstaError::operation("generic"), None);
                }
                Err(e) => return Step::Refused(e, None),
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
            } else {
                Step::Answer(
                    csta::Message::Error(CstaError::operation("invalidMonitorCrossRefID")),
                    None,
                )
            }
        }
        other => {
            let service = other.service().request_name();
            match session.view(cx.policy).request_to_pbx(&other) {
                Err(e) => Step::Refused(e, Some(service)),
                Ok(_) if !cx.pbx_serving => Step::Unavailable(service),
                Ok(pbx_request) => Step::Forward(pbx_request, service),
            }
        }
    }
}

/// The error a client gets when the PBX cannot be reached.
pub(crate) fn link_down() -> CstaError {
    Failure::LinkDown.to_csta()
}
