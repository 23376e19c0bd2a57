//! `bpfvm inspect` and `bpfvm disasm` of ELF objects.

use std::fmt::Write as _;
use std::path::Path;

use bpfvm_isa::decode_one;
use bpfvm_isa::disasm::{Syntax, format_insn};
use bpfvm_object::{LoadOptions, Object, ProgramSpec, load};

use crate::Failure;

/// Whether `bytes` are an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Loads an object file for inspection: CO-RE keeps the compiled values, externs nothing
/// resolves stay 0 and are shown as unresolved, `LINUX_KERNEL_VERSION` is this host's.
pub fn load_object(path: &Path, bytes: &[u8]) -> Result<Object, Failure> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // LINUX_KERNEL_VERSION: this host's kernel, or 0 where there is none.
    #[cfg(target_os = "linux")]
    let kernel_version = bpfvm_kernel::running_kernel_version().or(Some(0));
    #[cfg(not(target_os = "linux"))]
    let kernel_version = Some(0);
    let opts = LoadOptions {
        name,
        kernel_version,
        allow_unresolved_externs: true,
        ..LoadOptions::default()
    };
    load(bytes, &opts).map_err(|e| Failure(format!("{}: {e}", path.display()), 1))
}

/// The `bpfvm inspect` report.
pub fn inspect(obj: &Object, path: &Path, btf_types: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "object {} (license \"{}\"{})",
        path.display(),
        obj.license,
        obj.kern_version
            .map(|v| format!(", version {v:#x}"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "\nsections:");
    for s in &obj.sections {
        let rel = if s.relocations > 0 {
            format!(", {} relocations", s.relocations)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {:<24} {:<12} {:>6} bytes{rel}",
            s.name, s.role, s.size
        );
    }
    let _ = writeln!(out, "\nprograms:");
    for p in &obj.programs {
        let target = p
            .kind
            .attach_target
            .as_deref()
            .map(|t| format!(" -> {t}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<20} section {:<24} type {}{target}, {} instructions",
            p.name,
            p.section,
            p.kind.type_name(),
            p.insns.len()
        );
        if p.functions.len() > 1 {
            let funcs: Vec<String> = p
                .functions
                .iter()
                .map(|(pc, n)| format!("{n}@{pc}"))
                .collect();
            let _ = writeln!(out, "  {:<20} functions {}", "", funcs.join(" "));
        }
        if !p.core_relocations.is_empty() {
            let _ = writeln!(
                out,
                "  {:<20} {} CO-RE relocations applied",
                "",
                p.core_relocations.len()
            );
        }
    }
    let _ = writeln!(out, "\nmaps (lddw src=5/6 index):");
    for (i, m) in obj.maps.iter().enumerate() {
        let data = m
            .initial_data
            .as_ref()
            .map(|d| format!(", {} bytes of initial data", d.len()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {i:>2} {m}  [{}{data}{}]",
            m.section,
            if m.frozen { ", frozen" } else { "" }
        );
    }
    if !obj.externs.is_empty() {
        let _ = writeln!(out, "\nexterns:");
        for e in &obj.externs {
            let _ = writeln!(
                out,
                "  {:<28} {:?}{}{}",
                e.name,
                e.kind,
                if e.weak { " weak" } else { "" },
                if e.resolved { "" } else { " (unresolved)" }
            );
        }
    }
    let _ = writeln!(out, "\nrelocations:");
    for r in &obj.relocations {
        let _ = writeln!(
            out,
            "  {:<24} {:>#8x}  {:<16} {}",
            r.section, r.offset, r.r_type, r.symbol
        );
    }
    if let Some(btf) = &obj.btf {
        let _ = writeln!(out, "\nBTF: {} types", btf.len().saturating_sub(1));
        if btf_types {
            for (id, t) in btf.types() {
                if id.0 == 0 {
                    continue;
                }
                let _ = writeln!(out, "  [{}] {:?} {}", id.0, t.kind(), btf.format_c(id));
            }
        }
    }
    out
}

/// The text of `line` of `file`, looked up next to the object (DWARF names files
/// relative to the compilation directory and carries no source text).
fn source_line(dir: &Path, file: &str, line: u32) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    text.lines()
        .nth((line as usize).checked_sub(1)?)
        .map(str::to_string)
}

/// A program's listing: function labels, and with `source` the source line before the
/// instructions it produced (as `llvm-objdump -S` prints it). `dir` is the object's
/// directory, for source files DWARF names without their text.
pub fn listing(obj: &Object, p: &ProgramSpec, syntax: Syntax, source: bool, dir: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} (section {}, {} program):",
        p.name,
        p.section,
        p.kind.type_name()
    );
    let mut last_line = None;
    let mut pc = 0;
    while pc < p.insns.len() {
        if let Some((_, name)) = p.functions.iter().find(|(start, _)| *start == pc) {
            let _ = writeln!(out, "\n<{name}>:");
        }
        if source
            && let Some(l) = p.line_info.iter().find(|l| l.pc == pc)
            && last_line != Some((l.file.clone(), l.line))
        {
            let text = if l.text.is_empty() {
                source_line(dir, &l.file, l.line)
                    .unwrap_or_else(|| format!("{}:{}", l.file, l.line))
            } else {
                l.text.clone()
            };
            let _ = writeln!(out, "; {}", text.trim_end());
            last_line = Some((l.file.clone(), l.line));
        }
        match decode_one(&p.insns[pc..]) {
            Ok(insn) => {
                let text = format_insn(&insn, syntax);
                match annotation(obj, p, pc) {
                    Some(note) => {
                        let _ = writeln!(out, "{pc:>6}: {text:<36} ; {note}");
                    }
                    None => {
                        let _ = writeln!(out, "{pc:>6}: {text}");
                    }
                }
                pc += insn.slots();
            }
            Err(e) => {
                let _ = writeln!(out, "{pc:>6}: <invalid: {e}>");
                pc += 1;
            }
        }
    }
    out
}

/// What a relocated instruction refers to: the callee of a local call or callback, the
/// map of a map reference, the map and offset of a global-data reference.
fn annotation(obj: &Object, p: &ProgramSpec, pc: usize) -> Option<String> {
    let insn = p.insns[pc];
    let function_at = |target: usize| {
        p.functions
            .iter()
            .find(|(start, _)| *start == target)
            .map(|(_, n)| format!("<{n}>"))
    };
    let target = || usize::try_from(pc as i64 + 1 + i64::from(insn.imm)).ok();
    match (insn.opcode, insn.src) {
        (0x85, 1) => target().and_then(function_at),
        (0x18, bpfvm_object::PSEUDO_FUNC) => target().and_then(function_at),
        (0x18, bpfvm_object::PSEUDO_MAP_IDX) => obj
            .maps
            .get(insn.imm as usize)
            .map(|m| format!("map {}", m.name)),
        (0x18, bpfvm_object::PSEUDO_MAP_IDX_VALUE) => {
            let off = p.insns.get(pc + 1).map_or(0, |s| s.imm);
            obj.maps
                .get(insn.imm as usize)
                .map(|m| format!("{} + {off}", m.name))
        }
        _ => None,
    }
}
