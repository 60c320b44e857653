//! rcc-gateway: placeholder until issue 5.
