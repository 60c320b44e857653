//! The RCC bootstrap: what the sign-in sequence has reached (INVITE with RequestSystemStatus,
//! GetCSTAFeatures, MonitorStart), what the gateway answered at each step, and which request
//! comes next. It sees decoded CSTA answers only; sending is the caller's.

use std::time::{Duration, Instant};

use rcc_protocol::csta::{self, MonitorObject, Request, Response, SystemStatusValue};
use serde::Serialize;

use crate::lync::profile::ClientProfile;

/// Where the endpoint is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "phase", content = "detail")]
pub enum Phase {
    /// Not signed in.
    Idle,
    /// INVITE sent.
    Inviting,
    /// Dialog up, GetCSTAFeatures / MonitorStart in progress.
    Bootstrapping,
    /// Monitoring the line.
    Ready,
    /// The gateway answered with a non-normal systemStatus: the client waits.
    Degraded(String),
    /// Signed out.
    SignedOut,
    /// Sign-in failed (the final status).
    Failed(String),
}

/// The sign-in sequence's state.
#[derive(Debug)]
pub(super) struct Bootstrap {
    phase: Phase,
    /// The monitorCrossRefID from MonitorStartResponse, while monitoring.
    xref: Option<String>,
    /// Capabilities from GetCSTAFeaturesResponse.
    features: Vec<String>,
    /// GetCSTAFeatures went out for this sign-in.
    features_asked: bool,
    /// When the INVITE went out, until MonitorStartResponse.
    started: Option<Instant>,
    /// Sign-ins answered with 2xx.
    sign_ins: u32,
}

impl Bootstrap {
    /// Not signed in.
    pub fn new() -> Self {
        Bootstrap {
            phase: Phase::Idle,
            xref: None,
            features: Vec::new(),
            features_asked: false,
            started: None,
            sign_ins: 0,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The monitorCrossRefID, while monitoring.
    pub fn xref(&self) -> Option<&str> {
        self.xref.as_deref()
    }

    /// Capabilities the gateway advertised.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// Times the endpoint signed in.
    pub fn sign_ins(&self) -> u32 {
        self.sign_ins
    }

    /// The sign-in INVITE went out.
    pub fn inviting(&mut self, now: Instant) {
        self.started = Some(now);
        self.xref = None;
        self.features_asked = false;
        self.phase = Phase::Inviting;
    }

    /// Whether the client would send `request`: Lync and Communicator show (and send) only
    /// what the gateway advertised, once it has been asked. The error says why not.
    pub fn offers(&self, request: &Request, profile: ClientProfile) -> Result<(), String> {
        let Some(name) = feature_name(request) else {
            return Ok(());
        };
        let gated = profile != ClientProfile::Sipe && self.features_asked;
        if gated && !self.features.iter().any(|f| f == name) {
            return Err(format!("not offered by the gateway: {name}"));
        }
        Ok(())
    }

    /// The sign-in INVITE was answered with 2xx and `status`: GetCSTAFeatures comes next,
    /// unless the gateway is not in normal service or it was already asked.
    pub fn signed_in(&mut self, status: &SystemStatusValue, line: &str) -> Option<Request> {
        self.sign_ins += 1;
        if *status != SystemStatusValue::Normal {
            self.phase = Phase::Degraded(status.as_str().to_owned());
            return None;
        }
        self.phase = Phase::Bootstrapping;
        if self.features_asked {
            return None;
        }
        self.features_asked = true;
        Some(Request::GetCstaFeatures {
            line: Some(line.to_owned()),
        })
    }

    /// GetCSTAFeatures was answered with 2xx carrying `answer`: MonitorStart comes next
    /// either way. The error is the violation when the answer is not GetCSTAFeaturesResponse.
    pub fn features_answered(
        &mut self,
        answer: Option<csta::Message>,
        line: &str,
    ) -> (Request, Result<(), String>) {
        let checked = match answer {
            Some(csta::Message::Response(Response::GetCstaFeatures { services, .. })) => {
                self.features = services.into_iter().map(|f| f.name).collect();
                Ok(())
            }
            _ => Err("GetCSTAFeatures answered without GetCSTAFeaturesResponse".into()),
        };
        let next = Request::MonitorStart {
            object: MonitorObject::Device(line.to_owned()),
            monitor_type: None,
        };
        (next, checked)
    }

    /// MonitorStart was answered with 2xx carrying `answer`: monitoring, or failed. Returns
    /// how long the sign-in took, the first time it completes.
    pub fn monitor_answered(
        &mut self,
        answer: Option<csta::Message>,
        now: Instant,
    ) -> Option<Duration> {
        match answer {
            Some(csta::Message::Response(Response::MonitorStart { cross_ref, .. })) => {
                self.xref = Some(cross_ref);
                self.phase = Phase::Ready;
                self.started
                    .take()
                    .map(|t| now.saturating_duration_since(t))
            }
            other => {
                self.phase = Phase::Failed(format!("MonitorStart refused: {other:?}"));
                None
            }
        }
    }

    /// Signing out: returns the monitor to stop, if any.
    pub fn sign_out(&mut self) -> Option<String> {
        self.phase = Phase::SignedOut;
        self.xref.take()
    }

    /// The dialog is gone, and the monitor with it.
    pub fn lost(&mut self) {
        self.xref = None;
    }

    /// Not signed in any more: waiting to sign in again (`None`), or failed for `why`.
    pub fn down(&mut self, why: Option<String>) {
        self.phase = match why {
            None => Phase::Idle,
            Some(why) => Phase::Failed(why),
        };
    }
}

/// The RequestSystemStatusResponse in a 2xx to INVITE; the error is the violation when it is
/// missing.
pub(super) fn system_status(answer: Option<csta::Message>) -> Result<SystemStatusValue, String> {
    match answer {
        Some(csta::Message::Response(Response::RequestSystemStatus { status })) => Ok(status),
        other => Err(format!(
            "2xx to INVITE without RequestSystemStatusResponse: {other:?}"
        )),
    }
}

/// The GetCSTAFeaturesResponse capability a request needs.
fn feature_name(r: &Request) -> Option<&'static str> {
    Some(match r {
        Request::MakeCall { .. } => "makeCall",
        Request::AnswerCall { .. } => "answerCall",
        Request::ClearConnection { .. } => "clearConnection",
        Request::ClearCall { .. } => "clearCall",
        Request::HoldCall { .. } => "holdCall",
        Request::RetrieveCall { .. } => "retrieveCall",
        Request::AlternateCall { .. } => "alternateCall",
        Request::ReconnectCall { .. } => "reconnectCall",
        Request::ConsultationCall { .. } => "consultationCall",
        Request::TransferCall { .. } => "transferCall",
        Request::SingleStepTransferCall { .. } => "singleStepTransfer",
        Request::DeflectCall { .. } => "deflectCall",
        Request::ConferenceCall { .. } => "conferenceCall",
        Request::GenerateDigits { .. } => "generateDigits",
        Request::SetForwarding { .. } => "setForwarding",
        Request::GetForwarding { .. } => "getForwarding",
        Request::SetDoNotDisturb { .. } => "setDoNotDisturb",
        Request::SnapshotDevice { .. } => "snapshotDevice",
        _ => return None,
    })
}
