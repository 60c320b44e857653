//! csta
