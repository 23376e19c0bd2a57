//! Prints what bpfvm's JIT makes of one `--bench engines` program (Cranelift IR and the
//! machine code, per BPF function): for finding where a JIT run spends its time.
//!
//! `cargo run -p bpfvm-benches --example dump_jit -- sum_loop_1e5 [ir|asm]`; also
//! `map_lookups_N` and `map_updates_N`: the map programs of `--bench maps` with N
//! lookups or updates.

use bpfvm_benches::engines::programs;
use bpfvm_benches::maps::{filled_hash, hash_lookup_source, hash_update_source, load};
use bpfvm_isa::Program;
use bpfvm_jit::Jit;
use bpfvm_runtime::{LoadedProgram, ProgramType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "sum_loop_1e5".into());
    let what = args.next().unwrap_or_else(|| "asm".into());
    let map_source = match (
        name.strip_prefix("map_lookups_"),
        name.strip_prefix("map_updates_"),
    ) {
        (Some(n), _) => Some(hash_lookup_source(n.parse()?)),
        (_, Some(n)) => Some(hash_update_source(n.parse()?)),
        _ => None,
    };
    if let Some(source) = map_source {
        println!("{source}");
        return print(&load(&source, vec![filled_hash()?])?, &what);
    }
    let Some(p) = programs().into_iter().find(|p| p.name == name) else {
        let names: Vec<_> = programs().iter().map(|p| p.name).collect();
        return Err(format!("no program {name}; the programs: {names:?}").into());
    };
    println!("{}", p.source());
    let prog = LoadedProgram::new(Program::from_slots(p.slots()?)?, ProgramType::Conformance)?;
    print(&prog, &what)
}

fn print(prog: &LoadedProgram, what: &str) -> Result<(), Box<dyn std::error::Error>> {
    for f in Jit::new().dump(prog)? {
        println!("; function at pc {}", f.entry);
        println!("{}", if what == "ir" { &f.ir } else { &f.asm });
    }
    Ok(())
}
