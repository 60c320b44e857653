//! GetCSTAFeaturesResponse: what the gateway offers a Lync client, by the ECMA-285 list names.
//! The client shows only what is advertised, so the list is what the gateway translates and the
//! PBX profile supports.

use rcc_protocol::csta::{Feature, Response};

use crate::config::PbxProfile;

const SERVICES: &[(&str, &str)] = &[
    ("capExchangeServList", "getCSTAFeatures"),
    ("systemStatServList", "requestSystemStatus"),
    ("monitoringServList", "monitorStart"),
    ("monitoringServList", "monitorStop"),
    ("snapshotServList", "snapshotDevice"),
    ("callControlServList", "alternateCall"),
    ("callControlServList", "answerCall"),
    ("callControlServList", "clearCall"),
    ("callControlServList", "clearConnection"),
    ("callControlServList", "conferenceCall"),
    ("callControlServList", "consultationCall"),
    ("callControlServList", "deflectCall"),
    ("callControlServList", "holdCall"),
    ("callControlServList", "makeCall"),
    ("callControlServList", "reconnectCall"),
    ("callControlServList", "retrieveCall"),
    ("callControlServList", "singleStepTransfer"),
    ("callControlServList", "transferCall"),
    ("callAssociatedServList", "generateDigits"),
    ("logicalServList", "getForwarding"),
    ("logicalServList", "setForwarding"),
    ("logicalServList", "setDoNotDisturb"),
];

const EVENTS: &[(&str, &str)] = &[
    ("callControlEvtsList", "callCleared"),
    ("callControlEvtsList", "conferenced"),
    ("callControlEvtsList", "connectionCleared"),
    ("callControlEvtsList", "delivered"),
    ("callControlEvtsList", "diverted"),
    ("callControlEvtsList", "established"),
    ("callControlEvtsList", "failed"),
    ("callControlEvtsList", "held"),
    ("callControlEvtsList", "originated"),
    ("callControlEvtsList", "retrieved"),
    ("callControlEvtsList", "serviceInitiated"),
    ("callControlEvtsList", "transferred"),
    ("callAssociatedEvtsList", "digitsGenerated"),
    ("logicalEvtsList", "forwarding"),
    ("logicalEvtsList", "doNotDisturb"),
];

/// Services a profile's PBX does not offer (none of the simulated profiles lacks one; real
/// switches are narrowed with `pbx_features`, when the PBX answers GetCSTAFeatures).
fn unsupported(_profile: PbxProfile) -> &'static [&'static str] {
    &[]
}

/// The response for a profile, narrowed to what the PBX itself advertised when it did.
pub fn features(profile: PbxProfile, pbx: Option<&[Feature]>) -> Response {
    let missing = unsupported(profile);
    let offered = |name: &str| {
        !missing.contains(&name)
            && pbx.is_none_or(|list| {
                list.iter().any(|f| {
                    f.name.eq_ignore_ascii_case(name)
                        // PBXs spell single-step transfer both ways.
                        || (name == "singleStepTransfer" && f.name == "singleStepTransferCall")
                })
            })
    };
    let always = [
        "getCSTAFeatures",
        "requestSystemStatus",
        "monitorStart",
        "monitorStop",
    ];
    Response::GetCstaFeatures {
        services: SERVICES
            .iter()
            .filter(|(_, n)| always.contains(n) || offered(n))
            .map(|(l, n)| Feature::new(l, n))
            .collect(),
        events: EVENTS.iter().map(|(l, n)| Feature::new(l, n)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowed_by_what_the_pbx_offers() {
        let pbx = [Feature::new("callControlServList", "makeCall")];
        let Response::GetCstaFeatures { services, .. } = features(PbxProfile::Generic, Some(&pbx))
        else {
            panic!("features response");
        };
        let names: Vec<_> = services.iter().map(|f| f.name.as_str()).collect();
        assert!(names.contains(&"makeCall"));
        assert!(names.contains(&"monitorStart"));
        assert!(!names.contains(&"holdCall"));
    }
}
