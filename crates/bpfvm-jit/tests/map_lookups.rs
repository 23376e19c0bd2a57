//! Map lookups, updates and deletes made directly by the JIT (a map named by `lddw`, the
//! key and value in the current frame: `map_calls.rs`) against the interpreter, which
//! always calls the helper, and against hand-computed values: what a lookup returns,
//! what a write through the value does to the map, a read-only value's fault, the
//! update and delete errnos, a replaced helper 1, a key the JIT cannot place (in the
//! caller's frame), which keeps the helper call, and when a run pins the epoch.

mod common;

use std::sync::Arc;

use bpfvm_abi::F_RDONLY_PROG;
use bpfvm_isa::Program;
use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_runtime::maps::{HashTabMap, Map, MapConfig, MapSpec, MapType, create_map, short_hash};
use bpfvm_runtime::{FaultKind, Helper, HelperRegistry, LoadedProgram, ProgramType, RunOptions};
use common::{Ended, Observed, difference, run_both_with};

const KIND: ProgramType = ProgramType::Kernel(bpfvm_abi::ProgramType::SocketFilter);

fn load(src: &str, map: &Arc<dyn Map>, helpers: HelperRegistry) -> LoadedProgram {
    let slots = assemble(src, Dialect::Llvm).expect("test program assembles");
    let program = Program::from_slots(slots).expect("test program decodes");
    LoadedProgram::with_maps(program, KIND, Arc::new(helpers), vec![Arc::clone(map)])
        .expect("test program loads")
}

/// A map of `spec` with keys `0..8` filled by [`fill`].
fn filled(spec: &MapSpec) -> Arc<dyn Map> {
    let map: Arc<dyn Map> = Arc::from(create_map(spec, &MapConfig::new(2, 1 << 24)).expect("map"));
    fill(&map, spec);
    map
}

/// Keys `0..8` (as `key_size`-byte little-endian numbers; arrays have them all) hold
/// `100 + key` in their first 8 bytes, and key 12 is absent (an array has no key 12 and
/// cannot delete: that error is the expected one).
fn fill(map: &Arc<dyn Map>, spec: &MapSpec) {
    for k in 0..8u64 {
        let mut value = vec![0; map.value_len()];
        value[..8].copy_from_slice(&(100 + k).to_le_bytes());
        map.update(&key(spec, k), &value, 0).expect("fill");
    }
    let _ = map.delete(&key(spec, 12));
}

fn key(spec: &MapSpec, k: u64) -> Vec<u8> {
    k.to_le_bytes()
        .into_iter()
        .chain(std::iter::repeat(0))
        .take(spec.key_size as usize)
        .collect()
}

/// Runs `src` on both engines with `helpers`, over `spec`'s filled map put back before
/// each run; returns both observations, whose map snapshot is the first 8 bytes of the
/// value under key 5 after the run.
fn run(src: &str, spec: &MapSpec, helpers: HelperRegistry) -> (Observed, Observed) {
    let map = filled(spec);
    let prog = load(src, &map, helpers);
    let reset = || fill(&map, spec);
    let snapshot = || map.lookup(&key(spec, 5)).expect("key 5")[..8].to_vec();
    let opts = RunOptions::new().with_budget(10_000);
    let (interp, jit) = run_both_with(&prog, &[0; 16], &opts, &reset, &snapshot);
    if let Some(d) = difference(&interp, &jit) {
        panic!("{d}\n{src}");
    }
    (interp, jit)
}

/// The map types the tests run, each with the store of a key at `r10 - at` (a `u32`,
/// or a `u64` for the 8-byte-key hash).
fn value_maps(at: u32) -> [(MapSpec, String); 6] {
    let u32_key = format!("*(u32 *)(r10 - {at})");
    [
        (MapSpec::new(MapType::Hash, 4, 8, 16), u32_key.clone()),
        (
            MapSpec::new(MapType::Hash, 8, 8, 16),
            format!("*(u64 *)(r10 - {at})"),
        ),
        (MapSpec::new(MapType::LruHash, 4, 8, 16), u32_key.clone()),
        (MapSpec::new(MapType::PercpuHash, 4, 8, 16), u32_key.clone()),
        (MapSpec::new(MapType::Array, 4, 8, 8), u32_key.clone()),
        (MapSpec::new(MapType::PercpuArray, 4, 16, 8), u32_key),
    ]
}

