//! Assembling programs as libbpf does: each entry function with every function it calls
//! (or takes the address of) appended after it, calls and `lddw`s relocated.

use std::collections::{HashMap, VecDeque};

use bpfvm_isa::RawInsn;

use crate::ObjectError;
use crate::elf::{Elf, R_BPF_64_32, R_BPF_64_64, Reloc, Section};

/// `lddw` source: map by index into the fd array (`BPF_PSEUDO_MAP_IDX`).
pub const PSEUDO_MAP_IDX: u8 = 5;
/// `lddw` source: map value by index into the fd array (`BPF_PSEUDO_MAP_IDX_VALUE`).
pub const PSEUDO_MAP_IDX_VALUE: u8 = 6;
/// `lddw` source: address of a function (`BPF_PSEUDO_FUNC`).
pub const PSEUDO_FUNC: u8 = 4;
/// `lddw` source: a kernel variable by BTF id (`BPF_PSEUDO_BTF_ID`).
pub const PSEUDO_BTF_ID: u8 = 3;
/// `call` source: a kernel function by BTF id (`BPF_PSEUDO_KFUNC_CALL`).
pub const PSEUDO_KFUNC_CALL: u8 = 2;

/// One function of the object: a `STT_FUNC` symbol in an executable section.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub name: String,
    pub section: usize,
    /// First instruction, in the section.
    pub start: usize,
    /// Instructions.
    pub len: usize,
    pub global: bool,
}

/// What a relocated `lddw` or `call` refers to, once symbols are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A map definition: (map index).
    Map(usize),
    /// A byte in a global-data map: (map index, offset).
    Data(usize, u64),
    /// An undefined symbol (extern): its symbol index.
    Extern(usize),
}

/// Resolves relocation targets that are not code: provided by the loader.
pub(crate) trait Resolve {
    fn target(&self, elf: &Elf, rel: &Reloc, insn: &RawInsn) -> Result<Target, ObjectError>;
}

/// A reference left for the loader to fill after linking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingExtern {
    pub pc: usize,
    pub symbol: usize,
    pub is_call: bool,
    /// Byte offset of the reference in its section (for errors).
    pub offset: u64,
}

/// A linked program.
#[derive(Debug, Clone)]
pub(crate) struct Linked {
    pub insns: Vec<RawInsn>,
    /// Where each placed function starts: (pc, function index).
    pub placed: Vec<(usize, usize)>,
    pub externs: Vec<PendingExtern>,
}

/// The object's code: instructions per executable section, functions, relocations.
pub(crate) struct Code<'a> {
    pub elf: &'a Elf,
    pub insns: HashMap<usize, Vec<RawInsn>>,
    pub functions: Vec<Function>,
    /// (section, instruction) -> relocation.
    pub relocs: HashMap<(usize, usize), Reloc>,
}

