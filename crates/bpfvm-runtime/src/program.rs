//! A program ready to run: validated bytecode, its program type, its helpers, and the
//! engines' per-program caches.

use std::any::{Any, TypeId};
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bpfvm_isa::{CallKind, Insn, LdDwKind, Program, SLOT_SIZE};

use crate::HelperRegistry;
use crate::fault::SlotBytes;
use crate::maps::Map;
use crate::run::map_handle;

/// What kind of program this is: decides its helpers and its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProgramType {
    /// The bpf_conformance suite's convention: the test ABI of [`crate::Engine::run`], and
    /// helper 5 returns its first argument.
    Conformance,
    /// A kernel program type: its helpers, and its context (see [`crate::Context`]).
    Kernel(bpfvm_abi::ProgramType),
}

impl ProgramType {
    /// A short lowercase name (the kernel's, for kernel types).
    pub const fn name(self) -> &'static str {
        match self {
            ProgramType::Conformance => "conformance",
            ProgramType::Kernel(t) => t.name(),
        }
    }

    /// The kernel type, if this is one.
    pub const fn kernel(self) -> Option<bpfvm_abi::ProgramType> {
        match self {
            ProgramType::Conformance => None,
            ProgramType::Kernel(t) => Some(t),
        }
    }
}

impl fmt::Display for ProgramType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a validated program cannot be loaded for its program type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pc {pc} ({}): {kind}", SlotBytes(.insn.encode().as_slice().first().copied().unwrap_or_default()))]
pub struct LoadError {
    /// Slot index of the offending instruction.
    pub pc: usize,
    /// The offending instruction.
    pub insn: Insn,
    /// What cannot be resolved.
    pub kind: LoadErrorKind,
}

/// What a program asks for that its program type cannot provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// A `lddw` pseudo load bpfvm cannot resolve: a kernel variable by BTF id (src 3).
    #[error("lddw with src {} ({kind:?}) names a kernel variable by BTF id, which user space does not have", .kind.src())]
    UnsupportedPseudoLoad {
        /// The pseudo-load kind.
        kind: LdDwKind,
    },
    /// A `lddw src=4` (code address) whose target is not an instruction of the program.
    #[error("lddw code address targets pc {target}, which is not an instruction start")]
    BadCodeAddress {
        /// The target pc (may be negative).
        target: i64,
    },
    /// `call` of a platform function (kfunc) by BTF id, none being registered.
    #[error("no kfunc with BTF id {btf_id} is registered")]
    UnknownKfunc {
        /// The BTF id in `imm`.
        btf_id: i32,
    },
    /// A map reference (`lddw` src 1/2/5/6) whose index or fd names no map of the program.
    #[error("lddw map reference {index} names no map of the program (it has {count})")]
    UnknownMap {
        /// The index (or fd) in `imm`.
        index: i32,
        /// How many maps the program has.
        count: usize,
    },
    /// A map-value reference (`lddw` src 2/6) to a map without direct value access, or at
    /// an offset past the value.
    #[error("lddw map value reference: {reason}")]
    BadMapValue {
        /// Why.
        reason: &'static str,
    },
}

/// A program checked against its program type, ready for any [`crate::Engine`].
///
/// Immutable and `Send + Sync`: share it behind an `Arc` and run it from many threads.
/// Engines keep what they derive from it once (the interpreter's pre-decoded form, a JIT's
/// code) in [`LoadedProgram::engine_data`].
///
/// ```
/// use bpfvm_isa::Program;
/// use bpfvm_runtime::{LoadedProgram, ProgramType};
/// // mov r0, 42 ; exit
/// let bytes = [0xb7, 0, 0, 0, 42, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
/// let prog = LoadedProgram::new(Program::from_bytes(&bytes)?, ProgramType::Conformance)?;
/// assert_eq!(prog.program().len(), 2);
/// assert!(prog.helpers().get(5).is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LoadedProgram {
    program: Program,
    program_type: ProgramType,
    helpers: Arc<HelperRegistry>,
    /// The maps its `lddw` references name, by index (src 5/6; src 1/2 by the same
    /// number, the "fd" being the index here).
    maps: Vec<Arc<dyn Map>>,
    /// `(handle, index)` sorted by handle.
    handles: Vec<(u64, usize)>,
    /// What each map `lddw` loads, by pc.
    lddw_values: Vec<(usize, u64)>,
    /// Maps whose value block programs reach directly (global data), by index.
    direct: Vec<usize>,
    cache: EngineCache,
}

