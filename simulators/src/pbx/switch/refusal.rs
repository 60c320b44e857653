//! Shorthands for the CSTA errors the switch refuses requests and actions with.

use rcc_protocol::csta::{CstaError, Response};

/// What a service answers: its positive response or a CSTA error.
pub(super) type Outcome = Result<Response, CstaError>;

/// `operation/<value>`
pub(super) fn op(value: &str) -> CstaError {
    CstaError::operation(value)
}

/// `stateIncompatibility/<value>`
pub(super) fn state_err(value: &str) -> CstaError {
    CstaError::state(value)
}
