//! GetCSTAFeaturesResponse: what the gateway offers a Lync client, by the ECMA-285 list names.
//! The client shows only what is advertised, so the list is what the gateway translates,
//! narrowed to what the PBX answered to its own GetCSTAFeatures.

use rcc_protocol::csta::{Feature, Response};

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

/// The response, narrowed to what the PBX itself advertised when it did.
pub(crate) fn features(pbx: Option<&[Feature]>) -> Response {
    let offered = |name: &str| {
        pbx.is_none_or(|list| {
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
        let Response::GetCstaFeatures { services, .. } = features(Some(&pbx)) else {
            panic!("features response");
        };
        let names: Vec<_> = services.iter().map(|f| f.name.as_str()).collect();
        assert!(names.contains(&"makeCall"));
        assert!(names.contains(&"monitorStart"));
        assert!(!names.contains(&"holdCall"));
    }
}
