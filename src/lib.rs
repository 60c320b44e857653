//! rcc-lab: the lab around the RCC gateway. [`lab`] starts the PBX simulator, the gateway and
//! the Lync simulator wired together in one process; [`reference`] is the reference exchange
//! pushed through the wire codecs; [`tour`] is what `rcc-lab run` drives through the lab.

pub mod capture;
pub mod conformance;
pub mod failover;
pub mod kamailio;
pub mod lab;
pub mod labconfig;
pub mod labfile;
pub mod load;
pub mod plot;
pub mod reference;
pub mod replay;
pub mod report;
pub mod selection;
pub mod sipe;
pub mod tier;
pub mod tour;
