pub mod batch;
pub mod csta;
pub mod framing;
pub mod sip;
