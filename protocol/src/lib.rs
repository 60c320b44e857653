pub mod batch;
pub mod csta;
pub mod framing;
pub mod lync_shell;
pub mod sip;
