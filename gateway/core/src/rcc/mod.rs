//! RCC rules: authorization, device-ID mapping, feature advertisement, translation.

pub mod authz;
pub mod features;
pub mod numbering;
pub mod translate;
