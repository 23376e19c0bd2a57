//! # bpfvm: eBPF as an application feature
//!
//! The embedding API: an application loads an object, picks a program, attaches it to a
//! hook it defines, fires the hook, and reads what the program left in maps. This crate is
//! where that API grows (issue 5: maps, helpers, program types); today it holds the
//! host-side presentation of what programs compute:
//!
//! - [`hist`]: bcc's log2 and linear histogram printers (`print_log2_hist`,
//!   `print_linear_hist`), byte for byte, for `BPF_HISTOGRAM`-style maps.
//!
//! ## Invariants
//! - Host-side printers are pure functions of the map contents: no I/O, no clock.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod hist;