impl LoadedProgram {
    /// Loads `program` with the helpers of `program_type`.
    pub fn new(program: Program, program_type: ProgramType) -> Result<LoadedProgram, LoadError> {
        let helpers = HelperRegistry::for_program_type(program_type);
        LoadedProgram::with_helpers(program, program_type, Arc::new(helpers))
    }

    /// Loads `program` with a host-provided helper table instead of the program type's.
    pub fn with_helpers(
        program: Program,
        program_type: ProgramType,
        helpers: Arc<HelperRegistry>,
    ) -> Result<LoadedProgram, LoadError> {
        LoadedProgram::with_maps(program, program_type, helpers, Vec::new())
    }

    /// Loads `program` with its helpers and the maps its `lddw` map references name:
    /// `lddw src=5 imm=i` (and `src=1 imm=i`) loads the handle of `maps[i]`;
    /// `lddw src=6 imm=i, next_imm=off` (and `src=2`) the address of byte `off` of
    /// `maps[i]`'s value (arrays of one element: global data).
    pub fn with_maps(
        program: Program,
        program_type: ProgramType,
        helpers: Arc<HelperRegistry>,
        maps: Vec<Arc<dyn Map>>,
    ) -> Result<LoadedProgram, LoadError> {
        check_resolvable(&program, &helpers)?;
        let mut lddw_values = Vec::new();
        let mut direct = Vec::new();
        for (pc, insn) in program.iter() {
            let Insn::LdDw {
                kind,
                imm,
                next_imm,
                ..
            } = insn
            else {
                continue;
            };
            if !matches!(
                kind,
                LdDwKind::MapFd | LdDwKind::MapIdx | LdDwKind::MapValue | LdDwKind::MapIdxValue
            ) {
                continue;
            }
            let err = |kind| LoadError { pc, insn, kind };
            let map = usize::try_from(imm)
                .ok()
                .and_then(|i| maps.get(i).map(|m| (i, m)));
            let Some((index, map)) = map else {
                return Err(err(LoadErrorKind::UnknownMap {
                    index: imm,
                    count: maps.len(),
                }));
            };
            let value = if matches!(kind, LdDwKind::MapFd | LdDwKind::MapIdx) {
                map_handle(map)
            } else {
                let Some((ptr, len, _)) = map.direct_value() else {
                    return Err(err(LoadErrorKind::BadMapValue {
                        reason: "the map has no direct value access (only single-element arrays)",
                    }));
                };
                let off = next_imm as u32 as usize;
                if off >= len {
                    return Err(err(LoadErrorKind::BadMapValue {
                        reason: "the offset is past the map's value",
                    }));
                }
                if !direct.contains(&index) {
                    direct.push(index);
                }
                (ptr.as_ptr().addr() as u64).wrapping_add(off as u64)
            };
            lddw_values.push((pc, value));
        }
        let mut handles: Vec<(u64, usize)> = maps
            .iter()
            .enumerate()
            .map(|(i, m)| (map_handle(m), i))
            .collect();
        handles.sort_unstable();
        Ok(LoadedProgram {
            program,
            program_type,
            helpers,
            maps,
            handles,
            lddw_values,
            direct,
            cache: EngineCache::default(),
        })
    }

    /// The maps of the program, by index.
    pub fn maps(&self) -> &[Arc<dyn Map>] {
        &self.maps
    }

    /// The map whose handle is `handle`, among the program's.
    #[inline]
    pub fn map_by_handle(&self, handle: u64) -> Option<&dyn Map> {
        let i = self
            .handles
            .binary_search_by_key(&handle, |&(h, _)| h)
            .ok()?;
        let index = self.handles.get(i)?.1;
        self.maps.get(index).map(|m| &**m)
    }

    /// The value a map `lddw` at `pc` loads (a map handle or a value address).
    pub fn lddw_value(&self, pc: usize) -> Option<u64> {
        let i = self
            .lddw_values
            .binary_search_by_key(&pc, |&(p, _)| p)
            .ok()?;
        self.lddw_values.get(i).map(|&(_, v)| v)
    }

    /// The maps whose value block the program addresses directly (global data): engines
    /// add each as a region for the whole run.
    pub fn direct_value_maps(&self) -> impl Iterator<Item = &dyn Map> {
        self.direct
            .iter()
            .filter_map(|&i| self.maps.get(i).map(|m| &**m))
    }

    /// Whether the program has global data ([`LoadedProgram::direct_value_maps`]).
    #[inline]
    pub fn has_direct_values(&self) -> bool {
        !self.direct.is_empty()
    }

