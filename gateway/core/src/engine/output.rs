//! What the engine asks of the shell, and where an in-dialog request goes.

use rcc_protocol::sip::{Dialog, SipUri, Uri};

use crate::ids::FlowId;
use crate::notes::SessionNote;
use crate::pbx::link::LinkOutput;

/// Where an in-dialog request goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Host of the next hop (first Route, else the remote target).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `tls` or `tcp`.
    pub tls: bool,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write a response on the connection its request came on.
    Respond {
        /// The connection.
        flow: FlowId,
        /// The response.
        bytes: Vec<u8>,
    },
    /// Send a request: on `flow` while it is open, otherwise on a connection to `target`.
    Request {
        /// The dialog's connection.
        flow: FlowId,
        /// The next hop.
        target: Target,
        /// The request.
        bytes: Vec<u8>,
    },
    /// Act on the PBX link.
    Pbx(LinkOutput),
    /// A record for the per-session traces (`[observe.session_traces]`).
    Trace(SessionNote),
}

/// The next hop of a dialog's requests: the first route (loose routing) or the remote target.
/// A `sip:` URI without `;transport=` takes `default_tls` (the transport the dialog came over,
/// as far as the gateway listens on it); `sips:` is TLS.
pub fn target_of(dialog: &Dialog, default_tls: bool) -> Target {
    let uri_text = dialog
        .route_set
        .first()
        .map(|r| {
            r.trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or(r)
                .to_owned()
        })
        .unwrap_or_else(|| dialog.remote_target.clone());
    match Uri::parse(&uri_text) {
        Ok(Uri::Sip(u)) => target_of_uri(&u, default_tls),
        _ => Target {
            host: String::new(),
            port: 0,
            tls: default_tls,
        },
    }
}

fn target_of_uri(u: &SipUri, default_tls: bool) -> Target {
    let transport = u.params.value("transport").map(str::to_ascii_lowercase);
    let tls = u.secure
        || match transport.as_deref() {
            Some(t) => t == "tls",
            None => default_tls,
        };
    Target {
        host: u
            .params
            .value("maddr")
            .map_or_else(|| u.host.to_string(), str::to_owned),
        port: u.port.unwrap_or(if tls { 5061 } else { 5060 }),
        tls,
    }
}

#[cfg(test)]
mod tests {
    use rcc_protocol::sip::Dialog;

    use super::*;

    fn dialog(route: Option<&str>, target: &str) -> Dialog {
        let rr = route.map_or(String::new(), |r| format!("Record-Route: {r}\r\n"));
        let text = format!(
            "INVITE sip:gw@lab SIP/2.0\r\nVia: SIP/2.0/TCP fe:5061;branch=z9hG4bK1\r\n{rr}\
             From: <sip:a@lab>;tag=1\r\nTo: <sip:gw@lab>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             Contact: <{target}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let invite = rcc_protocol::sip::Message::parse(text.as_bytes()).expect("test INVITE");
        Dialog::as_uas(&invite, "t", "<sip:gw@lab>").expect("a dialog")
    }

    #[test]
    fn a_uri_without_transport_follows_the_gateways_listener() {
        let d = dialog(Some("<sip:fe.lab:5061;lr>"), "sip:alice@10.0.0.1");
        assert!(target_of(&d, true).tls);
        let t = target_of(&d, false);
        assert!(!t.tls, "a TCP-only gateway dials TCP");
        assert_eq!((t.host.as_str(), t.port), ("fe.lab", 5061));
        let d = dialog(Some("<sip:fe.lab;transport=tls;lr>"), "sip:alice@10.0.0.1");
        assert_eq!(
            target_of(&d, false),
            Target {
                host: "fe.lab".into(),
                port: 5061,
                tls: true
            }
        );
        let d = dialog(None, "sips:alice@10.0.0.1");
        assert!(target_of(&d, false).tls);
        let d = dialog(None, "sip:alice@10.0.0.1;transport=tcp");
        assert_eq!(target_of(&d, true).port, 5060);
    }
}
