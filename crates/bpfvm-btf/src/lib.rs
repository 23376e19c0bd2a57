//! # bpfvm-btf (skeleton, being written)
