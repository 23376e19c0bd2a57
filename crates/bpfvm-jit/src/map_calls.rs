//! Map helper calls the JIT makes without the helper machinery.
//!
//! `bpf_map_lookup_elem(map, key)` is the hot helper of most programs, and the generic
//! helper call spends more time than the map itself: finding the helper in the registry,
//! the map among the run's by its handle, and the key's region. When, at the call, `r1`
//! holds a map this program named with `lddw` and `r2` points at a key inside the current
//! frame (`r10 + off`, the whole key below `r10`), both known from the straight-line code
//! before the call, the JIT passes the map's index and the key's address straight to
//! `runtime::jit_map_lookup` (which still checks both, and calls the helper should
//! either be other than found here). The same goes for `bpf_map_update_elem` (with the
//! value at `r3` in the frame too; the flags in `r4` are passed as they are) and
//! `bpf_map_delete_elem`. The kernel does the same for a map its verifier knows at a
//! call (`do_misc_fixups` turns the helper call into a call of the map's own operation).
//! A lookup in a hash-family map or an array goes further (`runtime::jit_lookup_in`):
//! the code passes the map's own address and the key's (the frame pointer plus the
//! offset found here, [`DirectCall::key`]), the shim makes that map type's lookup
//! inline, and the code sets the value's window itself.
//!
//! The result is exactly the helper's: only where the helper is bpfvm's own
//! (`Helper::is_builtin`) and the map is not a map of maps (whose lookup returns an inner
//! map), and both paths end in the same function ([`bpfvm_runtime::lookup_in_run`],
//! [`bpfvm_runtime::update_in_run`], [`bpfvm_runtime::delete_in_run`]). Bytes inside
//! the current frame are always readable, so the helper's reads cannot fault there either.
//!
//! Facts about a register hold from the instruction that makes them to the end of its
//! block: the walk starts empty at every block leader of the function (where other paths
//! join) and forgets a register at any other write of it, calls included (`r0`–`r5`).
//! Every copy of the code the translator makes (a coalesced group's fast version, which
//! starts at the group's leader, from the span test just before it) is entered only
//! along the same straight line, so the facts hold in the copies too.

use std::collections::{BTreeMap, BTreeSet};

use bpfvm_isa::{AluOp, CallKind, Insn, LdDwKind, Reg, Source, Width};
use bpfvm_runtime::maps::MapType;
use bpfvm_runtime::{LoadedProgram, STACK_FRAME_SIZE, map_handle};

use crate::liveness::uses_defs;

/// A map helper the JIT can call directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapHelper {
    /// `bpf_map_lookup_elem(map, key)`.
    Lookup,
    /// `bpf_map_update_elem(map, key, value, flags)`.
    Update,
    /// `bpf_map_delete_elem(map, key)`.
    Delete,
}

impl MapHelper {
    const ALL: [MapHelper; 3] = [MapHelper::Lookup, MapHelper::Update, MapHelper::Delete];

    /// The kernel's helper id.
    pub(crate) fn id(self) -> i32 {
        match self {
            MapHelper::Lookup => 1,
            MapHelper::Update => 2,
            MapHelper::Delete => 3,
        }
    }
}

/// A helper call made directly: which helper, the index of its map in
/// [`LoadedProgram::maps`], and where its key is (`r10 + key`, the whole key inside the
/// current frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirectCall {
    pub helper: MapHelper,
    pub map: usize,
    pub key: i64,
}

/// What the straight-line code before an instruction says of a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    Unknown,
    /// The handle of the program's map with this index (`LoadedProgram::maps`).
    Map(usize),
    /// `r10 + off`.
    Frame(i64),
}

/// The map helper calls of one function that the JIT makes directly, by pc.
pub(crate) fn direct_calls(
    prog: &LoadedProgram,
    reachable: &BTreeSet<usize>,
    leaders: &BTreeSet<usize>,
) -> BTreeMap<usize, DirectCall> {
    let mut found = BTreeMap::new();
    let helpers: Vec<MapHelper> = MapHelper::ALL
        .into_iter()
        .filter(|h| {
            prog.helpers()
                .get(i64::from(h.id()))
                .is_some_and(|h| h.is_builtin())
        })
        .collect();
    if helpers.is_empty() {
        return found;
    }
    let program = prog.program();
    for &leader in leaders {
        let mut facts = [Fact::Unknown; 10];
        let mut pc = leader;
        while let Some(insn) = program.get(pc) {
            if let Insn::Call {
                kind: CallKind::Helper,
                imm,
            } = insn
                && let Some(&helper) = helpers.iter().find(|h| h.id() == imm)
                && let Some((map, key)) = direct(prog, helper, &facts)
            {
                found.insert(pc, DirectCall { helper, map, key });
            }
            step(prog, pc, insn, &mut facts);
            if matches!(
                insn,
                Insn::Exit | Insn::Ja { .. } | Insn::Jmp { .. } | Insn::MayGoto { .. }
            ) {
                break;
            }
            pc += insn.slots();
            if leaders.contains(&pc) || !reachable.contains(&pc) {
                break;
            }
        }
    }
    found
}