/// `result` is an out-of-bounds fault of an 8-byte access (a store when `write`) at `pc`.
fn assert_out_of_bounds(result: &Result<u64, Ended>, pc: usize, write: bool) {
    let Err(Ended::Fault(fault)) = result else {
        panic!("expected a fault, got {result:?}");
    };
    assert_eq!(fault.pc, pc, "{fault}");
    assert!(
        matches!(fault.kind, FaultKind::OutOfBounds { write: w, size: 8, .. } if w == write),
        "{fault}"
    );
}

/// Looks up key `k` (stored at `r10 - 16`, the key's size from the map) into `r0`.
fn lookup(store: &str, k: u64) -> String {
    format!("{store} = {k}\nr2 = r10\nr2 += -16\nr1 = map[idx:0]\ncall 1\n")
}

#[test]
fn direct_lookups_give_the_helpers_values_in_every_map_of_values() {
    for (spec, store) in value_maps(16) {
        // r6 = value(3) + value(7) + (key 12 missing ? 1000 : 0); value(5) = 999.
        let src = format!(
            "r6 = 0\n{l3}if r0 == 0 goto +2\nr1 = *(u64 *)(r0 + 0)\nr6 += r1\n\
             {l7}if r0 == 0 goto +2\nr1 = *(u64 *)(r0 + 0)\nr6 += r1\n\
             {l12}if r0 != 0 goto +1\nr6 += 1000\n\
             {l5}if r0 == 0 goto +1\n*(u64 *)(r0 + 0) = 999\n\
             r0 = r6\nexit\n",
            l3 = lookup(&store, 3),
            l7 = lookup(&store, 7),
            l12 = lookup(&store, 12),
            l5 = lookup(&store, 5),
        );
        let (interp, jit) = run(&src, &spec, HelperRegistry::for_program_type(KIND));
        assert_eq!(jit.result, Ok(103 + 107 + 1000), "{:?}", spec.map_type);
        assert_eq!(jit.maps, 999u64.to_le_bytes(), "{:?}", spec.map_type);
        assert_eq!(interp, jit);
    }
}

/// The value a lookup finds becomes the JIT's shared window, set by the code itself from
/// the map's value size: reads up to its last byte pass, one byte past it faults as in
/// the interpreter, and a value found earlier stays readable (through the run's regions)
/// after a later lookup replaced the window.
#[test]
fn a_found_value_is_its_size_and_earlier_values_stay_readable() {
    for (spec, store) in value_maps(16) {
        let last = spec.value_size - 8;
        // r6 = value(7) + value(3) + the last 8 bytes of value(7) + value(3) again.
        let src = format!(
            "{l3}r7 = r0
{l7}r8 = r0
r6 = *(u64 *)(r8 + 0)
r1 = *(u64 *)(r7 + 0)
             r6 += r1
r1 = *(u64 *)(r8 + {last})
r6 += r1
r1 = *(u64 *)(r7 + 0)
             r6 += r1
r0 = r6
exit
",
            l3 = lookup(&store, 3),
            l7 = lookup(&store, 7),
        );
        let (_, jit) = run(&src, &spec, HelperRegistry::for_program_type(KIND));
        // The per-CPU array's 16-byte values hold 100 + key in their first 8 bytes only.
        let tail = if last == 0 { 107 } else { 0 };
        assert_eq!(
            jit.result,
            Ok(107 + 103 + tail + 103),
            "{:?}",
            spec.map_type
        );
    }
    // Arrays keep their values in place across the test's resets, so the fault's address
    // is the same number on both engines. pc: 0-5 the lookup, 6 the (aligned) read of the
    // 8 bytes just past the value's end.
    for spec in [
        MapSpec::new(MapType::Array, 4, 8, 8),
        MapSpec::new(MapType::PercpuArray, 4, 16, 8),
    ] {
        let src = format!(
            "{}r0 = *(u64 *)(r0 + {})
exit
",
            lookup("*(u32 *)(r10 - 16)", 2),
            spec.value_size
        );
        let (_, jit) = run(&src, &spec, HelperRegistry::for_program_type(KIND));
        assert_out_of_bounds(&jit.result, 6, false);
    }
}