fn insns_of(section: &Section) -> Result<Vec<RawInsn>, ObjectError> {
    if !section.data.len().is_multiple_of(8) {
        return Err(ObjectError::Program {
            program: section.name.clone(),
            section: section.name.clone(),
            problem: format!(
                "{} bytes of code is not a whole number of 8-byte instructions",
                section.data.len()
            ),
        });
    }
    Ok(section
        .data
        .chunks_exact(8)
        .map(|c| RawInsn::from_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

impl<'a> Code<'a> {
    pub fn new(elf: &'a Elf) -> Result<Code<'a>, ObjectError> {
        let mut insns = HashMap::new();
        for s in elf.sections.iter().filter(|s| s.is_exec()) {
            insns.insert(s.index, insns_of(s)?);
        }
        let mut functions = Vec::new();
        for sym in &elf.symbols {
            let Some(sec) = sym.section else { continue };
            if !sym.is_func() || !insns.contains_key(&sec) {
                continue;
            }
            let n = insns[&sec].len();
            let bad = |problem: String| ObjectError::Program {
                program: sym.name.clone(),
                section: elf.sections[sec].name.clone(),
                problem,
            };
            if !sym.value.is_multiple_of(8) || !sym.size.is_multiple_of(8) {
                return Err(bad(format!(
                    "function at byte {} of size {} is not instruction-aligned",
                    sym.value, sym.size
                )));
            }
            let start = (sym.value / 8) as usize;
            let len = (sym.size / 8) as usize;
            if start.checked_add(len).is_none_or(|end| end > n) || len == 0 {
                return Err(bad(format!(
                    "function [{start}, +{len}) lies outside its section of {n} instructions"
                )));
            }
            functions.push(Function {
                name: sym.name.clone(),
                section: sec,
                start,
                len,
                global: sym.is_global(),
            });
        }
        functions.sort_by_key(|f| (f.section, f.start));
        let mut relocs = HashMap::new();
        for (sec, rels) in elf.relocs.iter().enumerate() {
            let Some(code) = insns.get(&sec) else {
                continue;
            };
            for rel in rels {
                let section = elf.sections[sec].name.clone();
                let problem = |p: String| ObjectError::Relocation {
                    section: section.clone(),
                    offset: rel.offset,
                    problem: p,
                };
                if !rel.offset.is_multiple_of(8) {
                    return Err(problem(
                        "the offset is not at an instruction boundary".into(),
                    ));
                }
                let pc = (rel.offset / 8) as usize;
                if pc >= code.len() {
                    return Err(problem(format!(
                        "the offset lies outside the section ({} instructions)",
                        code.len()
                    )));
                }
                if relocs.insert((sec, pc), *rel).is_some() {
                    return Err(problem(
                        "a second relocation of the same instruction".into(),
                    ));
                }
            }
        }
        Ok(Code {
            elf,
            insns,
            functions,
            relocs,
        })
    }

    /// The function containing instruction `pc` of section `sec`.
    fn function_at(&self, sec: usize, pc: usize) -> Option<usize> {
        self.functions
            .iter()
            .position(|f| f.section == sec && f.start <= pc && pc < f.start + f.len)
    }

    /// Entry programs: global functions outside `.text`.
    pub fn entries(&self) -> Vec<usize> {
        (0..self.functions.len())
            .filter(|&i| {
                let f = &self.functions[i];
                f.global && self.elf.sections[f.section].name != ".text"
            })
            .collect()
    }

    /// Links the program whose entry is function `entry`.
    pub fn link(
        &self,
        entry: usize,
        resolve: &dyn Resolve,
        max_insns: u64,
    ) -> Result<Linked, ObjectError> {
        let mut b = Builder {
            out: Vec::new(),
            placed: HashMap::new(),
            order: Vec::new(),
            queue: VecDeque::new(),
            max_insns,
        };
        let mut externs = Vec::new();
        b.place(self, entry)?;
        while let Some(f) = b.queue.pop_front() {
            let func = self.functions[f].clone();
            let base = b.placed[&f];
            let sec_name = &self.elf.sections[func.section].name;
            let err = |pc: usize, problem: String| ObjectError::Program {
                program: func.name.clone(),
                section: sec_name.clone(),
                problem: format!("instruction {pc}: {problem}"),
            };
            let mut i = 0;
            while i < func.len {
                let spc = func.start + i;
                let ppc = base + i;
                let insn = b.out[ppc];
                let rel = self.relocs.get(&(func.section, spc));
                match insn.opcode {
                    0x85 if insn.src == 1 || rel.is_some() => {
                        let target = match rel {
                            Some(rel) => {
                                let sym = &self.elf.symbols[rel.symbol];
                                if rel.r_type != R_BPF_64_32 {
                                    return Err(relocation_error(
                                        self.elf,
                                        func.section,
                                        rel,
                                        format!(
                                            "a call needs R_BPF_64_32, not type {}",
                                            rel.r_type
                                        ),
                                    ));
                                }
                                match sym.section {
                                    Some(s) if self.insns.contains_key(&s) => {
                                        let t = (sym.value / 8) as i64 + i64::from(insn.imm) + 1;
                                        (s, t)
                                    }
                                    None => {
                                        // A call to an undefined function: a kfunc (`__ksym`).
                                        externs.push(PendingExtern {
                                            pc: ppc,
                                            symbol: rel.symbol,
                                            is_call: true,
                                            offset: rel.offset,
                                        });
                                        i += 1;
                                        continue;
                                    }
                                    Some(s) => {
                                        return Err(relocation_error(
                                            self.elf,
                                            func.section,
                                            rel,
                                            format!(
                                                "call target `{}` is in non-executable section `{}`",
                                                sym.name, self.elf.sections[s].name
                                            ),
                                        ));
                                    }
                                }
                            }
                            None => (func.section, spc as i64 + i64::from(insn.imm) + 1),
                        };
                        let (tsec, tpc) = target;
                        let tpc = usize::try_from(tpc).map_err(|_| {
                            err(
                                spc,
                                format!("call target {tpc} is before the section start"),
                            )
                        })?;
                        let g = self.function_at(tsec, tpc).ok_or_else(|| {
                            err(
                                spc,
                                format!(
                                    "call target {tpc} of section `{}` is not inside a function",
                                    self.elf.sections[tsec].name
                                ),
                            )
                        })?;
                        let gbase = b.place(self, g)?;
                        let dest = gbase + (tpc - self.functions[g].start);
                        b.out[ppc].src = 1;
                        b.out[ppc].imm = (dest as i64 - (ppc as i64 + 1)) as i32;
                        i += 1;
                    }
                    0x18 => {
                        if i + 1 >= func.len {
                            return Err(err(
                                spc,
                                "lddw without its second half at the end of the function".into(),
                            ));
                        }
                        if let Some(rel) = self.relocs.get(&(func.section, spc + 1)) {
                            return Err(relocation_error(
                                self.elf,
                                func.section,
                                rel,
                                "the relocation points at the second half of a lddw".into(),
                            ));
                        }
                        if let Some(rel) = rel {
                            if rel.r_type != R_BPF_64_64 {
                                return Err(relocation_error(
                                    self.elf,
                                    func.section,
                                    rel,
                                    format!("a lddw needs R_BPF_64_64, not type {}", rel.r_type),
                                ));
                            }
                            let sym = &self.elf.symbols[rel.symbol];
                            match sym.section {
                                Some(s) if self.insns.contains_key(&s) => {
                                    // The address of a function (a callback).
                                    // Wrapping: a hostile symbol value must not overflow;
                                    // the checks below refuse what it yields.
                                    let byte = (sym.value as i64).wrapping_add(i64::from(insn.imm));
                                    if byte % 8 != 0 || byte < 0 {
                                        return Err(relocation_error(
                                            self.elf,
                                            func.section,
                                            rel,
                                            format!(
                                                "function address {byte} is not an instruction"
                                            ),
                                        ));
                                    }
                                    let tpc = (byte / 8) as usize;
                                    let g = self.function_at(s, tpc).ok_or_else(|| {
                                        err(
                                            spc,
                                            format!(
                                                "callback target `{}` is not a function",
                                                sym.name
                                            ),
                                        )
                                    })?;
                                    let gbase = b.place(self, g)?;
                                    let dest = gbase + (tpc - self.functions[g].start);
                                    b.out[ppc].src = PSEUDO_FUNC;
                                    b.out[ppc].imm = (dest as i64 - (ppc as i64 + 1)) as i32;
                                    b.out[ppc + 1].imm = 0;
                                }
                                _ => match resolve.target(self.elf, rel, &insn)? {
                                    Target::Map(idx) => {
                                        b.out[ppc].src = PSEUDO_MAP_IDX;
                                        b.out[ppc].imm = idx as i32;
                                        b.out[ppc + 1].imm = 0;
                                    }
                                    Target::Data(idx, off) => {
                                        b.out[ppc].src = PSEUDO_MAP_IDX_VALUE;
                                        b.out[ppc].imm = idx as i32;
                                        b.out[ppc + 1].imm = off as i32;
                                    }
                                    Target::Extern(symbol) => {
                                        externs.push(PendingExtern {
                                            pc: ppc,
                                            symbol,
                                            is_call: false,
                                            offset: rel.offset,
                                        });
                                    }
                                },
                            }
                        }
                        i += 2;
                    }
                    _ => {
                        if let Some(rel) = rel {
                            return Err(relocation_error(
                                self.elf,
                                func.section,
                                rel,
                                format!(
                                    "it applies to opcode {:#04x}, which is neither lddw nor call",
                                    insn.opcode
                                ),
                            ));
                        }
                        i += 1;
                    }
                }
            }
        }
        Ok(Linked {
            insns: b.out,
            placed: b.order,
            externs,
        })
    }
}

/// The program being assembled.
struct Builder {
    out: Vec<RawInsn>,
    /// Function -> its first pc in `out`.
    placed: HashMap<usize, usize>,
    order: Vec<(usize, usize)>,
    /// Placed functions whose instructions still need relocating.
    queue: VecDeque<usize>,
    max_insns: u64,
}

impl Builder {
    /// Appends function `f` unless it is placed already; returns its first pc.
    fn place(&mut self, code: &Code<'_>, f: usize) -> Result<usize, ObjectError> {
        if let Some(&base) = self.placed.get(&f) {
            return Ok(base);
        }
        let func = &code.functions[f];
        let base = self.out.len();
        let end = (base + func.len) as u64;
        if end > self.max_insns {
            return Err(ObjectError::Limit {
                what: "instructions of a linked program",
                value: end,
                limit: self.max_insns,
            });
        }
        self.out
            .extend_from_slice(&code.insns[&func.section][func.start..func.start + func.len]);
        self.placed.insert(f, base);
        self.order.push((base, f));
        self.queue.push_back(f);
        Ok(base)
    }
}

pub(crate) fn relocation_error(
    elf: &Elf,
    section: usize,
    rel: &Reloc,
    problem: String,
) -> ObjectError {
    ObjectError::Relocation {
        section: elf.sections[section].name.clone(),
        offset: rel.offset,
        problem,
    }
}
