//! Map lookups the JIT makes without the helper machinery.
//!
//! `bpf_map_lookup_elem(map, key)` is the hot helper of most programs, and the generic
//! helper call spends more time than the map itself: finding the helper in the registry,
//! the map among the run's by its handle, and the key's region. When, at the call, `r1`
//! holds a map this program named with `lddw` and `r2` points at a key inside the current
//! frame (`r10 + off`, the whole key below `r10`), both known from the straight-line code
//! before the call, the JIT passes the map's index and the key's address straight to
//! `runtime::jit_map_lookup` (which still checks both, and calls the helper should
//! either be other than found here). The kernel does the same for a map its verifier
//! knows at a call (`do_misc_fixups` turns the helper call into a call of the map's own
//! lookup).
//!
//! The result is exactly the helper's: only where helper 1 is bpfvm's own
//! (`Helper::is_builtin`) and the map holds values (a map of maps returns an inner map
//! instead), and both go through [`bpfvm_runtime::lookup_in_run`]. A key inside the
//! current frame is always readable, so the helper's key read cannot fault there either.
//!
//! Facts about a register hold from the instruction that makes them to the end of its
//! block: the walk starts empty at every block leader of the function (where other paths
//! join) and forgets a register at any other write of it, calls included (`r0`–`r5`).
//! Every copy of the code the translator makes (a coalesced group's fast version, which
//! starts mid-block after the leader's access) is entered only along the same straight
//! line, so the facts hold in the copies too.

use std::collections::{BTreeMap, BTreeSet};

use bpfvm_isa::{AluOp, CallKind, Insn, LdDwKind, Reg, Source, Width};
use bpfvm_runtime::maps::MapType;
use bpfvm_runtime::{LoadedProgram, STACK_FRAME_SIZE, map_handle};

use crate::liveness::uses_defs;

/// The helper id of `bpf_map_lookup_elem`.
const MAP_LOOKUP_ELEM: i32 = 1;

/// What the straight-line code before an instruction says of a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    Unknown,
    /// The handle of the program's map with this index (`LoadedProgram::maps`).
    Map(usize),
    /// `r10 + off`.
    Frame(i64),
}

/// The `call bpf_map_lookup_elem` pcs of one function that the JIT makes directly, each
/// with the index of its map in [`LoadedProgram::maps`].
pub(crate) fn direct_lookups(
    prog: &LoadedProgram,
    reachable: &BTreeSet<usize>,
    leaders: &BTreeSet<usize>,
) -> BTreeMap<usize, usize> {
    let mut found = BTreeMap::new();
    let builtin = prog
        .helpers()
        .get(i64::from(MAP_LOOKUP_ELEM))
        .is_some_and(|h| h.is_builtin());
    if !builtin {
        return found;
    }
    let program = prog.program();
    for &leader in leaders {
        let mut facts = [Fact::Unknown; 10];
        let mut pc = leader;
        while let Some(insn) = program.get(pc) {
            if let Insn::Call {
                kind: CallKind::Helper,
                imm: MAP_LOOKUP_ELEM,
            } = insn
                && let Fact::Map(index) = facts[1]
                && let Fact::Frame(off) = facts[2]
                && direct(prog, index, off)
            {
                found.insert(pc, index);
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

/// Whether a lookup in map `index` with its key at `r10 + off` can be made directly: a
/// map of values, and the whole key inside the current frame.
fn direct(prog: &LoadedProgram, index: usize, off: i64) -> bool {
    let Some(map) = prog.maps().get(index) else {
        return false;
    };
    let spec = map.spec();
    let key = i64::from(spec.key_size);
    !matches!(spec.map_type, MapType::ArrayOfMaps | MapType::HashOfMaps)
        && off >= -(STACK_FRAME_SIZE as i64)
        && off + key <= 0
}

/// The facts after `insn` at `pc`.
fn step(prog: &LoadedProgram, pc: usize, insn: Insn, facts: &mut [Fact; 10]) {
    let index = |r: Reg| usize::from(r.index()).min(10);
    let new = match insn {
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst,
            src: Source::Reg(src),
        } => Some((
            dst,
            facts.get(index(src)).copied().unwrap_or(Fact::Frame(0)),
        )),
        Insn::Alu {
            width: Width::W64,
            op: op @ (AluOp::Add | AluOp::Sub),
            dst,
            src: Source::Imm(imm),
        } => {
            let moved = match facts.get(index(dst)) {
                Some(&Fact::Frame(off)) if op == AluOp::Add => Fact::Frame(off + i64::from(imm)),
                Some(&Fact::Frame(off)) => Fact::Frame(off - i64::from(imm)),
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
    if let Some((dst, fact)) = new
        && let Some(slot) = facts.get_mut(index(dst))
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

    /// The direct lookups of the function at pc 0, its blocks found as the translator
    /// finds them.
    fn lookups(prog: &LoadedProgram) -> Vec<(usize, usize)> {
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
        direct_lookups(prog, &reachable, &leaders)
            .into_iter()
            .collect()
    }

    #[test]
    fn the_usual_lookup_is_direct() {
        // pc: 0 store, 1 r2 = r10, 2 r2 += -4, 3-4 lddw, 5 call.
        let prog = load(
            "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nMAP\ncall 1\nr0 = 0\nexit\n",
            4,
        );
        assert_eq!(lookups(&prog), [(5, 0)]);
        // `r2 = r10; r2 -= 8` through a copy, the map loaded first.
        let prog = load("MAP\nr3 = r10\nr3 -= 8\nr2 = r3\ncall 1\nexit\n", 8);
        assert_eq!(lookups(&prog), [(5, 0)]);
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
        assert_eq!(lookups(&load(src, 4)), [(4, 0)]);
        let kind = ProgramType::Kernel(bpfvm_abi::ProgramType::SocketFilter);
        let mut helpers = HelperRegistry::for_program_type(kind);
        let mine = Helper::host(1, "my_lookup", None, |_, _| Ok(7));
        helpers.register(mine).unwrap();
        assert_eq!(lookups(&load_with(src, 4, Some(helpers))), []);
    }
}
