//! The bpf_conformance plugin protocol.
//!
//! The public runner starts `PLUGIN MEM-HEX [OPTIONS]`, writes the program
//! as hex bytes and a newline to stdin, and reads stdout: on success (exit
//! 0) `r0` in hex; on failure (non-zero exit) a one-line message, which it
//! compares with a test's `-- error` text. The memory argument is always
//! present, as an empty string when a test has no memory; options start
//! with `--`.

use std::io::{Read, Write};

use bpfvm_runtime::RunOptions;

use crate::data::parse_hex_bytes;
use crate::engines::engine_by_name;
use crate::run::execute;

/// Parsed plugin arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginArgs {
    /// The program's memory.
    pub mem: Vec<u8>,
    /// Engine name (default `interp`).
    pub engine: String,
    /// stdin holds an ELF object rather than raw bytecode.
    pub elf: bool,
}

/// Usage text of the plugin, for `--help` and errors.
pub const PLUGIN_USAGE: &str =
    "usage: bpfvm-plugin [MEM-HEX] [--engine interp|jit|kernel] [--elf]  (program as hex on stdin)";

/// Parses plugin arguments (without the program name). Empty arguments are
/// ignored: the public runner passes an empty string for "no memory" and
/// for "no options".
pub fn parse_args(args: &[String]) -> Result<PluginArgs, String> {
    let mut out = PluginArgs {
        mem: Vec::new(),
        engine: "interp".into(),
        elf: false,
    };
    let mut mem_seen = false;
    let mut it = args.iter().filter(|a| !a.trim().is_empty());
    while let Some(arg) = it.next() {
        // The public runner passes all options as one argument; split it.
        if arg.starts_with("--") {
            let mut words = arg.split_whitespace();
            while let Some(word) = words.next() {
                match word.split_once('=') {
                    Some(("--engine", v)) => out.engine = v.to_string(),
                    _ if word == "--engine" => {
                        out.engine = match words.next() {
                            Some(v) => v.to_string(),
                            None => it.next().cloned().ok_or("--engine needs a value")?,
                        }
                    }
                    _ if word == "--elf" => out.elf = true,
                    _ => return Err(format!("unknown option `{word}`; {PLUGIN_USAGE}")),
                }
            }
        } else if mem_seen {
            return Err(format!(
                "unexpected argument `{arg}`: memory was already given; {PLUGIN_USAGE}"
            ));
        } else {
            mem_seen = true;
            out.mem = parse_hex_bytes(arg)
                .map_err(|t| format!("memory argument: `{t}` is not a hex byte"))?;
        }
    }
    Ok(out)
}

/// Runs the plugin protocol; returns the process exit code.
pub fn plugin_main(args: &[String], stdin: &mut dyn Read, stdout: &mut dyn Write) -> i32 {
    let (code, line) = match serve(args, stdin) {
        Ok(r0) => (0, format!("{r0:x}")),
        Err(message) => (1, message.replace(['\n', '\r'], " ")),
    };
    // A closed stdout leaves nothing to report to.
    let _ = writeln!(stdout, "{line}");
    code
}

fn serve(args: &[String], stdin: &mut dyn Read) -> Result<u64, String> {
    let args = parse_args(args)?;
    let engine = engine_by_name(&args.engine)?;
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the program from stdin: {e}"))?;
    if args.elf {
        return Err(
            "--elf: loading ELF objects is not available in this build of bpfvm yet".into(),
        );
    }
    let bytes =
        parse_hex_bytes(&text).map_err(|t| format!("program on stdin: `{t}` is not a hex byte"))?;
    let slots = bpfvm_isa::slots_from_bytes(&bytes).map_err(|e| format!("load error: {e}"))?;
    let mut mem = args.mem;
    execute(engine.as_ref(), &slots, &mut mem, &RunOptions::default()).map_err(|e| e.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn public_runner_argument_shapes() {
        let p = parse_args(&args(&["", ""])).expect("empty mem, empty options");
        assert_eq!(
            (p.mem.len(), p.engine.as_str(), p.elf),
            (0, "interp", false)
        );
        let p =
            parse_args(&args(&["00  01  ff  ", "--engine jit"])).expect("mem + one options word");
        assert_eq!((p.mem, p.engine.as_str()), (vec![0, 1, 0xff], "jit"));
        let p = parse_args(&args(&["--engine", "kernel", "--elf"])).expect("split options");
        assert_eq!((p.engine.as_str(), p.elf), ("kernel", true));
        assert!(parse_args(&args(&["--bogus"])).is_err());
        assert!(parse_args(&args(&["zz"])).is_err());
        assert!(parse_args(&args(&["00", "01"])).is_err());
    }

    #[test]
    fn runs_and_reports_in_hex() {
        // mov r0, r2 (memory length) ; exit
        let prog = "bf  20  00  00  00  00  00  00  95  00  00  00  00  00  00  00  \n";
        let mut out = Vec::new();
        let code = plugin_main(&args(&["00  01  02  "]), &mut prog.as_bytes(), &mut out);
        assert_eq!((code, String::from_utf8_lossy(&out).as_ref()), (0, "3\n"));
        let mut out = Vec::new();
        let code = plugin_main(&args(&[""]), &mut "95 00 00".as_bytes(), &mut out);
        assert_eq!(code, 1);
        assert!(String::from_utf8_lossy(&out).contains("multiple of 8"));
    }
}
