//! Helper functions: called by id with `r1`–`r5`, returning `r0`; kfuncs called by BTF id.
//!
//! A helper gets a [`HelperContext`]: the run's [`Regions`] (every pointer argument is
//! checked through them) and its [`RunState`] (maps, CPU slot, environment, the
//! requests helpers leave for the engine). Helpers that need the engine — `bpf_tail_call`
//! and `bpf_loop` — validate their arguments and leave a request in the state
//! ([`RunState::tail_call`], [`RunState::callback`]); every engine acts on it after the call.

mod basic;
mod builtin;
mod control;
mod csum;
mod events;
mod maps;
mod memory;
mod packet;
mod printk;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bpfvm_abi::{HelperId, HelperProto, ProgramType as KernelType, helper_by_id};

use crate::run::RunState;
use crate::{FaultKind, ProgramType, Regions};

pub use builtin::{BUILTIN_HELPERS, BuiltinHelper};
pub use control::MAX_LOOPS;
pub use maps::{delete_in_run, lookup_in_run, update_in_run};
pub use packet::{ETH_HLEN, XDP_META_MAX, XDP_PACKET_HEADROOM, XDP_SHARED_INFO};

/// What a helper sees of the run.
pub struct HelperContext<'r, 'a> {
    /// The run's memory: read and write pointer arguments through it.
    pub regions: &'r mut Regions<'a>,
    /// The run's state: maps, CPU slot, environment, requests for the engine.
    pub run: &'r mut RunState<'a>,
    /// The id this helper was called by (the BTF id for a kfunc), for faults.
    pub id: u32,
}

impl fmt::Debug for HelperContext<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HelperContext")
            .field("id", &self.id)
            .field("cpu", &self.run.cpu)
            .finish_non_exhaustive()
    }
}

impl HelperContext<'_, '_> {
    /// A [`FaultKind::HelperFailed`] for this helper.
    pub fn fail(&self, reason: &'static str) -> FaultKind {
        FaultKind::HelperFailed {
            id: self.id,
            reason,
        }
    }

    /// Reads `len` bytes at `addr` into a new vector. The range is checked before
    /// anything is allocated, so a program-chosen length can never ask the host for more
    /// memory than the region it names.
    pub fn read_vec(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, FaultKind> {
        self.regions.check(addr, len, false)?;
        let mut v = vec![0u8; len];
        self.regions.read_bytes(addr, &mut v)?;
        Ok(v)
    }
}

/// A helper's implementation: the context and the five argument registers in, `r0` out.
/// An `Err` ends the run with that fault at the `call`.
pub type HelperFn = fn(&mut HelperContext<'_, '_>, [u64; 5]) -> Result<u64, FaultKind>;

/// A host closure as a helper or kfunc.
pub type HostFn =
    Arc<dyn Fn(&mut HelperContext<'_, '_>, [u64; 5]) -> Result<u64, FaultKind> + Send + Sync>;

/// How a helper is implemented.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // closures have no Debug; `Helper` prints the name
pub enum HelperImpl {
    /// A plain function (bpfvm's own helpers).
    Native(HelperFn),
    /// A host closure.
    Host(HostFn),
}

/// The largest helper id a [`HelperRegistry`] accepts.
pub const MAX_HELPER_ID: u32 = 0xffff;

/// A helper: kernel id, name, prototype and implementation.
#[derive(Clone)]
pub struct Helper {
    /// The id programs call it by (the kernel's id where one exists).
    pub id: u32,
    /// Its name, as in the kernel without `bpf_` (`map_lookup_elem`…).
    pub name: &'static str,
    /// The prototype a verifier checks calls against (the kernel's, for kernel helpers).
    pub proto: Option<HelperProto>,
    /// What it does.
    pub func: HelperImpl,
}

impl Helper {
    /// A helper from a plain function, with the kernel's prototype for `id` if it has one.
    pub fn native(id: u32, name: &'static str, func: HelperFn) -> Helper {
        Helper {
            id,
            name,
            proto: helper_by_id(HelperId(id)).filter(|p| p.known).copied(),
            func: HelperImpl::Native(func),
        }
    }

    /// A helper from a host closure with its prototype (what a verifier checks calls
    /// against; `proto.id` should be `id`).
    pub fn host(
        id: u32,
        name: &'static str,
        proto: Option<HelperProto>,
        func: impl Fn(&mut HelperContext<'_, '_>, [u64; 5]) -> Result<u64, FaultKind>
        + Send
        + Sync
        + 'static,
    ) -> Helper {
        Helper {
            id,
            name,
            proto,
            func: HelperImpl::Host(Arc::new(func)),
        }
    }

    /// Whether this is bpfvm's own implementation of its id (the [`BUILTIN_HELPERS`]
    /// entry), whose exact behaviour an engine may then reproduce without calling it.
    pub fn is_builtin(&self) -> bool {
        let HelperImpl::Native(func) = self.func else {
            return false;
        };
        BUILTIN_HELPERS
            .iter()
            .any(|b| b.id == self.id && std::ptr::fn_addr_eq(b.func, func))
    }

    /// Calls it.
    #[inline]
    pub fn call(&self, ctx: &mut HelperContext<'_, '_>, args: [u64; 5]) -> Result<u64, FaultKind> {
        match &self.func {
            HelperImpl::Native(f) => f(ctx, args),
            HelperImpl::Host(f) => f(ctx, args),
        }
    }
}

impl fmt::Debug for Helper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Helper")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The helpers a program can call, by id, and the kfuncs, by BTF id.
///
/// After a helper call, engines set `r1`–`r5` to 0: the kernel treats them as clobbered
/// (the verifier rejects reading them) and its JITs leave arbitrary values there; zero is
/// the one deterministic choice every bpfvm engine makes alike.
#[derive(Debug, Clone, Default)]
pub struct HelperRegistry {
    /// Indexed by id.
    by_id: Vec<Option<Helper>>,
    /// By BTF id.
    kfuncs: BTreeMap<u32, Helper>,
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