/// After a run's first lookup (through the runtime, which pins the epoch), the code
/// walks a hash map's chain itself (`HashTabMap::walk`). Keys picked by the map's own
/// hash to share one bucket: each of the four in the chain (its head, the middle, its
/// tail) is found, and a fifth of the same bucket, absent, is missed past the chain's
/// end; the sum of the values found, and a write through one, match the interpreter's
/// and the hand-computed value.
#[test]
fn the_codes_walk_finds_every_node_of_a_chain_and_misses_past_its_end() {
    let spec = MapSpec::new(MapType::Hash, 4, 8, 64);
    let map: Arc<dyn Map> = Arc::from(create_map(&spec, &MapConfig::new(1, 1 << 24)).expect("map"));
    let walk = map
        .as_any()
        .downcast_ref::<HashTabMap>()
        .and_then(HashTabMap::walk)
        .expect("a hash map with 4-byte keys can be walked");
    let bucket = |k: u32| short_hash(walk.seeds, u64::from(k)) & walk.mask;
    let same: Vec<u32> = (1..).filter(|&k| bucket(k) == bucket(0)).take(5).collect();
    let reset = || {
        for &k in &same[..4] {
            map.update(&k.to_le_bytes(), &u64::from(k).to_le_bytes(), 0)
                .expect("fill");
        }
    };
    // Key 0 first (absent: through the runtime), then the five twice; a write of 7
    // through the last key found.
    let mut src = format!("r6 = 0\n{}", lookup("*(u32 *)(r10 - 16)", 0));
    for &k in same.iter().chain(&same) {
        src += &lookup("*(u32 *)(r10 - 16)", u64::from(k));
        src += "if r0 == 0 goto +3\nr1 = *(u64 *)(r0 + 0)\nr6 += r1\nr7 = r0\n";
    }
    src += "*(u64 *)(r7 + 0) = 7\nr0 = r6\nexit\n";
    let prog = load(&src, &map, HelperRegistry::for_program_type(KIND));
    let last = same[3].to_le_bytes();
    let snapshot = || map.lookup(&last).expect("the last key")[..8].to_vec();
    let opts = RunOptions::new().with_budget(10_000);
    let (interp, jit) = run_both_with(&prog, &[0; 16], &opts, &reset, &snapshot);
    assert_eq!(difference(&interp, &jit), None);
    let found: u64 = same[..4].iter().map(|&k| u64::from(k)).sum();
    assert_eq!(jit.result, Ok(2 * found), "keys {same:?}");
    assert_eq!(jit.maps, 7u64.to_le_bytes());
}

/// The values the code's walks find are logged, and the runtime adds them to the run's
/// regions before it next looks at them; the regions must come out as the
/// interpreter's, which adds each at its lookup: a value the walk found stays readable,
/// through the runtime's slow path, after 20 more lookups moved the shared window away;
/// after 300 more lookups of other keys (the log of 256 filled and taken in once) the
/// ring of 256 regions has forgotten it on both engines, and reading it faults at the
/// same pc.
#[test]
fn values_the_code_found_stay_in_the_regions_as_the_interpreters_do() {
    let spec = MapSpec::new(MapType::Hash, 4, 8, 16);
    let map = filled(&spec);
    let store = "*(u32 *)(r10 - 16)";
    // `rounds` lookups of keys `r9 & 3` for r9 = rounds..1, each value added to r6.
    let looped = |rounds: u32| {
        format!(
            "r9 = {rounds}\nr1 = r9\nr1 &= 3\n{store} = r1\nr2 = r10\nr2 += -16\n\
             r1 = map[idx:0]\ncall 1\nr1 = *(u64 *)(r0 + 0)\nr6 += r1\nr9 += -1\n\
             if r9 != 0 goto -12\n"
        )
    };
    // Key 7 through the runtime (the run's first lookup), key 6 by the code's walk.
    let head = format!(
        "r6 = 0\n{}r7 = r0\n{}r8 = r0\n",
        lookup(store, 7),
        lookup(store, 6)
    );
    let kept = format!(
        "{head}{}r1 = *(u64 *)(r8 + 0)\nr6 += r1\nr0 = r6\nexit\n",
        looped(20)
    );
    let forgotten = format!("{head}{}r0 = *(u64 *)(r8 + 0)\nexit\n", looped(300));
    let opts = RunOptions::new().with_budget(100_000);
    let snapshot = || Vec::new();
    let mut results = Vec::new();
    for src in [kept, forgotten] {
        // The program writes nothing, so the elements (and their addresses) stay put
        // between the two engines' runs.
        let prog = load(&src, &map, HelperRegistry::for_program_type(KIND));
        let (interp, jit) = run_both_with(&prog, &[0; 16], &opts, &|| {}, &snapshot);
        assert_eq!(difference(&interp, &jit), None, "{src}");
        results.push(jit.result);
    }
    // 20 rounds: keys 1, 2, 3, 0 five times each (2,030), then key 6's value (106).
    assert_eq!(results[0], Ok(2_030 + 106));
    // pc: 0 r6, 1-6 and 8-13 the two lookups (7 r7, 14 r8), 15-27 the loop, 28 the read.
    assert_out_of_bounds(&results[1], 28, false);
}

