//! Test harness (owned by the simulator work).
