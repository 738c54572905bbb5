//! The built-in policy modules, compiled from policies/ by build.rs and embedded in the binary.

include!(concat!(env!("OUT_DIR"), "/builtin_policies.rs"));
