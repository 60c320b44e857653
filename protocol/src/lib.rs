pub mod sip; pub mod csta; pub mod framing;
