//! Helper functions: called by id with `r1`–`r5`, returning `r0`.

use std::fmt;

use crate::{FaultKind, ProgramType, Regions};

/// A helper's implementation: the five argument registers and the run's memory in, `r0`
/// out. Pointer arguments are host addresses; read and write through `regions`, which
/// checks them. An `Err` ends the run with that fault at the `call`.
pub type HelperFn = fn(args: [u64; 5], regions: &mut Regions<'_>) -> Result<u64, FaultKind>;

/// The largest helper id a [`HelperRegistry`] accepts.
pub const MAX_HELPER_ID: u32 = 0xffff;

/// A helper: kernel id, name and implementation.
#[derive(Clone, Copy)]
pub struct Helper {
    /// The id programs call it by (the kernel's id where one exists).
    pub id: u32,
    /// Its name, as in the kernel (`bpf_map_lookup_elem`…).
    pub name: &'static str,
    /// What it does.
    pub func: HelperFn,
}

impl fmt::Debug for Helper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Helper")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The helpers a program can call, by id.
///
/// After a helper call, engines set `r1`–`r5` to 0: the kernel treats them as clobbered
/// (the verifier rejects reading them) and its JITs leave arbitrary values there; zero is
/// the one deterministic choice every bpfvm engine makes alike.
#[derive(Debug, Clone, Default)]
pub struct HelperRegistry {
    /// Indexed by id.
    by_id: Vec<Option<Helper>>,
}

/// A helper id above [`MAX_HELPER_ID`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("helper id {id} is above the limit of {MAX_HELPER_ID}")]
pub struct HelperIdOutOfRange {
    /// The rejected id.
    pub id: u32,
}

impl HelperRegistry {
    /// No helpers.
    pub fn new() -> HelperRegistry {
        HelperRegistry::default()
    }

    /// The helpers of a program type.
    pub fn for_program_type(program_type: ProgramType) -> HelperRegistry {
        let mut registry = HelperRegistry::new();
        match program_type {
            ProgramType::Conformance => {
                for helper in CONFORMANCE_HELPERS {
                    if let Some(slot) = registry.by_id_slot(helper.id) {
                        *slot = Some(*helper);
                    }
                }
            }
        }
        registry
    }

    fn by_id_slot(&mut self, id: u32) -> Option<&mut Option<Helper>> {
        if id > MAX_HELPER_ID {
            return None;
        }
        let index = id as usize;
        if self.by_id.len() <= index {
            self.by_id.resize(index + 1, None);
        }
        self.by_id.get_mut(index)
    }

    /// Adds or replaces a helper; returns the one it replaced.
    pub fn register(&mut self, helper: Helper) -> Result<Option<Helper>, HelperIdOutOfRange> {
        let slot = self
            .by_id_slot(helper.id)
            .ok_or(HelperIdOutOfRange { id: helper.id })?;
        Ok(slot.replace(helper))
    }

    /// The helper with this id. Negative and unknown ids give `None`.
    #[inline]
    pub fn get(&self, id: i64) -> Option<&Helper> {
        let index = usize::try_from(id).ok()?;
        self.by_id.get(index)?.as_ref()
    }

    /// Every helper, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = &Helper> {
        self.by_id.iter().flatten()
    }
}

/// The bpf_conformance suite's helper table: id 5 returns its first argument.
const CONFORMANCE_HELPERS: &[Helper] = &[Helper {
    id: 5,
    name: "conformance_return_arg1",
    func: |args, _| Ok(args[0]),
}];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance_has_helper_5_returning_r1() {
        let reg = HelperRegistry::for_program_type(ProgramType::Conformance);
        let h = reg.get(5).expect("helper 5");
        assert_eq!((h.func)([42, 1, 2, 3, 4], &mut Regions::new()), Ok(42));
        assert!(reg.get(4).is_none());
        assert!(reg.get(-1).is_none());
        assert!(reg.get(i64::MAX).is_none());
        assert_eq!(reg.iter().count(), 1);
    }

    #[test]
    fn register_replaces_and_limits_ids() {
        let mut reg = HelperRegistry::new();
        let h = Helper {
            id: 7,
            name: "seven",
            func: |_, _| Ok(7),
        };
        assert!(reg.register(h).expect("must succeed").is_none());
        assert_eq!(
            reg.register(h).expect("must succeed").map(|h| h.id),
            Some(7)
        );
        assert_eq!(
            reg.register(Helper {
                id: MAX_HELPER_ID + 1,
                ..h
            })
            .expect_err("must fail"),
            HelperIdOutOfRange {
                id: MAX_HELPER_ID + 1
            }
        );
    }
}
