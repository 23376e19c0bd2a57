//! `bpfvm`: assemble, disassemble, run and conformance-test BPF programs.
//!
//! A thin layer over the library crates: argument parsing, file I/O and
//! printing live here; everything else is a library call.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bpfvm_conformance::data::{Expectation, TestCase, parse_hex_bytes};
use bpfvm_conformance::divergence::DIVERGENCES;
use bpfvm_conformance::engines::{ENGINE_NAMES, available_engines, engine_by_name};
use bpfvm_conformance::run::{Filter, Report};
use bpfvm_conformance::suite::{load, load_suite, slots_of};
use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_isa::disasm::{Syntax, disassemble, format_insn, objdump_listing};
use bpfvm_isa::spec::{Group, IsaVersion};
use bpfvm_isa::{RawInsn, slots_from_bytes, slots_to_bytes};
use bpfvm_runtime::{RunError, RunOptions};
use clap::{Parser, Subcommand, ValueEnum};

mod btf_value;
mod kernel_verify;
mod object_cmd;
mod objrun;
mod trace;

/// bpfvm: a userspace eBPF runtime. Assemble, disassemble and run BPF
/// bytecode, and check engines against the conformance suite.
#[derive(Debug, Parser)]
#[command(name = "bpfvm", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Assemble a program (LLVM/kernel syntax or the bpf_conformance dialect) into bytecode.
    Asm(AsmArgs),
    /// Disassemble bytecode, the program of a `.data` test, or the linked programs of an ELF object.
    Disasm(DisasmArgs),
    /// Show what an ELF object holds: sections, programs, maps, externs, relocations, BTF.
    Inspect(InspectArgs),
    /// Run a program (a `.data` test, raw bytecode, or an ELF object's program on a packet
    /// or context, as `bpftool prog run`) and print r0; `--trace` shows every step.
    Run(Box<RunArgs>),
    /// Maps saved by `bpfvm run OBJ.o --state FILE`: `bpfvm map dump --state FILE [NAME]`.
    #[command(subcommand)]
    Map(MapCommand),
    /// Run a conformance suite (default: this repository's `conformance-tests/`) on every available engine.
    Conformance(ConformanceArgs),
    /// Load a program in the Linux kernel and print the verifier's verdict: accepted or not,
    /// why, processed instructions, verification time, stack depth, and with --log the log.
    KernelVerify(KernelVerifyArgs),
    /// Speak the bpf_conformance plugin protocol: `bpfvm plugin [MEM-HEX] [--engine E] [--elf]`, program as hex on stdin.
    Plugin(PluginArgs),
}

