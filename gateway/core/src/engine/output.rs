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
pub fn target_of(dialog: &Dialog) -> Target {
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
        Ok(Uri::Sip(u)) => target_of_uri(&u),
        _ => Target {
            host: String::new(),
            port: 0,
            tls: true,
        },
    }
}

fn target_of_uri(u: &SipUri) -> Target {
    let transport = u.params.value("transport").map(str::to_ascii_lowercase);
    let tls = u.secure || transport.as_deref().is_none_or(|t| t == "tls");
    Target {
        host: u
            .params
            .value("maddr")
            .map_or_else(|| u.host.to_string(), str::to_owned),
        port: u.port.unwrap_or(if tls { 5061 } else { 5060 }),
        tls,
    }
}
