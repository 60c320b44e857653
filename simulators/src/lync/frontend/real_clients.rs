//! Real clients (pidgin-sipe) on connections of their own: the pool registers them, serves
//! their sign-in subscriptions, and routes their RCC dialog by the static routes and trusted
//! applications exactly as a simulated endpoint's, with the gateway's in-dialog requests
//! proxied back to the client's connection.

use std::time::Instant;

use rcc_protocol::sip::Message;

use super::{Client, Frontend, Party, PoolOutput};
use crate::lync::frontend::ConnId;
use crate::lync::registrar::{ClientUser, Registrar, RegistrarStats};

impl Frontend {
    /// Serves real clients signing in as these users (see [`Registrar`]).
    pub fn serve_clients(&mut self, users: Vec<ClientUser>) {
        let pool = format!("{}:{}", self.config.fqdn, self.config.port);
        self.registrar = Some(Registrar::new(users, &pool));
    }

    /// The registrar's counters, when the pool serves real clients.
    pub fn registrar_stats(&self) -> Option<&RegistrarStats> {
        self.registrar.as_ref().map(Registrar::stats)
    }

    /// Whether a real client is signed in as `aor`.
    pub fn client_registered(&self, aor: &str) -> bool {
        self.registrar
            .as_ref()
            .is_some_and(|r| r.is_registered(aor))
    }

    /// A message from a real client's connection.
    pub fn client_conn_message(&mut self, conn: ConnId, m: Message, now: Instant) {
        self.record(Party::Remote(conn), Party::Pool, &m);
        if !m.is_request() {
            let branch = m.top_via_branch().unwrap_or_default();
            if self.gw_requests.contains_key(branch) {
                self.client_response(m);
            }
            // Otherwise an answer to the registrar's NOTIFY: nothing to do.
            return;
        }
        let call_id = m.call_id().unwrap_or_default();
        if Self::is_initial_invite(&m) || self.call_route.contains_key(call_id) {
            self.client_request(Client::Remote(conn), m, now);
            return;
        }
        let answers = match self.registrar.as_mut() {
            Some(r) => r.handle(&m),
            None => Vec::new(),
        };
        for a in answers {
            self.record(Party::Pool, Party::Remote(conn), &a);
            self.outputs.push_back(PoolOutput::Send {
                conn,
                bytes: a.to_bytes(),
            });
        }
    }

    /// A real client's connection closed: its dialogs are forgotten (a gateway request for
    /// them gets 481 from the pool, as from a Front End whose client went away).
    pub fn client_conn_closed(&mut self, conn: ConnId) {
        let gone: Vec<String> = self
            .by_call
            .iter()
            .filter(|(_, c)| **c == Client::Remote(conn))
            .map(|(call, _)| call.clone())
            .collect();
        for call in gone {
            self.forget_call(&call);
        }
    }

    /// A real client's name in the trace.
    pub(super) fn remote_name(&self, conn: ConnId) -> String {
        format!("real client {conn}")
    }
}
