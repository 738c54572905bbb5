//! End-to-end tests live in tests/; they drive the real binary against the local cluster.
