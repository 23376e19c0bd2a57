//! Random and mutated `.BTF` / `.BTF.ext` bytes: parsing never panics,
//! never allocates more than a small multiple of the input, and whatever
//! parses also serializes back, prints, sizes and CO-RE-resolves without
//! panicking or looping.
//!
//! Allocation is measured by a counting global allocator (per thread, so
//! tests running in parallel do not disturb each other).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bpfvm_btf::{Btf, BtfExt};
use common::section;
use proptest::prelude::*;

/// Counts the bytes live on the current thread and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get() + size;
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn note_dealloc(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(size)));
}

// SAFETY: every method forwards to the system allocator with the caller's
// arguments unchanged, so `System`'s guarantees are ours; the bookkeeping
// only touches const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as ours: `layout` has non-zero size.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_dealloc(layout.size());
        // SAFETY: `ptr` came from `System` with this `layout` (we forward
        // every allocation to it).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        note_dealloc(layout.size());
        // SAFETY: `ptr`/`layout` came from `System` (see `dealloc`) and the
        // caller guarantees `new_size` is valid for `layout`'s alignment.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result and the peak bytes it had live beyond
/// what was live before.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, peak.saturating_sub(base))
}

/// The bound we promise: a small multiple of the input plus a constant.
fn bound(input_len: usize) -> usize {
    32 * input_len + 64 * 1024
}

/// Everything a loader might do with a parsed BTF; must not panic or hang.
fn exercise(btf: &Btf) {
    let bytes = btf.to_bytes();
    assert_eq!(Btf::parse(&bytes).as_ref(), Ok(btf), "round trip");
    let _ = btf.dump_raw();
    for (id, _) in btf.types() {
        let _ = btf.format_c(id);
        let _ = btf.size_of(id);
        let _ = btf.align_of(id);
        let _ = btf.skip_mods_and_typedefs(id);
    }
}

fn fixture_btf(obj: &str) -> Vec<u8> {
    section(obj, ".BTF")
}

/// A mutation of a byte string: flip bytes, overwrite words with extreme
/// values, truncate.
#[derive(Debug, Clone)]
enum Mutation {
    Byte(usize, u8),
    Word(usize, u32),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u32),
                Just(1),
                Just(0xffff_ffff),
                Just(0x00ff_ffff),
                Just(0x8000_0000),
                Just(0x0d00_0001),
                Just(0x0400_0002),
                0u32..64,
                any::<u32>()
            ]
        )
            .prop_map(|(i, w)| Mutation::Word(i, w)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut data: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if data.is_empty() {
            break;
        }
        match *m {
            Mutation::Byte(i, b) => {
                let i = i % data.len();
                data[i] = b;
            }
            Mutation::Word(i, w) => {
                let words = data.len() / 4;
                if words > 0 {
                    let i = (i % words) * 4;
                    data[i..i + 4].copy_from_slice(&w.to_le_bytes());
                }
            }
            Mutation::Truncate(n) => {
                let n = n % (data.len() + 1);
                // keep most truncations near the end, where records are cut
                data.truncate(data.len() - n.min(data.len() / 8 + 1));
            }
        }
    }
    data
}

fn check_btf(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (parsed, peak) = measured(|| Btf::parse(bytes));
    prop_assert!(
        peak <= bound(bytes.len()),
        "parsing {} bytes allocated {peak}",
        bytes.len()
    );
    if let Ok(btf) = parsed {
        exercise(&btf);
    }
    Ok(())
}

fn check_ext(bytes: &[u8], btf: &Btf) -> Result<(), TestCaseError> {
    let (parsed, peak) = measured(|| BtfExt::parse(bytes, btf));
    // section names are copied per section: bounded by the ext input times
    // the longest string, which is small here
    prop_assert!(
        peak <= bound(bytes.len()),
        "parsing {} ext bytes allocated {peak}",
        bytes.len()
    );
    if let Ok(ext) = parsed {
        for sec in &ext.core_relos {
            for r in &sec.records {
                let _ = bpfvm_btf::core::resolve(btf, r, btf);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_btf(&bytes)?;
        let btf = Btf::parse(&fixture_btf("core.o")).expect("fixture");
        check_ext(&bytes, &btf)?;
    }

    #[test]
    fn random_bytes_behind_a_valid_header(body in prop::collection::vec(any::<u8>(), 0..512),
                                          split in any::<usize>()) {
        // a well-formed header around random type and string sections
        let split = split % (body.len() + 1);
        let mut b = Vec::new();
        b.extend_from_slice(&0xeb9fu16.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [24u32, 0, split as u32, split as u32, (body.len() - split) as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&body);
        check_btf(&b)?;
    }

    #[test]
    fn mutated_fixture_btf_never_panics(which in 0..2usize,
                                        muts in prop::collection::vec(mutation(), 1..8)) {
        let obj = ["types.o", "core.o"][which];
        let bytes = apply(fixture_btf(obj), &muts);
        check_btf(&bytes)?;
    }

    #[test]
    fn mutated_fixture_ext_never_panics(muts in prop::collection::vec(mutation(), 1..8)) {
        let btf = Btf::parse(&fixture_btf("core.o")).expect("fixture");
        let bytes = apply(section("core.o", ".BTF.ext"), &muts);
        check_ext(&bytes, &btf)?;
    }

    #[test]
    fn core_resolution_against_mutated_targets_never_panics(
        muts in prop::collection::vec(mutation(), 1..6)
    ) {
        let local = Btf::parse(&fixture_btf("core.o")).expect("fixture");
        let ext = BtfExt::parse(&section("core.o", ".BTF.ext"), &local).expect("fixture ext");
        let target = apply(fixture_btf("core.o"), &muts);
        if let Ok(target) = Btf::parse(&target) {
            for r in &ext.core_relos[0].records {
                let _ = bpfvm_btf::core::resolve(&local, r, &target);
            }
        }
    }
}

#[test]
fn allocation_stays_proportional_on_real_inputs() {
    for obj in ["types.o", "core.o"] {
        let bytes = fixture_btf(obj);
        let (btf, peak) = measured(|| Btf::parse(&bytes));
        let btf = btf.expect("fixture");
        assert!(peak <= bound(bytes.len()), "{obj}: {peak}");
        let ext = section(obj, ".BTF.ext");
        let (_, peak) = measured(|| BtfExt::parse(&ext, &btf));
        assert!(peak <= bound(ext.len()), "{obj} ext: {peak}");
    }
    if let Ok(bytes) = std::fs::read(common::VMLINUX) {
        let (btf, peak) = measured(|| Btf::parse(&bytes));
        assert!(btf.is_ok());
        assert!(
            peak <= bound(bytes.len()),
            "vmlinux: {peak} for {}",
            bytes.len()
        );
        eprintln!(
            "vmlinux: {} input bytes, peak {} bytes while parsing ({:.1}x)",
            bytes.len(),
            peak,
            peak as f64 / bytes.len() as f64
        );
    }
}

#[test]
fn the_allocator_counts() {
    let (v, peak) = measured(|| vec![0u8; 100_000]);
    assert!(peak >= 100_000);
    drop(v);
}