/// A value the code's walk found, passed to a helper as its value argument: the helper
/// checks the pointer against the run's regions, which must hold the value by then
/// (logged by the code, taken in when the helper's call enters the runtime). Key 6's
/// value (106) is copied into key 5; `r0` is the update's result.
#[test]
fn a_value_the_walk_found_is_a_helpers_argument() {
    let spec = MapSpec::new(MapType::Hash, 4, 8, 16);
    let store = "*(u32 *)(r10 - 16)";
    // Key 7 through the runtime (the run's first lookup), key 6 by the code's walk; the
    // value pointer is not in the frame, so the update goes through the helper itself.
    let src = format!(
        "{}{}if r0 == 0 goto +8\nr3 = r0\n{store} = 5\nr2 = r10\nr2 += -16\n\
         r1 = map[idx:0]\nr4 = 0\ncall 2\nexit\n",
        lookup(store, 7),
        lookup(store, 6)
    );
    let (_, jit) = run(&src, &spec, HelperRegistry::for_program_type(KIND));
    assert_eq!(jit.result, Ok(0));
    assert_eq!(jit.maps, 106u64.to_le_bytes());
}

#[test]
fn a_value_read_only_for_programs_faults_at_the_same_store() {
    // An array: its values stay in place across the test's resets (a hash update makes
    // a new element), so the fault's address is the same number on both engines.
    let mut spec = MapSpec::new(MapType::Array, 4, 8, 8);
    spec.flags = F_RDONLY_PROG;
    // pc: 0 store, 1-2 r2, 3-4 lddw, 5 call, 6 branch, 7 the store through r0.
    let src = format!(
        "{}if r0 == 0 goto +1\n*(u64 *)(r0 + 0) = 1\nr0 = 0\nexit\n",
        lookup("*(u32 *)(r10 - 16)", 5)
    );
    let (_, jit) = run(&src, &spec, HelperRegistry::for_program_type(KIND));
    assert_out_of_bounds(&jit.result, 7, true);
    assert_eq!(jit.maps, 105u64.to_le_bytes());
}

#[test]
fn a_helper_1_of_the_host_is_the_one_called() {
    let spec = MapSpec::new(MapType::Hash, 4, 8, 16);
    let mut helpers = HelperRegistry::for_program_type(KIND);
    // The host's own lookup: the key's first byte times 2, whatever the map.
    let mine = Helper::host(1, "host_lookup", None, |ctx, args| {
        let mut first = [0u8];
        ctx.regions.read_bytes(args[1], &mut first)?;
        Ok(u64::from(first[0]) * 2)
    });
    helpers.register(mine).expect("id 1");
    let src = format!("{}exit\n", lookup("*(u32 *)(r10 - 16)", 21));
    let (_, jit) = run(&src, &spec, helpers);
    assert_eq!(jit.result, Ok(42));
}

#[test]
fn a_key_in_the_callers_frame_goes_through_the_helper() {
    let spec = MapSpec::new(MapType::Hash, 4, 8, 16);
    // The caller stores key 6 and passes its address; the callee looks it up (its `r2`
    // comes from its caller: unknown to the callee's translation) and returns the value.
    let src = "*(u32 *)(r10 - 4) = 6\nr2 = r10\nr2 += -4\ncall get\nexit\n\
               get:\nr1 = map[idx:0]\ncall 1\nif r0 == 0 goto +1\nr0 = *(u64 *)(r0 + 0)\nexit\n";
    let (_, jit) = run(src, &spec, HelperRegistry::for_program_type(KIND));
    assert_eq!(jit.result, Ok(106));
}