/// The map's index and the key's frame offset if `helper` can be called directly with
/// these facts: `r1` a map of the program that is not a map of maps, `r2` its whole key
/// inside the current frame, and for an update `r3` its whole value there too.
fn direct(prog: &LoadedProgram, helper: MapHelper, facts: &[Fact; 10]) -> Option<(usize, i64)> {
    let Fact::Map(index) = facts[1] else {
        return None;
    };
    let spec = prog.maps().get(index)?.spec();
    let in_frame = |fact: Fact, len: u32| match fact {
        Fact::Frame(off) => off >= -(STACK_FRAME_SIZE as i64) && off + i64::from(len) <= 0,
        _ => false,
    };
    let ok = !matches!(spec.map_type, MapType::ArrayOfMaps | MapType::HashOfMaps)
        && in_frame(facts[2], spec.key_size)
        && (helper != MapHelper::Update || in_frame(facts[3], spec.value_size));
    match facts[2] {
        Fact::Frame(key) if ok => Some((index, key)),
        _ => None,
    }
}

/// The facts after `insn` at `pc`.
fn step(prog: &LoadedProgram, pc: usize, insn: Insn, facts: &mut [Fact; 10]) {
    // `r10` is the top of the current frame; `r0`–`r9` hold what the walk found.
    let holds = |facts: &[Fact; 10], r: Reg| match r {
        Reg::R10 => Fact::Frame(0),
        _ => facts
            .get(usize::from(r.index()))
            .copied()
            .unwrap_or(Fact::Unknown),
    };
    let new = match insn {
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst,
            src: Source::Reg(src),
        } => Some((dst, holds(facts, src))),
        Insn::Alu {
            width: Width::W64,
            op: op @ (AluOp::Add | AluOp::Sub),
            dst,
            src: Source::Imm(imm),
        } => {
            let moved = match holds(facts, dst) {
                Fact::Frame(off) if op == AluOp::Add => Fact::Frame(off + i64::from(imm)),
                Fact::Frame(off) => Fact::Frame(off - i64::from(imm)),
                _ => Fact::Unknown,
            };
            Some((dst, moved))
        }
        Insn::LdDw {
            dst,
            kind: LdDwKind::MapFd | LdDwKind::MapIdx,
            ..
        } => {
            let handle = prog.lddw_value(pc);
            let map = prog
                .maps()
                .iter()
                .position(|m| Some(map_handle(m)) == handle);
            Some((dst, map.map_or(Fact::Unknown, Fact::Map)))
        }
        _ => None,
    };
    let (_, defs) = uses_defs(pc, insn, |_| 0);
    for (r, fact) in facts.iter_mut().enumerate() {
        if defs & (1 << r) != 0 {
            *fact = Fact::Unknown;
        }
    }
    // (A write to `r10`, which validation refuses, would change nothing here.)
    if let Some((dst, fact)) = new
        && let Some(slot) = facts.get_mut(usize::from(dst.index()))
    {
        *slot = fact;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_isa::Program;
    use bpfvm_isa::asm::{Dialect, assemble};
    use bpfvm_runtime::maps::MapSpec;
    use bpfvm_runtime::{Helper, HelperRegistry, Map, MapConfig, ProgramType, create_map};
    use std::sync::Arc;

    /// A socket filter with a hash map of `key_size`-byte keys (map 0) and an array of
    /// maps (map 1), from LLVM-syntax source where `MAP` and `OUTER` load them into `r1`,
    /// with `helpers` (the socket filter's when `None`).
    fn load_with(src: &str, key_size: u32, helpers: Option<HelperRegistry>) -> LoadedProgram {
        let config = MapConfig::new(1, u64::MAX);
        let hash = create_map(&MapSpec::new(MapType::Hash, key_size, 8, 16), &config).unwrap();
        let mut outer = MapSpec::new(MapType::ArrayOfMaps, 4, 4, 1);
        outer.inner = Some(Box::new(MapSpec::new(MapType::Array, 4, 8, 1)));
        let outer = create_map(&outer, &config).unwrap();
        let src = src
            .replace("MAP", "r1 = map[idx:0]")
            .replace("OUTER", "r1 = map[idx:1]");
        let program = Program::from_slots(assemble(&src, Dialect::Llvm).unwrap()).unwrap();
        let kind = ProgramType::Kernel(bpfvm_abi::ProgramType::SocketFilter);
        let helpers = helpers.unwrap_or_else(|| HelperRegistry::for_program_type(kind));
        let maps: Vec<Arc<dyn Map>> = vec![Arc::from(hash), Arc::from(outer)];
        LoadedProgram::with_maps(program, kind, Arc::new(helpers), maps).unwrap()
    }

    fn load(src: &str, key_size: u32) -> LoadedProgram {
        load_with(src, key_size, None)
    }

    /// The direct calls of the function at pc 0 (pc, helper id, map, the key's frame
    /// offset), its blocks found as the translator finds them.
    fn lookups(prog: &LoadedProgram) -> Vec<(usize, i32, usize, i64)> {
        let program = prog.program();
        let mut reachable = BTreeSet::new();
        let mut leaders = BTreeSet::from([0]);
        let mut pc = 0;
        while let Some(insn) = program.get(pc) {
            reachable.insert(pc);
            if let Some(off) = insn.branch_offset()
                && !matches!(insn, Insn::Call { .. })
            {
                leaders.insert((pc as i64 + 1 + off) as usize);
                leaders.insert(pc + insn.slots());
            }
            pc += insn.slots();
        }
        direct_calls(prog, &reachable, &leaders)
            .into_iter()
            .map(|(pc, call)| (pc, call.helper.id(), call.map, call.key))
            .collect()
    }

    #[test]
    fn the_usual_lookup_is_direct() {
        // pc: 0 store, 1 r2 = r10, 2 r2 += -4, 3-4 lddw, 5 call.
        let prog = load(
            "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nMAP\ncall 1\nr0 = 0\nexit\n",
            4,
        );
        assert_eq!(lookups(&prog), [(5, 1, 0, -4)]);
        // `r2 = r10; r2 -= 8` through a copy, the map loaded first.
        let prog = load("MAP\nr3 = r10\nr3 -= 8\nr2 = r3\ncall 1\nexit\n", 8);
        assert_eq!(lookups(&prog), [(5, 1, 0, -8)]);
    }

    #[test]
    fn updates_and_deletes_with_key_and_value_in_the_frame_are_direct() {
        // The map's values are 8 bytes. pc: 0 r2, 1 r2 += -4, 2 r3, 3 r3 += -16, 4-5
        // lddw, 6 r4 = 0, 7 update, 8-9 lddw again (the call clobbered r1–r5), 10 r2,
        // 11 r2 += -4, 12 delete.
        let src = "r2 = r10\nr2 += -4\nr3 = r10\nr3 += -16\nMAP\nr4 = 0\ncall 2\n\
                   MAP\nr2 = r10\nr2 += -4\ncall 3\nexit\n";
        assert_eq!(lookups(&load(src, 4)), [(7, 2, 0, -4), (12, 3, 0, -4)]);
        // The value reaching above the frame (`r10 - 4`, 8 bytes), or not in the frame
        // at all: the update keeps the helper, the delete (no value) does not care.
        for r3 in ["r3 = r10\nr3 += -4", "r3 = r1\nr3 += 0"] {
            let src = format!(
                "r2 = r10\nr2 += -4\n{r3}\nMAP\nr4 = 0\ncall 2\nMAP\nr2 = r10\nr2 += -4\ncall 3\nexit\n"
            );
            assert_eq!(lookups(&load(&src, 4)), [(12, 3, 0, -4)], "{r3}");
        }
    }

    #[test]
    fn unknown_or_unsafe_arguments_keep_the_helper() {
        let cases = [
            // The key reaches above the frame: `r10 - 2` with a 4-byte key.
            ("r2 = r10\nr2 += -2\nMAP\ncall 1\nexit\n", 4),
            // Below the frame.
            ("r2 = r10\nr2 += -516\nMAP\ncall 1\nexit\n", 4),
            // The key pointer was overwritten after it was made.
            (
                "r2 = r10\nr2 += -4\nr2 = *(u64 *)(r10 - 8)\nMAP\ncall 1\nexit\n",
                4,
            ),
            // A 32-bit add leaves a number, not a frame address.
            ("r2 = r10\nw2 += -4\nMAP\ncall 1\nexit\n", 4),
            // The map register was clobbered by an earlier call.
            (
                "r2 = r10\nr2 += -4\nMAP\ncall 5\nr2 = r10\nr2 += -4\ncall 1\nexit\n",
                4,
            ),
            // A map of maps: the helper returns an inner map.
            ("r2 = r10\nr2 += -4\nOUTER\ncall 1\nexit\n", 4),
            // The facts do not cross a join: pc 4 is a jump target.
            (
                "r2 = r10\nr2 += -4\nMAP\nif r0 == 0 goto +0\ncall 1\nexit\n",
                4,
            ),
        ];
        for (src, key) in cases {
            assert_eq!(lookups(&load(src, key)), [], "{src}");
        }
    }

    #[test]
    fn a_replaced_helper_is_called_as_registered() {
        let src = "r2 = r10\nr2 += -4\nMAP\ncall 1\nexit\n";
        assert_eq!(lookups(&load(src, 4)), [(4, 1, 0, -4)]);
        let kind = ProgramType::Kernel(bpfvm_abi::ProgramType::SocketFilter);
        let mut helpers = HelperRegistry::for_program_type(kind);
        let mine = Helper::host(1, "my_lookup", None, |_, _| Ok(7));
        helpers.register(mine).unwrap();
        assert_eq!(lookups(&load_with(src, 4, Some(helpers))), []);
    }
}