    /// The helpers of a program type: for the conformance type, helper 5 returning its
    /// first argument; for kernel types, every [`BUILTIN_HELPERS`] entry the kernel offers
    /// that type.
    pub fn for_program_type(program_type: ProgramType) -> HelperRegistry {
        let mut registry = HelperRegistry::new();
        match program_type {
            ProgramType::Conformance => {
                let h = Helper {
                    id: 5,
                    name: "conformance_return_arg1",
                    proto: None,
                    func: HelperImpl::Native(|_, args| Ok(args[0])),
                };
                if let Some(slot) = registry.by_id_slot(h.id) {
                    *slot = Some(h);
                }
            }
            ProgramType::Kernel(t) => {
                for b in BUILTIN_HELPERS.iter().filter(|b| (b.available)(t)) {
                    if let Some(slot) = registry.by_id_slot(b.id) {
                        *slot = Some(Helper::native(b.id, b.name, b.func));
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

    /// Adds or replaces the kfunc programs call with `call` src=2 and `imm = btf_id`.
    pub fn register_kfunc(&mut self, btf_id: u32, helper: Helper) -> Option<Helper> {
        self.kfuncs.insert(btf_id, helper)
    }

    /// The helper with this id. Negative and unknown ids give `None`.
    #[inline]
    pub fn get(&self, id: i64) -> Option<&Helper> {
        let index = usize::try_from(id).ok()?;
        self.by_id.get(index)?.as_ref()
    }

    /// The kfunc with this BTF id.
    #[inline]
    pub fn kfunc(&self, btf_id: i64) -> Option<&Helper> {
        self.kfuncs.get(&u32::try_from(btf_id).ok()?)
    }

    /// Every helper, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = &Helper> {
        self.by_id.iter().flatten()
    }

    /// Every kfunc with its BTF id.
    pub fn kfuncs(&self) -> impl Iterator<Item = (u32, &Helper)> {
        self.kfuncs.iter().map(|(k, v)| (*k, v))
    }
}

/// Whether the kernel offers a helper to a program type: `bpf_base_func_proto` helpers
/// to all, networking helpers to packet types, tracing helpers to tracing types.
pub(crate) fn is_tracing(t: KernelType) -> bool {
    matches!(
        t,
        KernelType::Kprobe
            | KernelType::Tracepoint
            | KernelType::PerfEvent
            | KernelType::RawTracepoint
            | KernelType::RawTracepointWritable
            | KernelType::Tracing
            | KernelType::Lsm
            | KernelType::Syscall
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoadedProgram;
    use crate::env::SystemEnvironment;

    #[test]
    fn conformance_has_helper_5_returning_r1() {
        let reg = HelperRegistry::for_program_type(ProgramType::Conformance);
        let h = reg.get(5).expect("helper 5");
        let prog = LoadedProgram::new(
            bpfvm_isa::Program::from_insns(&[bpfvm_isa::Insn::Exit]).expect("valid"),
            ProgramType::Conformance,
        )
        .expect("loads");
        let env = SystemEnvironment::default();
        let mut run = RunState::new(&prog, 0, &env);
        let mut regions = Regions::new();
        let mut ctx = HelperContext {
            regions: &mut regions,
            run: &mut run,
            id: 5,
        };
        assert_eq!(h.call(&mut ctx, [42, 1, 2, 3, 4]), Ok(42));
        assert!(reg.get(4).is_none());
        assert!(reg.get(-1).is_none());
        assert!(reg.get(i64::MAX).is_none());
        assert_eq!(reg.iter().count(), 1);
    }

    #[test]
    fn register_replaces_and_limits_ids() {
        let mut reg = HelperRegistry::new();
        let h = Helper::host(7, "seven", None, |_, _| Ok(7));
        assert!(reg.register(h.clone()).expect("must succeed").is_none());
        assert_eq!(
            reg.register(h.clone()).expect("must succeed").map(|h| h.id),
            Some(7)
        );
        let mut big = h.clone();
        big.id = MAX_HELPER_ID + 1;
        assert_eq!(
            reg.register(big).expect_err("must fail"),
            HelperIdOutOfRange {
                id: MAX_HELPER_ID + 1
            }
        );
        assert!(reg.register_kfunc(100, h).is_none());
        assert_eq!(reg.kfunc(100).map(|h| h.name), Some("seven"));
        assert!(reg.kfunc(-1).is_none());
    }

    #[test]
    fn kernel_types_get_their_helpers() {
        let xdp = HelperRegistry::for_program_type(ProgramType::Kernel(KernelType::Xdp));
        let kprobe = HelperRegistry::for_program_type(ProgramType::Kernel(KernelType::Kprobe));
        // map_lookup_elem everywhere; xdp_adjust_head (44) only for XDP;
        // get_current_pid_tgid (14) only for tracing.
        assert!(xdp.get(1).is_some() && kprobe.get(1).is_some());
        assert!(xdp.get(44).is_some() && kprobe.get(44).is_none());
        assert!(kprobe.get(14).is_some() && xdp.get(14).is_none());
        // Every builtin carries the kernel's prototype.
        for h in xdp.iter().chain(kprobe.iter()) {
            assert!(h.proto.is_some(), "{} has no prototype", h.name);
            assert_eq!(h.proto.map(|p| p.name), Some(h.name));
        }
    }
}