    /// The validated instructions.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The program type.
    pub fn program_type(&self) -> ProgramType {
        self.program_type
    }

    /// The helpers `call` and `callx` reach.
    pub fn helpers(&self) -> &HelperRegistry {
        &self.helpers
    }

    /// The value a `lddw src=4` targeting `pc` loads: the host address of that instruction's
    /// slot, as the kernel loads the address of the code. Stable for this value's lifetime.
    pub fn code_address(&self, pc: usize) -> u64 {
        let base = self.program.slots().as_ptr().addr() as u64;
        base.wrapping_add((pc as u64).wrapping_mul(SLOT_SIZE as u64))
    }

    /// The pc whose [`LoadedProgram::code_address`] is `addr`, if `addr` is the address of
    /// an instruction start (what `callx` calls as a local function).
    pub fn pc_of_code_address(&self, addr: u64) -> Option<usize> {
        let off = addr.wrapping_sub(self.code_address(0));
        if !off.is_multiple_of(SLOT_SIZE as u64) {
            return None;
        }
        let pc = usize::try_from(off / SLOT_SIZE as u64).ok()?;
        self.program.get(pc).map(|_| pc)
    }

    /// The engine data of type `T` for this program, built by `init` on first use and
    /// kept for the program's lifetime (concurrent first uses may each run `init`; one
    /// result is kept). When the cache's few slots are all taken by other types, the
    /// value is built afresh by `init` and returned owned.
    #[inline]
    pub fn engine_data<T: Any + Send + Sync>(
        &self,
        init: impl Fn(&LoadedProgram) -> T,
    ) -> EngineData<'_, T> {
        self.cache.get_or_init(|| init(self))
    }
}

impl Clone for LoadedProgram {
    /// Clones the program; the clone starts with an empty engine cache (code addresses
    /// differ between clones).
    fn clone(&self) -> Self {
        LoadedProgram {
            program: self.program.clone(),
            program_type: self.program_type,
            helpers: Arc::clone(&self.helpers),
            maps: self.maps.clone(),
            handles: self.handles.clone(),
            lddw_values: self.lddw_values.clone(),
            direct: self.direct.clone(),
            cache: EngineCache::default(),
        }
    }
}

impl fmt::Debug for LoadedProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedProgram")
            .field("program_type", &self.program_type)
            .field("slots", &self.program.len())
            .field("helpers", &self.helpers.iter().count())
            .field("maps", &self.maps.len())
            .finish_non_exhaustive()
    }
}

/// Rejects what no engine can resolve: BTF-id pseudo loads, code addresses that miss,
/// kfunc calls to unregistered BTF ids. (Map references are resolved by the caller.)
fn check_resolvable(program: &Program, helpers: &HelperRegistry) -> Result<(), LoadError> {
    for (pc, insn) in program.iter() {
        let kind = match insn {
            Insn::LdDw {
                kind: LdDwKind::Func,
                imm,
                ..
            } => {
                let target = pc as i64 + 1 + i64::from(imm);
                let ok = usize::try_from(target)
                    .ok()
                    .and_then(|t| program.get(t))
                    .is_some();
                if ok {
                    continue;
                }
                LoadErrorKind::BadCodeAddress { target }
            }
            Insn::LdDw {
                kind:
                    LdDwKind::Imm
                    | LdDwKind::MapFd
                    | LdDwKind::MapIdx
                    | LdDwKind::MapValue
                    | LdDwKind::MapIdxValue,
                ..
            } => continue,
            Insn::LdDw { kind, .. } => LoadErrorKind::UnsupportedPseudoLoad { kind },
            Insn::Call {
                kind: CallKind::Kfunc,
                imm,
            } if helpers.kfunc(i64::from(imm)).is_none() => {
                LoadErrorKind::UnknownKfunc { btf_id: imm }
            }
            _ => continue,
        };
        return Err(LoadError { pc, insn, kind });
    }
    Ok(())
}

/// Number of engine types that can cache data per program.
const CACHE_SLOTS: usize = 4;

/// Per-program data of the engines, one slot per type.
///
/// Each slot keeps its value's `TypeId` beside it, so that finding an engine's data, which
/// every run does, is a compare inline rather than `downcast_ref`'s call through the
/// value's vtable.
#[derive(Default)]
struct EngineCache {
    slots: [OnceLock<(TypeId, Box<dyn Any + Send + Sync>)>; CACHE_SLOTS],
}

