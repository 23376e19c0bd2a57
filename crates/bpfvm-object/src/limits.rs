//! Bounds that protect the host from hostile objects: exceeding one is a typed error,
//! before anything of that size is allocated.

use crate::ObjectError;

/// Limits on what an object may contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the whole file.
    pub max_object_bytes: u64,
    /// Sections in the file.
    pub max_sections: u64,
    /// Bytes of one section (also bounds `.bss`, which takes no file space).
    pub max_section_bytes: u64,
    /// Symbols in the symbol table.
    pub max_symbols: u64,
    /// Programs in the object.
    pub max_programs: u64,
    /// Maps, global-data maps included.
    pub max_maps: u64,
    /// `max_entries` of one map.
    pub max_map_entries: u64,
    /// Bytes of `.BTF` (and of `.BTF.ext`).
    pub max_btf_bytes: u64,
    /// Instructions of one linked program (subprograms included).
    pub max_program_insns: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_bytes: 256 << 20,
            max_sections: 65_536,
            max_section_bytes: 64 << 20,
            max_symbols: 1 << 20,
            max_programs: 4096,
            max_maps: 4096,
            max_map_entries: 1 << 28,
            max_btf_bytes: 64 << 20,
            max_program_insns: 1_000_000,
        }
    }
}

impl Limits {
    /// Fails when `value` exceeds `limit`.
    pub(crate) fn check(
        &self,
        what: &'static str,
        value: u64,
        limit: u64,
    ) -> Result<(), ObjectError> {
        if value > limit {
            Err(ObjectError::Limit { what, value, limit })
        } else {
            Ok(())
        }
    }
}
