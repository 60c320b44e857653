//! RCC rules: authorization, device-ID mapping, feature advertisement, translation.

pub(crate) mod authz;
pub(crate) mod features;
pub(crate) mod numbering;
pub(crate) mod translate;