impl EngineCache {
    #[inline]
    fn get_or_init<T: Any + Send + Sync>(&self, init: impl Fn() -> T) -> EngineData<'_, T> {
        let id = TypeId::of::<T>();
        for slot in &self.slots {
            let (slot_id, value) = slot.get_or_init(|| (id, Box::new(init())));
            if *slot_id == id {
                let value: *const (dyn Any + Send + Sync) = &**value;
                // SAFETY: the slot's id is `T`'s, and a slot's id and value are set
                // together, once, the value a `Box<T>` (the closure above): `value`
                // points to a live `T`, borrowed from `self` as the result is.
                return EngineData::Cached(unsafe { &*value.cast::<T>() });
            }
        }
        EngineData::Owned(init())
    }
}

/// A value from a program's engine cache, or one built afresh because the cache was full.
/// Dereferences to the value.
#[derive(Debug)]
pub enum EngineData<'a, T> {
    /// From the program's cache.
    Cached(&'a T),
    /// Built for this call only.
    Owned(T),
}

impl<T> Deref for EngineData<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        match self {
            EngineData::Cached(t) => t,
            EngineData::Owned(t) => t,
        }
    }
}

/// A loaded program is shared across threads behind an `Arc`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LoadedProgram>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_isa::Reg;

    fn prog(insns: &[Insn]) -> Program {
        Program::from_insns(insns).expect("valid program")
    }

    #[test]
    fn rejects_map_loads_and_kfuncs_with_pc() {
        let map = Insn::LdDw {
            dst: Reg::R1,
            kind: LdDwKind::MapFd,
            imm: 3,
            next_imm: 0,
        };
        let e = LoadedProgram::new(prog(&[map, Insn::Exit]), ProgramType::Conformance)
            .expect_err("must fail");
        assert_eq!(e.pc, 0);
        assert_eq!(e.kind, LoadErrorKind::UnknownMap { index: 3, count: 0 });
        let kfunc = Insn::Call {
            kind: CallKind::Kfunc,
            imm: 42,
        };
        let e = LoadedProgram::new(
            prog(&[Insn::Exit, kfunc, Insn::Exit]),
            ProgramType::Conformance,
        )
        .expect_err("must fail");
        assert_eq!(
            (e.pc, e.kind),
            (1, LoadErrorKind::UnknownKfunc { btf_id: 42 })
        );
        assert!(e.to_string().starts_with("pc 1 "), "{e}");
    }

    #[test]
    fn code_addresses_round_trip() {
        let func = |imm| Insn::LdDw {
            dst: Reg::R1,
            kind: LdDwKind::Func,
            imm,
            next_imm: 0,
        };
        // pc 0-1: lddw r1, code(pc 3) ; pc 2: exit ; pc 3: exit
        let p = LoadedProgram::new(
            prog(&[func(2), Insn::Exit, Insn::Exit]),
            ProgramType::Conformance,
        )
        .expect("loads");
        assert_eq!(p.pc_of_code_address(p.code_address(3)), Some(3));
        assert_eq!(p.pc_of_code_address(p.code_address(1)), None); // second lddw slot
        assert_eq!(p.pc_of_code_address(p.code_address(4)), None);
        assert_eq!(p.pc_of_code_address(p.code_address(2) + 1), None);
        assert_eq!(p.pc_of_code_address(5), None);
        // Targeting the second slot of the lddw itself is rejected.
        let e = LoadedProgram::new(prog(&[func(0), Insn::Exit]), ProgramType::Conformance)
            .expect_err("must fail");
        assert_eq!(e.kind, LoadErrorKind::BadCodeAddress { target: 1 });
    }

    #[test]
    fn engine_data_is_cached_per_type() {
        let p = LoadedProgram::new(prog(&[Insn::Exit]), ProgramType::Conformance).expect("loads");
        let calls = std::cell::Cell::new(0);
        let a = *p.engine_data(|_| {
            calls.set(calls.get() + 1);
            7u32
        });
        let b = *p.engine_data(|_| {
            calls.set(calls.get() + 1);
            8u32
        });
        assert_eq!((a, b, calls.get()), (7, 7, 1));
        assert_eq!(*p.engine_data(|_| "str"), "str");
        // Fill the remaining slots, then the cache hands out owned values.
        assert!(matches!(p.engine_data(|_| 1u8), EngineData::Cached(_)));
        assert!(matches!(p.engine_data(|_| 1u16), EngineData::Cached(_)));
        assert!(matches!(p.engine_data(|_| 1u64), EngineData::Owned(1)));
        // A clone has its own cache.
        assert_eq!(*p.clone().engine_data(|_| 9u32), 9);
    }
}
