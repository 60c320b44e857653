//! Unit tests of the conformance checker.
