//! The simulated Lync Server 2013 side: a Front End pool (static routes, trusted applications,
//! Record-Route, proxying) and RCC client endpoints with the profiles of real clients
//! (rcc-sip.md §2, §4, §6.3, §7.2).

pub mod config;
pub mod control;
pub mod endpoint;
pub mod frontend;
pub mod load;
pub mod profile;
pub mod registrar;
pub mod server;
pub mod user;

pub use endpoint::{ActionResult, Endpoint, EndpointConfig, Phase, Seen};
pub use frontend::{
    Frontend, PoolConfig, RouteTransport, StaticRoute, TraceEntry, TrustedApplication,
    TrustedComputer,
};
pub use profile::ClientProfile;
pub use registrar::ClientUser;
pub use server::{ClientListener, LabAddress, LyncSim, LyncSimConfig, PoolTls, expect_response};
pub use user::{LAB_NUMBERING, LabUser};