#[derive(Debug, Subcommand)]
enum MapCommand {
    /// Print every entry of the saved maps, as `bpftool map dump` does.
    Dump(objrun::MapDumpArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DialectArg {
    /// `r0 = *(u32 *)(r1 + 4)`, as llvm-objdump, bpftool and the verifier log print.
    Llvm,
    /// `ldxw %r0, [%r1+4]`, the bpf_conformance assembly dialect.
    Conformance,
}

impl From<DialectArg> for Dialect {
    fn from(d: DialectArg) -> Dialect {
        match d {
            DialectArg::Llvm => Dialect::Llvm,
            DialectArg::Conformance => Dialect::Conformance,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    /// One 64-bit word per slot, `0x...`, the `-- raw` section format.
    Words,
    /// Hex bytes separated by spaces (the plugin protocol's form).
    Hex,
    /// Raw little-endian bytecode (needs `--output`).
    Bin,
}

#[derive(Debug, clap::Args)]
struct AsmArgs {
    /// Assembly source file (`-` for stdin).
    input: PathBuf,
    /// Assembly dialect.
    #[arg(long, value_enum, default_value = "llvm")]
    dialect: DialectArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "words")]
    format: OutputFormat,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SyntaxArg {
    /// As `llvm-objdump-19 -d --mcpu=v4` prints it.
    Llvm,
    /// As plain `llvm-objdump-19 -d` prints it (generic CPU).
    LlvmGeneric,
    /// The kernel verifier log's notation (`goto pc+2`).
    Kernel,
    /// The bpf_conformance assembly dialect.
    Conformance,
}

impl From<SyntaxArg> for Syntax {
    fn from(s: SyntaxArg) -> Syntax {
        match s {
            SyntaxArg::Llvm => Syntax::Llvm,
            SyntaxArg::LlvmGeneric => Syntax::LlvmGeneric,
            SyntaxArg::Kernel => Syntax::Kernel,
            SyntaxArg::Conformance => Syntax::Conformance,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum InputFormat {
    /// `.data` files as tests, `.s`/`.asm` as LLVM assembly, anything else as raw bytecode.
    Auto,
    /// Raw little-endian bytecode.
    Bin,
    /// Hex bytes (whitespace-separated).
    Hex,
    /// A bpf_conformance `.data` test.
    Data,
    /// Assembly (see `--dialect`).
    Asm,
}

#[derive(Debug, clap::Args)]
struct InputArgs {
    /// Program file: a `.data` test, assembly, or raw bytecode (`-` for stdin).
    input: PathBuf,
    /// How to read the input.
    #[arg(long = "input-format", value_enum, default_value = "auto")]
    format: InputFormat,
    /// Dialect of assembly input.
    #[arg(long, value_enum, default_value = "llvm")]
    dialect: DialectArg,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The ELF object (`clang -target bpf -c` output).
    object: PathBuf,
    /// Also list every BTF type, in C syntax.
    #[arg(long)]
    btf: bool,
}

#[derive(Debug, clap::Args)]
struct KernelVerifyArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Load the program as it is, as this program type (xdp, socket, tc, kprobe,
    /// tracepoint, perf_event, cgroup_skb, raw_tracepoint, tracing, syscall, or a number).
    /// Without it the program is verified as the kernel engine loads it: behind the
    /// test-ABI wrapper (r1 = memory, r2 = its length).
    #[arg(long)]
    prog_type: Option<String>,
    /// Memory length the wrapper sets up (default: the `.data` test's memory, else 0).
    #[arg(long)]
    mem_len: Option<usize>,
    /// Print the verifier's whole log after the verdict.
    #[arg(long)]
    log: bool,
    /// Log the register state at every instruction (BPF_LOG_LEVEL2); implies --log.
    #[arg(long)]
    states: bool,
    /// Print the program as loaded: the test-ABI wrapper followed by the program.
    #[arg(long)]
    show_wrapper: bool,
}

#[derive(Debug, clap::Args)]
struct DisasmArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output syntax.
    #[arg(long, value_enum, default_value = "llvm")]
    syntax: SyntaxArg,
    /// Print a full `llvm-objdump -d` style listing (slot numbers and bytes).
    #[arg(long)]
    objdump: bool,
    /// ELF objects: only the programs of this section.
    #[arg(long)]
    section: Option<String>,
    /// ELF objects: interleave the source lines (from BTF line info), as `llvm-objdump -S`.
    #[arg(long)]
    source: bool,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Memory for the program: hex bytes, or `@FILE` for a file's raw contents. Overrides a `.data` test's `-- mem`.
    #[arg(long)]
    mem: Option<String>,
    /// Print every executed instruction with the registers it changed.
    #[arg(long)]
    trace: bool,
    /// Stop after this many instructions.
    #[arg(long)]
    budget: Option<u64>,
    /// Engine to run on.
    #[arg(long, default_value = "interp", value_parser = clap::builder::PossibleValuesParser::new(ENGINE_NAMES))]
    engine: String,
    /// Print the Cranelift IR the JIT makes of each BPF function, before running.
    #[arg(long)]
    dump_ir: bool,
    /// Print the machine code the JIT emits for each BPF function (Cranelift's
    /// disassembly), before running.
    #[arg(long)]
    dump_asm: bool,
    /// ELF objects: run the program of this section (needed when several match).
    #[arg(long, help_heading = "Objects")]
    section: Option<String>,
    /// ELF objects: run the program of this name.
    #[arg(long, help_heading = "Objects")]
    program: Option<String>,
    /// ELF objects (XDP, tc, socket filter): the packet, a file of raw bytes.
    #[arg(long, help_heading = "Objects")]
    packet: Option<PathBuf>,
    /// ELF objects: run on every packet of this pcap file in turn.
    #[arg(long, help_heading = "Objects")]
    pcap: Option<PathBuf>,
    /// ELF objects: the packet as hex bytes (`0a 00 01` or `0a0001`).
    #[arg(long, help_heading = "Objects")]
    data: Option<String>,
    /// ELF objects: write the packet out (or a syscall program's context) to this file.
    #[arg(long, help_heading = "Objects")]
    data_out: Option<PathBuf>,
    /// ELF objects: `struct xdp_md` / `struct __sk_buff` bytes as hex, as bpftool's `ctx_in`.
    #[arg(long, help_heading = "Objects")]
    ctx_in: Option<String>,
    /// ELF objects (raw_tp, kprobe, other struct contexts): the context as hex bytes.
    #[arg(long, help_heading = "Objects")]
    ctx: Option<String>,
    /// ELF objects: the context as JSON (or a JSON file): fields by name, per the BTF
    /// context struct, or an array of bytes.
    #[arg(long, help_heading = "Objects")]
    ctx_json: Option<String>,
    /// ELF objects: run this many times per input and print the last result.
    #[arg(long, default_value_t = 1, help_heading = "Objects")]
    repeat: u32,
    /// ELF objects: set a global (`.rodata`, `.data`, `.bss`) before load: NAME=HEX,
    /// the bytes as they lie in memory (repeatable).
    #[arg(long, help_heading = "Objects")]
    global: Vec<String>,
    /// ELF objects: maps' contents are loaded from this JSON file if it exists and saved
    /// to it after the run, as pinned maps outlive a program run.
    #[arg(long, help_heading = "Objects")]
    state: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ConformanceArgs {
    /// Directories (or single `.data` files) of tests; default: this repository's `conformance-tests/`.
    dirs: Vec<PathBuf>,
    /// Run only on these engines (default: interp, jit and, where bpf() works, kernel;
    /// jit-blinded, the JIT with constant blinding, only when named).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ENGINE_NAMES))]
    engine: Vec<String>,
    /// Skip tests that use instructions of this conformance group (repeatable).
    #[arg(long = "exclude-group", value_parser = parse_group)]
    exclude_groups: Vec<Group>,
    /// Skip tests that need a newer ISA version than this (v1..v4).
    #[arg(long, value_parser = parse_version)]
    max_version: Option<IsaVersion>,
    /// Instruction budget per test run.
    #[arg(long, default_value_t = bpfvm_conformance::run::DEFAULT_BUDGET)]
    budget: u64,
    /// Also list skipped tests.
    #[arg(long, short)]
    verbose: bool,
    /// Never show the progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, clap::Args)]
struct PluginArgs {
    /// `[MEM-HEX] [--engine interp|jit|kernel] [--elf]`, passed on as the protocol defines them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn parse_group(s: &str) -> Result<Group, String> {
    Group::from_name(s).ok_or_else(|| {
        let names: Vec<_> = Group::ALL.iter().map(|g| g.name()).collect();
        format!("unknown group `{s}` (groups: {})", names.join(", "))
    })
}

fn parse_version(s: &str) -> Result<IsaVersion, String> {
    IsaVersion::ALL
        .into_iter()
        .find(|v| v.name() == s)
        .ok_or_else(|| format!("unknown ISA version `{s}` (v1..v4)"))
}

/// A failed command: the message, and the exit code.
struct Failure(String, u8);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.to_string(), 2)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Asm(a) => cmd_asm(a),
        Command::Disasm(a) => cmd_disasm(a),
        Command::Run(a) => cmd_run(*a),
        Command::Map(MapCommand::Dump(a)) => objrun::cmd_map_dump(&a),
        Command::Inspect(a) => cmd_inspect(a),
        Command::KernelVerify(a) => kernel_verify::cmd_kernel_verify(a),
        Command::Conformance(a) => cmd_conformance(a),
        Command::Plugin(a) => {
            let code = bpfvm_conformance::plugin::plugin_main(
                &a.args,
                &mut std::io::stdin().lock(),
                &mut std::io::stdout().lock(),
            );
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg, code)) => {
            eprintln!("bpfvm: {msg}");
            ExitCode::from(code)
        }
    }
}

fn read_input(path: &Path) -> Result<Vec<u8>, Failure> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(|e| Failure(format!("{}: {e}", path.display()), 2))
    }
}

fn read_text(path: &Path) -> Result<String, Failure> {
    String::from_utf8(read_input(path)?)
        .map_err(|_| Failure(format!("{}: not UTF-8 text", path.display()), 2))
}

/// A program read from the command line, with a `.data` test's memory and expectation.
struct Input {
    slots: Vec<RawInsn>,
    test: Option<TestCase>,
}

fn read_program(args: &InputArgs) -> Result<Input, Failure> {
    let ext = args
        .input
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let format = match args.format {
        InputFormat::Auto if ext == "data" => InputFormat::Data,
        InputFormat::Auto if matches!(ext, "s" | "asm" | "S") => InputFormat::Asm,
        InputFormat::Auto => InputFormat::Bin,
        f => f,
    };
    let name = args.input.display();
    match format {
        InputFormat::Data => {
            let case = TestCase::parse(&read_text(&args.input)?)
                .map_err(|e| Failure(format!("{name}: {e}"), 2))?;
            let slots = slots_of(&case).map_err(|e| Failure(format!("{name}: {e}"), 2))?;
            Ok(Input {
                slots,
                test: Some(case),
            })
        }
        InputFormat::Asm => {
            let text = read_text(&args.input)?;
            let slots = assemble(&text, args.dialect.into())
                .map_err(|e| Failure(format!("{name}: {e}"), 2))?;
            Ok(Input { slots, test: None })
        }
        InputFormat::Hex => {
            let bytes = parse_hex_bytes(&read_text(&args.input)?)
                .map_err(|t| Failure(format!("{name}: `{t}` is not a hex byte"), 2))?;
            Ok(Input {
                slots: slots_from_bytes(&bytes).map_err(|e| Failure(format!("{name}: {e}"), 2))?,
                test: None,
            })
        }
        InputFormat::Bin | InputFormat::Auto => {
            let bytes = read_input(&args.input)?;
            Ok(Input {
                slots: slots_from_bytes(&bytes).map_err(|e| Failure(format!("{name}: {e}"), 2))?,
                test: None,
            })
        }
    }
}

fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<(), Failure> {
    match path {
        Some(p) => {
            std::fs::write(p, bytes).map_err(|e| Failure(format!("{}: {e}", p.display()), 2))
        }
        None => Ok(std::io::stdout().write_all(bytes)?),
    }
}

fn cmd_asm(a: AsmArgs) -> Result<(), Failure> {
    let text = read_text(&a.input)?;
    let slots = assemble(&text, a.dialect.into())
        .map_err(|e| Failure(format!("{}: {e}", a.input.display()), 2))?;
    let out = match a.format {
        OutputFormat::Words => slots
            .iter()
            .map(|s| format!("{:#018x}\n", s.to_u64()))
            .collect::<String>()
            .into_bytes(),
        OutputFormat::Hex => {
            let hex: Vec<String> = slots_to_bytes(&slots)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{}\n", hex.join(" ")).into_bytes()
        }
        OutputFormat::Bin if a.output.is_none() => {
            return Err(Failure(
                "--format bin writes binary: give --output FILE".into(),
                2,
            ));
        }
        OutputFormat::Bin => slots_to_bytes(&slots),
    };
    write_output(a.output.as_deref(), &out)
}

fn cmd_inspect(a: InspectArgs) -> Result<(), Failure> {
    let bytes = read_input(&a.object)?;
    let obj = object_cmd::load_object(&a.object, &bytes)?;
    print!("{}", object_cmd::inspect(&obj, &a.object, a.btf));
    Ok(())
}

fn cmd_disasm(a: DisasmArgs) -> Result<(), Failure> {
    if a.input.input.as_os_str() != "-" {
        let bytes = read_input(&a.input.input)?;
        if object_cmd::is_elf(&bytes) {
            let obj = object_cmd::load_object(&a.input.input, &bytes)?;
            let programs: Vec<_> = obj
                .programs
                .iter()
                .filter(|p| a.section.as_ref().is_none_or(|s| *s == p.section))
                .collect();
            if programs.is_empty() {
                return Err(Failure(
                    format!(
                        "{}: no program in section `{}`",
                        a.input.input.display(),
                        a.section.unwrap_or_default()
                    ),
                    1,
                ));
            }
            let listings: Vec<String> = programs
                .iter()
                .map(|p| {
                    let dir = a.input.input.parent().unwrap_or(Path::new("."));
                    object_cmd::listing(&obj, p, a.syntax.into(), a.source, dir)
                })
                .collect();
            print!("{}", listings.join("\n"));
            return Ok(());
        }
    }
    let input = read_program(&a.input)?;
    let text = if a.objdump {
        objdump_listing(&input.slots, ".text")
    } else {
        listing(&input.slots, a.syntax.into())
    };
    print!("{text}");
    Ok(())
}

fn parse_mem(arg: &str) -> Result<Vec<u8>, Failure> {
    match arg.strip_prefix('@') {
        Some(file) => std::fs::read(file).map_err(|e| Failure(format!("--mem {file}: {e}"), 2)),
        None => {
            parse_hex_bytes(arg).map_err(|t| Failure(format!("--mem: `{t}` is not a hex byte"), 2))
        }
    }
}

fn cmd_run(a: RunArgs) -> Result<(), Failure> {
    if a.input.input.as_os_str() != "-" && a.input.format == InputFormat::Auto {
        let bytes = read_input(&a.input.input)?;
        if object_cmd::is_elf(&bytes) {
            return objrun::cmd_run_object(&a, bytes);
        }
    }
    let object_only = [
        (a.section.is_some(), "--section"),
        (a.program.is_some(), "--program"),
        (a.packet.is_some(), "--packet"),
        (a.pcap.is_some(), "--pcap"),
        (a.data.is_some(), "--data"),
        (a.data_out.is_some(), "--data-out"),
        (a.ctx_in.is_some(), "--ctx-in"),
        (a.ctx.is_some(), "--ctx"),
        (a.ctx_json.is_some(), "--ctx-json"),
        (a.repeat != 1, "--repeat"),
        (!a.global.is_empty(), "--global"),
        (a.state.is_some(), "--state"),
    ];
    if let Some((_, flag)) = object_only.iter().find(|(set, _)| *set) {
        return Err(Failure(
            format!(
                "{flag} is for ELF objects; {} is bytecode (give its memory with --mem)",
                a.input.input.display()
            ),
            2,
        ));
    }
    let input = read_program(&a.input)?;
    let mut mem = match (&a.mem, &input.test) {
        (Some(m), _) => parse_mem(m)?,
        (None, Some(t)) => t.mem.clone(),
        (None, None) => Vec::new(),
    };
    let opts = RunOptions {
        budget: a.budget,
        ..RunOptions::default()
    };
    if !a.trace {
        let engine = engine_by_name(&a.engine).map_err(|e| Failure(e, 2))?;
        // Engines that judge bytecode themselves (the kernel) get it before bpfvm's loader.
        if let Some(result) = engine.run_unvalidated(&input.slots, &mut mem, &opts) {
            let r0 = result.map_err(|e| Failure(e.to_string(), 1))?;
            return report_r0(r0, input.test.as_ref());
        }
    }
    let prog = load(&input.slots).map_err(|e| Failure(e, 1))?;
    print_jit_dump(&prog, &a.engine, a.dump_ir, a.dump_asm)?;
    let result = if a.trace {
        if a.engine != "interp" {
            return Err(Failure(
                format!("--trace needs the interpreter, not `{}`", a.engine),
                2,
            ));
        }
        trace::run_traced(&prog, &mut mem, &opts).map_err(RunError::from)
    } else {
        let engine = engine_by_name(&a.engine).map_err(|e| Failure(e, 2))?;
        engine.run(&prog, &mut mem, &opts)
    };
    let r0 = result.map_err(|e| match e {
        RunError::Fault(f) => {
            let text = prog
                .program()
                .get(f.pc)
                .map(|i| insn_text(&i))
                .unwrap_or_default();
            Failure(format!("fault: {f}\n    at pc {}: {text}", f.pc), 1)
        }
        other => Failure(other.to_string(), 1),
    })?;
    report_r0(r0, input.test.as_ref())
}

/// `--dump-ir` / `--dump-asm`: what the JIT makes of each function of `prog` (blinded
/// when the engine is `jit-blinded`).
fn print_jit_dump(
    prog: &bpfvm_runtime::LoadedProgram,
    engine: &str,
    ir: bool,
    asm: bool,
) -> Result<(), Failure> {
    if !ir && !asm {
        return Ok(());
    }
    let jit = if engine == "jit-blinded" {
        bpfvm_jit::Jit::new().with_constant_blinding()
    } else {
        bpfvm_jit::Jit::new()
    };
    let dumps = jit.dump(prog).map_err(|e| Failure(e.to_string(), 1))?;
    for d in dumps {
        if ir {
            println!("; Cranelift IR of the BPF function at pc {}", d.entry);
            println!("{}", d.ir.trim_end());
        }
        if asm {
            println!(
                "; machine code ({}) of the BPF function at pc {}",
                std::env::consts::ARCH,
                d.entry
            );
            println!("{}", d.asm.trim_end());
        }
        println!();
    }
    Ok(())
}

/// Prints `r0` and, for a test file, whether it is the expected one.
fn report_r0(r0: u64, test: Option<&TestCase>) -> Result<(), Failure> {
    println!("r0 = {r0:#x} ({})", r0 as i64);
    if let Some(Expectation::Result(want)) = test.map(|t| &t.expect) {
        let verdict = if *want == r0 {
            "as expected"
        } else {
            "MISMATCH"
        };
        println!("expected r0 = {want:#x}: {verdict}");
        if *want != r0 {
            return Err(Failure(
                "result differs from the test's `-- result`".into(),
                1,
            ));
        }
    }
    Ok(())
}

fn default_suite() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests");
    match repo.canonicalize() {
        Ok(path) if path.is_dir() => path,
        _ => PathBuf::from("conformance-tests"),
    }
}

