//! A PBX that a test or a benchmark plays itself: it reads what the gateway writes on the link
//! (Annex J frames), keeps every frame and the request in it, answers a sign-in's requests on
//! its own when asked to, and frames the answers and events the script gives it.

use rcc_protocol::csta::{self, Event, Request, Response};
use rcc_protocol::framing::{AnnexJDecoder, EVENT_INVOKE_ID, InvokeId, encode_annex_j};

/// One frame the gateway sent.
#[derive(Debug, Clone)]
pub struct SentFrame {
    /// The frame, framed again from its invoke ID and XML (the gateway writes the canonical
    /// header, so these are the bytes it sent).
    pub bytes: Vec<u8>,
    /// Its invoke ID, when numeric.
    pub invoke: Option<u16>,
    /// The CSTA request it carried, when it carried one.
    pub request: Option<Request>,
}

/// The scripted PBX.
#[derive(Default)]
pub struct ScriptedPbx {
    decoder: AnnexJDecoder,
    sent: Vec<SentFrame>,
    /// Answers MonitorStart with this cross-reference ID and SnapshotDevice with no call.
    auto_xref: Option<String>,
}

impl std::fmt::Debug for ScriptedPbx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedPbx")
            .field("sent", &self.sent.len())
            .field("auto_xref", &self.auto_xref)
            .finish_non_exhaustive()
    }
}

impl ScriptedPbx {
    /// A PBX that answers nothing by itself.
    pub fn new() -> ScriptedPbx {
        ScriptedPbx::default()
    }

    /// A PBX that answers what a sign-in needs: MonitorStart (under `xref`) and
    /// SnapshotDevice (no call).
    pub fn answering_sign_ins(xref: &str) -> ScriptedPbx {
        ScriptedPbx {
            auto_xref: Some(xref.to_owned()),
            ..ScriptedPbx::default()
        }
    }

    /// The gateway wrote `bytes` on the link; returns the frames the PBX answers at once.
    pub fn receive(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.decoder.push(bytes);
        let mut answers = Vec::new();
        while let Ok(Some(frame)) = self.decoder.next_frame() {
            let invoke = match frame.invoke_id {
                Some(InvokeId::Id(i)) => Some(i),
                _ => None,
            };
            let request = match csta::decode(&frame.xml).map(|d| d.message) {
                Ok(csta::Message::Request(r)) => Some(r),
                _ => None,
            };
            let auto = match (&self.auto_xref, &request, invoke) {
                (Some(xref), Some(Request::MonitorStart { .. }), Some(i)) => Some((
                    i,
                    Response::MonitorStart {
                        cross_ref: xref.clone(),
                        existing_calls: None,
                    },
                )),
                (Some(_), Some(Request::SnapshotDevice { .. }), Some(i)) => {
                    Some((i, Response::SnapshotDevice { calls: Vec::new() }))
                }
                _ => None,
            };
            answers.extend(auto.map(|(i, r)| ScriptedPbx::answer(i, r)));
            let bytes = match invoke {
                Some(i) => encode_annex_j(i, &frame.xml).unwrap_or_default(),
                None => frame.xml.clone(),
            };
            self.sent.push(SentFrame {
                bytes,
                invoke,
                request,
            });
        }
        answers
    }

    /// Every frame the gateway sent, in order.
    pub fn sent(&self) -> &[SentFrame] {
        &self.sent
    }

    /// The last frame the gateway sent.
    pub fn last(&self) -> Option<&SentFrame> {
        self.sent.last()
    }

    /// The last request the gateway sent that `matches`.
    pub fn last_request(&self, matches: impl Fn(&Request) -> bool) -> Option<&SentFrame> {
        self.sent
            .iter()
            .rev()
            .find(|f| f.request.as_ref().is_some_and(&matches))
    }

    /// The frame answering the last frame the gateway sent with `response`.
    pub fn answer_last(&self, response: Response) -> Option<Vec<u8>> {
        let invoke = self.last()?.invoke?;
        Some(ScriptedPbx::answer(invoke, response))
    }

    /// The frame answering request `invoke` with `response`.
    pub fn answer(invoke: u16, response: Response) -> Vec<u8> {
        frame(invoke, &csta::Message::Response(response))
    }

    /// The frame of a PBX event.
    pub fn event(event: Event) -> Vec<u8> {
        frame(EVENT_INVOKE_ID, &csta::Message::Event(event))
    }
}

fn frame(invoke: u16, message: &csta::Message) -> Vec<u8> {
    let xml = csta::encode(message, csta::ED3);
    // A CSTA message the encoder wrote always fits one Annex J frame; an empty frame would
    // make the gateway under test report a framing error, which a test would show.
    encode_annex_j(invoke, xml.as_bytes()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_requests_are_answered_and_every_frame_is_kept() {
        let mut pbx = ScriptedPbx::answering_sign_ins("px1");
        let start = Request::MonitorStart {
            object: csta::MonitorObject::Device("1001".into()),
            monitor_type: None,
        };
        let bytes = frame(7, &csta::Message::Request(start));
        // Split anywhere: the decoder reassembles.
        assert!(pbx.receive(&bytes[..5]).is_empty());
        let answers = pbx.receive(&bytes[5..]);
        assert_eq!(answers.len(), 1);
        let mut d = AnnexJDecoder::new();
        d.push(&answers[0]);
        let f = d.next_frame().ok().flatten().expect("an answer frame");
        assert_eq!(f.invoke_id, Some(InvokeId::Id(7)));
        let decoded = csta::decode(&f.xml).expect("decodes");
        assert!(matches!(
            decoded.message,
            csta::Message::Response(Response::MonitorStart { ref cross_ref, .. }) if cross_ref == "px1"
        ));
        assert_eq!(pbx.sent().len(), 1);
        assert_eq!(pbx.last().map(|f| f.bytes.clone()), Some(bytes));
        assert!(
            ScriptedPbx::new().receive(&answers[0]).is_empty(),
            "not scripted"
        );
    }
}
