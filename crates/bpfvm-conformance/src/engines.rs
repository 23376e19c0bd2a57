//! The engines a suite can run on, by name.

use bpfvm_interp::Interpreter;
use bpfvm_runtime::Engine;

/// Every engine name the CLI accepts, available or not. `jit-blinded` is the JIT with
/// constant blinding ([`bpfvm_jit::Jit::with_constant_blinding`]).
pub const ENGINE_NAMES: [&str; 4] = ["interp", "jit", "jit-blinded", "kernel"];

/// The engines a suite runs on when none is named: every distinct engine (the blinded
/// JIT has the plain JIT's semantics, so it runs only when asked for).
pub const DEFAULT_ENGINES: [&str; 3] = ["interp", "jit", "kernel"];

/// The engine with this name, or why it cannot be had in this build.
pub fn engine_by_name(name: &str) -> Result<Box<dyn Engine>, String> {
    match name {
        "interp" => Ok(Box::new(Interpreter::new())),
        "jit" => Ok(Box::new(bpfvm_jit::Jit::new())),
        "jit-blinded" => Ok(Box::new(bpfvm_jit::Jit::new().with_constant_blinding())),
        "kernel" => kernel_engine(),
        other => Err(format!(
            "unknown engine `{other}` (known: {})",
            ENGINE_NAMES.join(", ")
        )),
    }
}

/// Every default engine usable here ([`DEFAULT_ENGINES`]), each with the reason the
/// others are not.
pub fn available_engines() -> (Vec<Box<dyn Engine>>, Vec<String>) {
    let mut engines = Vec::new();
    let mut missing = Vec::new();
    for name in DEFAULT_ENGINES {
        match engine_by_name(name) {
            Ok(e) => engines.push(e),
            Err(why) => missing.push(why),
        }
    }
    (engines, missing)
}

#[cfg(target_os = "linux")]
fn kernel_engine() -> Result<Box<dyn Engine>, String> {
    bpfvm_kernel::KernelEngine::new()
        .map(|k| Box::new(k) as Box<dyn Engine>)
        .map_err(|why| format!("engine `kernel` is not available: {why}"))
}

#[cfg(not(target_os = "linux"))]
fn kernel_engine() -> Result<Box<dyn Engine>, String> {
    Err("engine `kernel` is not available: bpf(2) exists only on Linux".into())
}