fn cmd_conformance(a: ConformanceArgs) -> Result<(), Failure> {
    let dirs = if a.dirs.is_empty() {
        vec![default_suite()]
    } else {
        a.dirs.clone()
    };
    let mut tests = Vec::new();
    for dir in &dirs {
        let suite = load_suite(dir).map_err(|e| Failure(format!("{}: {e}", dir.display()), 2))?;
        tests.extend(suite);
    }
    if tests.is_empty() {
        return Err(Failure(
            format!(
                "no .data tests found in {}",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            2,
        ));
    }
    let (engines, missing) = if a.engine.is_empty() {
        available_engines()
    } else {
        let mut engines = Vec::new();
        for name in &a.engine {
            engines.push(engine_by_name(name).map_err(|e| Failure(e, 2))?);
        }
        (engines, Vec::new())
    };
    for why in &missing {
        println!("note: {why}");
    }
    let filter = Filter {
        exclude_groups: a.exclude_groups.iter().copied().collect(),
        max_version: a.max_version,
        budget: Some(a.budget),
    };
    let bar = if !a.no_progress && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(tests.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let engine_refs: Vec<&dyn bpfvm_runtime::Engine> = engines.iter().map(|e| e.as_ref()).collect();
    let report = Report::run(&tests, &engine_refs, &filter, &mut |name| {
        if let Some(bar) = &bar {
            bar.set_message(name.to_string());
            bar.inc(1);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for line in report.failure_lines() {
        println!("{line}");
    }
    if a.verbose {
        for line in report.skip_lines().into_iter().chain(report.known_lines()) {
            println!("{line}");
        }
    }
    println!(
        "{} tests from {}, engines: {}\n",
        tests.len(),
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        report.engines.join(", ")
    );
    println!(
        "Each test counts in the most demanding conformance group and the newest ISA version its instructions use.\n"
    );
    print!("{}", report.tables());
    print_divergences(&report);
    let failures = report.failures();
    if failures > 0 {
        return Err(Failure(format!("{failures} failures"), 1));
    }
    Ok(())
}

/// The differential part of a conformance report: how often engines disagreed and which
/// listed divergences explained what.
fn print_divergences(report: &Report) {
    if report.engines.len() > 1 {
        let (explained, unexplained) = report.disagreement_counts();
        println!(
            "\nEngines disagree on {} tests: {explained} explained by known divergences, {unexplained} unexplained.",
            explained + unexplained
        );
    }
    let counts = report.divergence_counts();
    if counts.is_empty() {
        return;
    }
    println!("\nKnown divergences (bpfvm-conformance/src/divergence.rs; -v lists the tests):");
    for ((id, engine), n) in counts {
        let reason = DIVERGENCES
            .iter()
            .find(|d| d.id == id)
            .map_or("", |d| d.reason);
        let tests = if n == 1 { "test" } else { "tests" };
        println!("  {id} [{engine}], {n} {tests}: {reason}");
    }
}

/// The kernel's name of helper `id` (`bpf_map_lookup_elem`), as its verifier log prints it.
fn kernel_helper_name(id: i32) -> Option<&'static str> {
    // Built once, index for index with `HELPERS`.
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        bpfvm_abi::HELPERS
            .iter()
            .map(|h| format!("bpf_{}", h.name))
            .collect()
    });
    let proto = bpfvm_abi::helper_by_id(bpfvm_abi::HelperId(u32::try_from(id).ok()?))?;
    // `HELPERS` starts at id 1 and has no gaps (bpfvm-abi's tests check it).
    names.get(proto.id.0 as usize - 1).map(String::as_str)
}

/// A listing in `syntax`; kernel notation names helpers as the verifier log does.
fn listing(slots: &[RawInsn], syntax: Syntax) -> String {
    match syntax {
        Syntax::Kernel => bpfvm_isa::disasm::KernelPrinter {
            helper_name: Some(&kernel_helper_name),
        }
        .disassemble(slots),
        other => disassemble(slots, other),
    }
}

/// Text of one instruction for traces and errors.
fn insn_text(insn: &bpfvm_isa::Insn) -> String {
    format_insn(insn, Syntax::Llvm)
}
