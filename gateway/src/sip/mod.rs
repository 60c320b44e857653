//! SIP transactions (the transports live in [`crate::server`]).

pub mod transaction;
