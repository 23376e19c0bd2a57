//! `bpfvm kernel-verify`: the kernel verifier's verdict, for people and for comparison
//! with bpfvm's own verifier.

use crate::{Failure, KernelVerifyArgs};

#[cfg(not(target_os = "linux"))]
pub fn cmd_kernel_verify(_: KernelVerifyArgs) -> Result<(), Failure> {
    Err(Failure(
        "kernel-verify needs Linux: bpf(2) exists only there".into(),
        2,
    ))
}

#[cfg(target_os = "linux")]
pub fn cmd_kernel_verify(a: KernelVerifyArgs) -> Result<(), Failure> {
    use bpfvm_kernel::{Bpf, KernelEngine, LOG_LEVEL2, ProgLoad, ProgType, Verdict};

    use crate::read_program;

    let input = read_program(&a.input)?;
    let extra = if a.states { LOG_LEVEL2 } else { 0 };
    let verdict: Verdict = match &a.prog_type {
        Some(name) => {
            let prog_type = ProgType::parse(name).ok_or_else(|| {
                Failure(
                    format!(
                        "--prog-type {name}: not a program type (xdp, socket, tc, kprobe, tracepoint, perf_event, cgroup_skb, raw_tracepoint, tracing, syscall, or a number)"
                    ),
                    2,
                )
            })?;
            bpfvm_kernel::probe().map_err(|why| Failure(why.to_string(), 2))?;
            println!(
                "program:      {} instructions as a {prog_type} program",
                input.slots.len()
            );
            Bpf::new()
                .verify(&ProgLoad::new(prog_type, &input.slots), extra)
                .map_err(|e| Failure(e.to_string(), 2))?
        }
        None => {
            let mem_len = a
                .mem_len
                .or(input.test.as_ref().map(|t| t.mem.len()))
                .unwrap_or(0);
            let engine = KernelEngine::new().map_err(|why| Failure(why.to_string(), 2))?;
            let (wrapped, verdict) = engine
                .verify(&input.slots, mem_len, extra)
                .map_err(|e| Failure(e.to_string(), 2))?;
            println!(
                "program:      {} instructions at pc {} behind the test-ABI wrapper ({:?} placement, {} bytes of memory, {} program)",
                input.slots.len(),
                wrapped.program_start,
                wrapped.placement,
                mem_len,
                wrapped.placement.prog_type()
            );
            if a.show_wrapper {
                let listing = crate::listing(&wrapped.insns, bpfvm_isa::Syntax::Kernel);
                println!(
                    "\n--- as loaded (kernel notation; the program starts at {}) ---",
                    wrapped.program_start
                );
                print!("{listing}");
                println!();
            }
            verdict
        }
    };
    print_verdict(&verdict, a.log || a.states);
    if verdict.accepted {
        Ok(())
    } else {
        Err(Failure("the kernel rejected the program".into(), 1))
    }
}

#[cfg(target_os = "linux")]
fn print_verdict(v: &bpfvm_kernel::Verdict, log: bool) {
    let show = |n: Option<u32>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
    match v.errno {
        None => println!("verdict:      accepted"),
        Some(errno) => println!("verdict:      rejected, {errno}"),
    }
    if let Some(reason) = v.reason() {
        println!("reason:       {reason}");
    }
    let s = &v.stats;
    println!(
        "processed:    {} instructions (limit {})",
        show(s.processed_insns),
        show(s.insn_limit)
    );
    if let Some(info) = &v.info {
        println!(
            "prog info:    verified_insns {}, {} bytes after rewrites, {} bytes JIT-compiled",
            info.verified_insns, info.xlated_len, info.jited_len
        );
    }
    println!(
        "states:       {} total, {} peak, {} at most per instruction",
        show(s.total_states),
        show(s.peak_states),
        show(s.max_states_per_insn)
    );
    if !s.stack_depth.is_empty() {
        let depths: Vec<String> = s.stack_depth.iter().map(u32::to_string).collect();
        println!("stack depth:  {} bytes (per function)", depths.join("+"));
    }
    if let Some(t) = s.verification_time {
        println!("time:         {} µs", t.as_micros());
    }
    if log {
        println!(
            "\n--- verifier log{} ---",
            if v.log_truncated { " (truncated)" } else { "" }
        );
        print!("{}", v.log);
        if !v.log.ends_with('\n') {
            println!();
        }
    }
}
