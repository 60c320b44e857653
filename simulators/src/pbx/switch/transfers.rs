//! The services that join calls or hand one on: TransferCall, ConferenceCall and
//! SingleStepTransferCall. Each moves parties into a new call and reports the old and new
//! connections.

use std::time::Instant;

use rcc_protocol::csta::{
    CallEventKind, Cause, ConnectionId, ConnectionListItem, LocalConnectionState as State, Response,
};

use super::Switch;
use super::calls::Party;
use super::events::{call_event, conn};
use super::refusal::{Outcome, op, state_err};
use super::routing::Offer;
use crate::pbx::directory::strip_decoration;

impl Switch {
    /// TransferCall (the device leaves) or ConferenceCall (it stays): the other parties of the
    /// held and the active call are joined in a new call.
    pub(super) fn transfer(
        &mut self,
        held: &ConnectionId,
        active: &ConnectionId,
        conference: bool,
    ) -> Outcome {
        let (c1, c2, a) = self.held_and_active(held, active)?;
        if c1 == c2 {
            return Err(op("invalidActiveConnectionID"));
        }
        self.expect_state(&c1, &a, State::Hold, "noHeldCall")?;
        self.expect_state(&c2, &a, State::Connected, "invalidActiveConnectionState")?;
        let o1 = self.calls.others(&c1, &a);
        let o2 = self.calls.others(&c2, &a);
        let Some(added) = o2.first().map(|p| p.device.clone()) else {
            return Err(state_err("invalidActiveConnectionState"));
        };
        if o1.is_empty() {
            return Err(state_err("noHeldCall"));
        }
        let cn = self.calls.new_id(self.config.call_ids);
        let mut moved: Vec<(String, Party)> = Vec::new();
        if conference {
            let own = Party {
                device: a.clone(),
                internal: true,
                state: State::Connected,
            };
            moved.push((c1.clone(), own));
        }
        moved.extend(o1.into_iter().map(|p| (c1.clone(), p)));
        moved.extend(o2.into_iter().map(|p| (c2.clone(), p)));
        let connections: Vec<ConnectionListItem> = moved
            .iter()
            .map(|(old, p)| moved_item(&cn, old, &p.device))
            .collect();
        let (calling, _) = self.calls.refs(&c1);
        let (_, called) = self.calls.refs(&c2);
        self.calls.remove(&c1);
        self.calls.remove(&c2);
        self.merge(&cn, &moved, calling, called);
        let (kind, cause) = if conference {
            (CallEventKind::Conferenced, "conference")
        } else {
            (CallEventKind::Transferred, "transfer")
        };
        let mut e = call_event(kind, conn(&c1, &a));
        e.secondary_old_call = Some(conn(&c2, &a));
        e.subject = Some(self.dref(&a));
        e.target = Some(self.dref(&added));
        e.connections = connections.clone();
        e.cause = Some(Cause::new(cause));
        self.notify(&cn, e, &[&a]);
        Ok(if conference {
            Response::ConferenceCall {
                conference: Some(conn(&cn, &a)),
                connections,
            }
        } else {
            Response::TransferCall {
                transferred: Some(ConnectionId {
                    call_id: Some(cn),
                    device_id: None,
                }),
                connections,
            }
        })
    }

    /// SingleStepTransferCall: the device leaves its connected call, whose other parties move to
    /// a new call offered to `transferred_to`.
    pub(super) fn single_step_transfer(
        &mut self,
        active: &ConnectionId,
        transferred_to: &str,
        now: Instant,
    ) -> Outcome {
        let (c1, a) = self.connection(active)?;
        self.expect_state(&c1, &a, State::Connected, "invalidConnectionState")?;
        let target = self
            .devices
            .destination(transferred_to, "invalidDestinationDeviceID")?;
        let to = strip_decoration(transferred_to).to_owned();
        let others = self.calls.others(&c1, &a);
        let Some(first) = others.first().map(|p| p.device.clone()) else {
            return Err(state_err("invalidConnectionState"));
        };
        let cn = self.calls.new_id(self.config.call_ids);
        let moved: Vec<(String, Party)> = others.into_iter().map(|p| (c1.clone(), p)).collect();
        let mut connections: Vec<ConnectionListItem> = moved
            .iter()
            .map(|(old, p)| moved_item(&cn, old, &p.device))
            .collect();
        connections.push(ConnectionListItem {
            new_connection: Some(conn(&cn, &to)),
            old_connection: None,
            endpoint: Some(to.clone()),
        });
        self.calls.remove(&c1);
        self.merge(&cn, &moved, first, to.clone());
        let mut e = call_event(CallEventKind::Transferred, conn(&c1, &a));
        e.subject = Some(self.dref(&a));
        e.target = Some(self.dref(&to));
        e.connections = connections.clone();
        e.cause = Some(Cause::new("singleStepTransfer"));
        self.notify(&cn, e, &[&a]);
        let offer = Offer::redirected("singleStepTransfer", a, 0);
        self.offer(&cn, target, offer, now);
        Ok(Response::SingleStepTransferCall {
            transferred: Some(conn(&cn, &to)),
            connections,
        })
    }
}

/// A device's connection moved from `old_call` to `new_call`.
fn moved_item(new_call: &str, old_call: &str, device: &str) -> ConnectionListItem {
    ConnectionListItem {
        new_connection: Some(ConnectionId::new(new_call, device)),
        old_connection: Some(ConnectionId::new(old_call, device)),
        endpoint: Some(device.to_owned()),
    }
}
