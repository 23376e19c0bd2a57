//! (filled in by its owner)

use super::BuiltinHelper;

/// This area's helpers.
pub(super) const HELPERS: &[BuiltinHelper] = &[];