/// Updates and deletes of every kind of outcome, each return value packed into a byte of
/// `r0`: `(key, value, flags)` updates then deletes, with the key at `r10 - 48` and the
/// value (first 8 bytes) at `r10 - 32`.
fn updates_and_deletes(store: &str) -> String {
    let mut src = String::from("r6 = 0\n");
    let update = |key: u64, value: u64, flags: u64| {
        format!(
            "{store} = {key}\n*(u64 *)(r10 - 32) = {value}\nr1 = map[idx:0]\nr2 = r10\n\
             r2 += -48\nr3 = r10\nr3 += -32\nr4 = {flags}\ncall 2\nr6 <<= 8\nr0 &= 0xff\nr6 |= r0\n"
        )
    };
    let delete = |key: u64| {
        format!(
            "{store} = {key}\nr1 = map[idx:0]\nr2 = r10\nr2 += -48\ncall 3\n\
             r6 <<= 8\nr0 &= 0xff\nr6 |= r0\n"
        )
    };
    // BPF_ANY over key 5; BPF_NOEXIST of key 12 (absent, or past an array's end) and of
    // key 5 (present); key 3 deleted twice.
    src += &update(5, 555, 0);
    src += &update(12, 1, 1);
    src += &update(5, 1, 1);
    src += &delete(3);
    src += &delete(3);
    src + "r0 = r6\nexit\n"
}

#[test]
fn direct_updates_and_deletes_return_the_helpers_errnos() {
    for (spec, store) in value_maps(48) {
        let (_, jit) = run(
            &updates_and_deletes(&store),
            &spec,
            HelperRegistry::for_program_type(KIND),
        );
        // 0, then -E2BIG (-7) or 0, -EEXIST (-17), then -EINVAL (-22) twice or 0 and
        // -ENOENT (-2), each as its low byte.
        let expected: u64 = if matches!(spec.map_type, MapType::Array | MapType::PercpuArray) {
            0x00_f9_ef_ea_ea
        } else {
            0x00_00_ef_00_fe
        };
        assert_eq!(jit.result, Ok(expected), "{:?}", spec.map_type);
        assert_eq!(jit.maps, 555u64.to_le_bytes(), "{:?}", spec.map_type);
    }
    // A map read-only for programs: every update and delete is -EPERM (-1).
    let mut spec = MapSpec::new(MapType::Hash, 4, 8, 16);
    spec.flags = F_RDONLY_PROG;
    let (_, jit) = run(
        &updates_and_deletes("*(u32 *)(r10 - 48)"),
        &spec,
        HelperRegistry::for_program_type(KIND),
    );
    assert_eq!(jit.result, Ok(0xff_ff_ff_ff_ff));
    assert_eq!(jit.maps, 105u64.to_le_bytes());
}

#[test]
fn a_run_pins_the_epoch_from_its_first_lookup_to_its_end() {
    // Host helper 300 tells whether this thread is pinned. Before the lookup, nothing has
    // needed the epoch (a run without lookups never pins: a fence saved); after it, the
    // value found must stay allocated, so the run holds the pin to its end, a second
    // lookup included. r0 = pinned before | pinned after << 1 | pinned at the end << 2.
    let spec = MapSpec::new(MapType::Hash, 4, 8, 16);
    let mut helpers = HelperRegistry::for_program_type(KIND);
    let pinned = Helper::host(300, "is_pinned", None, |_, _| {
        Ok(u64::from(crossbeam_epoch::is_pinned()))
    });
    helpers.register(pinned).expect("id 300");
    let src = format!(
        "call 300\nr6 = r0\n{l3}call 300\nr0 <<= 1\nr6 |= r0\n{l7}call 300\nr0 <<= 2\n\
         r0 |= r6\nexit\n",
        l3 = lookup("*(u32 *)(r10 - 16)", 3),
        l7 = lookup("*(u32 *)(r10 - 16)", 7),
    );
    assert!(
        !crossbeam_epoch::is_pinned(),
        "the test thread starts unpinned"
    );
    let (_, jit) = run(&src, &spec, helpers);
    assert_eq!(jit.result, Ok(0b110));
    assert!(!crossbeam_epoch::is_pinned(), "the run unpinned at its end");
}
