//! rcc-simulators: placeholder until issues 3 and 4.
