//! SIP server transactions (the transports live in the shell).

pub(crate) mod transaction;
