//! The loading pipeline: ELF -> sections, maps, programs -> externs, CO-RE, line info.

use std::collections::BTreeMap;

use bpfvm_btf::{Btf, BtfExt, Kind, TypeId, TypeKind};
use bpfvm_isa::RawInsn;

use crate::elf::{Elf, Reloc, Section};
use crate::link::{
    Code, Linked, PSEUDO_BTF_ID, PSEUDO_KFUNC_CALL, PSEUDO_MAP_IDX_VALUE, Resolve, Target,
};
use crate::maps::{self, MapOrigin, MapSpec, SlotValue};
use crate::sections::{ProgramKind, classify};
use crate::{Limits, ObjectError};

/// A value the host supplies for a `__kconfig` extern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KconfigValue {
    /// `CONFIG_X=y` / `n` (bool externs) or tristate `y`/`n`/`m`.
    Tristate(char),
    /// A number.
    Int(i64),
    /// A string (`char[N]` externs).
    Str(String),
}

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions<'a> {
    /// The object's name: prefixes the internal maps' names (libbpf takes the file stem).
    pub name: String,
    /// Bounds on what the object may contain.
    pub limits: Limits,
    /// The BTF CO-RE relocations, typed `__ksym`s and kfuncs resolve against (the kernel's
    /// `/sys/kernel/btf/vmlinux` for the kernel engine). `None`: bpfvm's own context types
    /// ([`crate::context_btf`]), the target for bpfvm's engines; kernel types are absent
    /// there, so CO-RE reads of them are poisoned as libbpf poisons a missing field, and
    /// typed `__ksym`s and kfuncs stay unresolved.
    pub target_btf: Option<&'a Btf>,
    /// Values of `CONFIG_*` `__kconfig` externs.
    pub kconfig: BTreeMap<String, KconfigValue>,
    /// `LINUX_KERNEL_VERSION` (`KERNEL_VERSION(a, b, c)` = `a << 16 | b << 8 | c`).
    pub kernel_version: Option<u32>,
    /// Addresses of typeless `__ksym` externs (what `/proc/kallsyms` says).
    pub ksym_addresses: BTreeMap<String, u64>,
    /// Leave externs nothing resolves as 0 (and [`ExternSpec::resolved`] false) instead of
    /// failing: for inspecting and disassembling, not for running.
    pub allow_unresolved_externs: bool,
    /// Kfuncs the host provides, by name, with the id a `call` (src 2) gets: consulted
    /// when the target BTF has no function of that name (bpfvm's engines call the host
    /// function registered under the id).
    pub host_kfuncs: BTreeMap<String, u32>,
}

/// A source line of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineEntry {
    /// Instruction index in the linked program.
    pub pc: usize,
    /// Offset of `file` in the object's BTF strings (for the kernel's line info).
    pub file_name_off: u32,
    /// Offset of `text` in the object's BTF strings.
    pub line_off: u32,
    /// Source file.
    pub file: String,
    /// Line number (1-based).
    pub line: u32,
    /// Column (1-based; 0 when unknown).
    pub col: u32,
    /// The source line's text, as compiled into the object.
    pub text: String,
}

/// A linked, relocated program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// The entry function's name.
    pub name: String,
    /// Its section.
    pub section: String,
    /// What the section name says (program type, attach type, target).
    pub kind: ProgramKind,
    /// Entry function first, then every function it reaches.
    pub insns: Vec<RawInsn>,
    /// Where each function starts: (pc, name).
    pub functions: Vec<(usize, String)>,
    /// BTF func info for the kernel: (pc, FUNC type id), one per function.
    pub func_info: Vec<(usize, TypeId)>,
    /// Source lines, sorted by pc.
    pub line_info: Vec<LineEntry>,
    /// The pcs of the instructions CO-RE relocations patched.
    pub core_relocations: Vec<usize>,
}

impl ProgramSpec {
    /// The source line for the instruction at `pc` (the last entry at or before it).
    pub fn line_at(&self, pc: usize) -> Option<&LineEntry> {
        let i = self.line_info.partition_point(|l| l.pc <= pc);
        i.checked_sub(1).map(|i| &self.line_info[i])
    }
}

/// What kind of extern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternKind {
    /// `__kconfig`: a value in the `.kconfig` map at this offset.
    Kconfig {
        /// Byte offset in the `.kconfig` map's value.
        offset: u32,
        /// Size in bytes.
        size: u32,
    },
    /// `__ksym` variable or function.
    Ksym,
}

/// An `extern` of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternSpec {
    /// Its name.
    pub name: String,
    /// `__weak`: may stay unresolved (then 0).
    pub weak: bool,
    /// Kind.
    pub kind: ExternKind,
    /// Whether it was resolved (weak externs may not be).
    pub resolved: bool,
}

/// One section, for `bpfvm inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionSummary {
    /// Name.
    pub name: String,
    /// What bpfvm makes of it (`program`, `maps`, `data`, `btf`, …).
    pub role: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// Relocations applying to it.
    pub relocations: usize,
}

/// One relocation, for `bpfvm inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelocationSummary {
    /// Section it patches.
    pub section: String,
    /// Byte offset.
    pub offset: u64,
    /// Symbol.
    pub symbol: String,
    /// ELF relocation type name.
    pub r_type: &'static str,
}

/// A loaded object.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its name (prefix of internal maps).
    pub name: String,
    /// The `license` section (`""` when absent).
    pub license: String,
    /// The `version` section, if any.
    pub kern_version: Option<u32>,
    /// The programs.
    pub programs: Vec<ProgramSpec>,
    /// The maps, in the order `lddw src=5/6` immediates index them.
    pub maps: Vec<MapSpec>,
    /// The object's BTF, with DATASEC sizes and variable offsets filled in as the kernel
    /// requires (libbpf's fixups).
    pub btf: Option<Btf>,
    /// `.BTF.ext`.
    pub btf_ext: Option<BtfExt>,
    /// `extern`s.
    pub externs: Vec<ExternSpec>,
    /// Every section.
    pub sections: Vec<SectionSummary>,
    /// Every relocation of code and map sections.
    pub relocations: Vec<RelocationSummary>,
}

impl Object {
    /// The program named `name`.
    pub fn program(&self, name: &str) -> Option<&ProgramSpec> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The map named `name`.
    pub fn map(&self, name: &str) -> Option<&MapSpec> {
        self.maps.iter().find(|m| m.name == name)
    }
}

fn r_type_name(t: u32) -> &'static str {
    match t {
        0 => "R_BPF_NONE",
        1 => "R_BPF_64_64",
        2 => "R_BPF_64_ABS64",
        3 => "R_BPF_64_ABS32",
        4 => "R_BPF_64_NODYLD32",
        10 => "R_BPF_64_32",
        _ => "unknown",
    }
}

/// Resolves the symbols `lddw`s refer to: maps, data, externs.
struct Symbols<'a> {
    maps: &'a [MapSpec],
    /// Section index -> data map index.
    data: &'a BTreeMap<usize, usize>,
    map_sections: &'a [usize],
}

impl Resolve for Symbols<'_> {
    fn target(&self, elf: &Elf, rel: &Reloc, insn: &RawInsn) -> Result<Target, ObjectError> {
        let sym = &elf.symbols[rel.symbol];
        let Some(sec) = sym.section else {
            return Ok(Target::Extern(rel.symbol));
        };
        if self.map_sections.contains(&sec) {
            let sec_name = &elf.sections[sec].name;
            return self
                .maps
                .iter()
                .position(|m| m.section == *sec_name && m.offset == sym.value)
                .map(Target::Map)
                .ok_or_else(|| ObjectError::Relocation {
                    section: sec_name.clone(),
                    offset: rel.offset,
                    problem: format!("`{}` is not the start of a map definition", sym.name),
                });
        }
        if let Some(&idx) = self.data.get(&sec) {
            // Section symbols (string literals) carry the offset in the instruction.
            let off = (sym.value as i64).wrapping_add(i64::from(insn.imm));
            let size = elf.sections[sec].size as i64;
            if off < 0 || off > size {
                return Err(ObjectError::Relocation {
                    section: elf.sections[sec].name.clone(),
                    offset: rel.offset,
                    problem: format!(
                        "offset {off} is outside `{}` ({size} bytes)",
                        elf.sections[sec].name
                    ),
                });
            }
            return Ok(Target::Data(idx, off as u64));
        }
        Err(ObjectError::Relocation {
            section: elf.sections[sec].name.clone(),
            offset: rel.offset,
            problem: format!(
                "`{}` is in section `{}`, which is neither maps nor data",
                sym.name, elf.sections[sec].name
            ),
        })
    }
}

fn btf_error(e: impl std::fmt::Display) -> ObjectError {
    ObjectError::Btf(e.to_string())
}

/// Loads an object.
pub fn load(data: &[u8], opts: &LoadOptions<'_>) -> Result<Object, ObjectError> {
    let limits = &opts.limits;
    let elf = Elf::parse(data, limits)?;
    let name = if opts.name.is_empty() {
        "obj".to_string()
    } else {
        opts.name.clone()
    };

    let mut btf = match elf.section_by_name(".BTF") {
        Some(s) => {
            limits.check("BTF size", s.data.len() as u64, limits.max_btf_bytes)?;
            Some(Btf::parse(&s.data).map_err(btf_error)?)
        }
        None => None,
    };
    let btf_ext = match (elf.section_by_name(".BTF.ext"), &btf) {
        (Some(s), Some(b)) => {
            limits.check("BTF.ext size", s.data.len() as u64, limits.max_btf_bytes)?;
            Some(BtfExt::parse(&s.data, b).map_err(btf_error)?)
        }
        _ => None,
    };
    if let Some(b) = btf.as_mut() {
        fixup_datasecs(b, &elf);
    }

    let license = elf
        .section_by_name("license")
        .map(|s| {
            let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
            String::from_utf8_lossy(&s.data[..end]).into_owned()
        })
        .unwrap_or_default();
    let kern_version = elf
        .section_by_name("version")
        .and_then(|s| s.data.get(..4))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));

    // Maps: definitions first, then one per data section, then .kconfig.
    let mut maps = Vec::new();
    let mut map_sections = Vec::new();
    for s in &elf.sections {
        match s.name.as_str() {
            ".maps" => {
                let b = btf.as_ref().ok_or_else(|| ObjectError::Map {
                    map: ".maps".into(),
                    problem: "BTF-defined maps need the object's .BTF (compile with -g)".into(),
                })?;
                maps.extend(maps::btf_maps(&elf, s, b, limits)?);
                map_sections.push(s.index);
            }
            "maps" => {
                maps.extend(maps::legacy_maps(&elf, s, limits)?);
                map_sections.push(s.index);
            }
            _ => {}
        }
    }
    let mut data_maps = BTreeMap::new();
    for s in &elf.sections {
        if let Some(kind) = maps::data_kind(s)
            && (s.sh_type == object::elf::SHT_PROGBITS || s.sh_type == object::elf::SHT_NOBITS)
        {
            data_maps.insert(s.index, maps.len());
            maps.push(maps::data_map(&name, s, btf.as_ref(), kind));
        }
    }
    let (kconfig_map, mut externs) = kconfig_layout(btf.as_ref(), &elf, &name, &mut maps, opts)?;
    limits.check("number of maps", maps.len() as u64, limits.max_maps)?;

    let code = Code::new(&elf)?;
    let entries = code.entries();
    if entries.is_empty() {
        return Err(ObjectError::NoPrograms);
    }
    limits.check(
        "number of programs",
        entries.len() as u64,
        limits.max_programs,
    )?;
    let resolver = Symbols {
        maps: &maps,
        data: &data_maps,
        map_sections: &map_sections,
    };
    let dwarf_rows = if btf_ext.as_ref().is_some_and(|e| !e.line_info.is_empty()) {
        Vec::new()
    } else {
        crate::dwarf::line_rows(&elf)
    };
    let mut programs = Vec::new();
    for entry in entries {
        let func = &code.functions[entry];
        let section = elf.sections[func.section].name.clone();
        let mut linked = code.link(entry, &resolver, limits.max_program_insns)?;
        resolve_externs(
            &mut linked,
            &elf,
            btf.as_ref(),
            opts,
            kconfig_map,
            &mut externs,
            &func.name,
            &section,
        )?;
        let mut prog = ProgramSpec {
            name: func.name.clone(),
            kind: classify(&section),
            section,
            functions: linked
                .placed
                .iter()
                .map(|&(pc, f)| (pc, code.functions[f].name.clone()))
                .collect(),
            insns: linked.insns.clone(),
            func_info: Vec::new(),
            line_info: Vec::new(),
            core_relocations: Vec::new(),
        };
        // Empty unless the object lacks BTF line info.
        dwarf_lines(&mut prog, &linked, &code, &dwarf_rows);
        if let (Some(b), Some(ext)) = (btf.as_ref(), btf_ext.as_ref()) {
            ext_info(&mut prog, &linked, &code, &elf, b, ext);
            let target: &Btf = match opts.target_btf {
                Some(t) => t,
                None => crate::context_btf(),
            };
            prog.core_relocations = apply_core(&mut prog, &linked, &code, &elf, b, ext, target)?;
        }
        programs.push(prog);
    }

    static_slots(&elf, &mut maps, &programs)?;

    let sections = elf
        .sections
        .iter()
        .filter(|s| !s.name.is_empty())
        .map(|s| SectionSummary {
            name: s.name.clone(),
            role: role_of(s, &map_sections, &data_maps),
            size: s.size,
            relocations: elf.relocs[s.index].len(),
        })
        .collect();
    let relocations = elf
        .relocs
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let s = &elf.sections[*i];
            s.is_exec() || map_sections.contains(i)
        })
        .flat_map(|(i, rels)| rels.iter().map(move |r| (i, *r)))
        .map(|(i, r)| RelocationSummary {
            section: elf.sections[i].name.clone(),
            offset: r.offset,
            symbol: symbol_label(&elf, r.symbol),
            r_type: r_type_name(r.r_type),
        })
        .collect();
    Ok(Object {
        name,
        license,
        kern_version,
        programs,
        maps,
        btf,
        btf_ext,
        externs,
        sections,
        relocations,
    })
}

/// The `.rel.maps` relocations of statically initialized map-in-maps and program arrays
/// (`R_BPF_64_ABS64` against a map or a program, at a slot of the `values` member).
fn static_slots(
    elf: &Elf,
    maps: &mut [MapSpec],
    programs: &[ProgramSpec],
) -> Result<(), ObjectError> {
    let Some(sec) = elf.section_by_name(".maps") else {
        return Ok(());
    };
    for rel in &elf.relocs[sec.index] {
        let sym = &elf.symbols[rel.symbol];
        let bad = |problem: String| ObjectError::Relocation {
            section: ".maps".into(),
            offset: rel.offset,
            problem,
        };
        let owner = maps
            .iter()
            .position(|m| {
                m.section == ".maps"
                    && m.values_offset.is_some_and(|v| {
                        let start = m.offset.saturating_add(v);
                        let end = start.saturating_add(8 * u64::from(m.max_entries));
                        (start..end).contains(&rel.offset)
                    })
            })
            .ok_or_else(|| {
                bad(format!(
                    "`{}` is not stored in the `values` of a map definition",
                    sym.name
                ))
            })?;
        let slot = (rel.offset - maps[owner].offset - maps[owner].values_offset.unwrap_or(0)) / 8;
        let value = if sym.section == Some(sec.index) {
            let target = maps
                .iter()
                .position(|m| m.section == ".maps" && m.offset == sym.value)
                .ok_or_else(|| bad(format!("`{}` is not a map", sym.name)))?;
            SlotValue::Map(target)
        } else if programs.iter().any(|p| p.name == sym.name) {
            SlotValue::Program(sym.name.clone())
        } else {
            return Err(bad(format!(
                "`{}` is neither a map nor a program",
                sym.name
            )));
        };
        maps[owner].initial_slots.push((slot as u32, value));
    }
    Ok(())
}

/// A symbol's name, or for a section symbol its section's name.
fn symbol_label(elf: &Elf, symbol: usize) -> String {
    let s = &elf.symbols[symbol];
    match (s.is_section(), s.section) {
        (true, Some(sec)) => elf.sections[sec].name.clone(),
        _ => s.name.clone(),
    }
}

fn role_of(s: &Section, map_sections: &[usize], data: &BTreeMap<usize, usize>) -> &'static str {
    if s.is_exec() {
        if s.name == ".text" {
            "subprograms"
        } else {
            "program"
        }
    } else if map_sections.contains(&s.index) {
        "maps"
    } else if data.contains_key(&s.index) {
        "data"
    } else {
        match s.name.as_str() {
            "license" => "license",
            "version" => "version",
            ".BTF" | ".BTF.ext" => "btf",
            n if n.starts_with(".debug") => "dwarf",
            n if n.starts_with(".rel") => "relocations",
            ".symtab" => "symbols",
            ".strtab" => "strings",
            _ => "other",
        }
    }
}

/// libbpf's BTF fixups the kernel needs: a DATASEC's size is its ELF section's size, and
/// each variable's offset is its symbol's value (clang leaves both 0 for some sections).
fn fixup_datasecs(btf: &mut Btf, elf: &Elf) {
    let ids: Vec<TypeId> = btf
        .types()
        .filter(|(_, t)| t.kind() == Kind::Datasec)
        .map(|(id, _)| id)
        .collect();
    for id in ids {
        let Some(sec_name) = btf.name_of(id).map(str::to_string) else {
            continue;
        };
        let section = elf.section_by_name(&sec_name);
        let var_names: Vec<Option<String>> = match btf.type_by_id(id).map(|t| &t.kind) {
            Some(TypeKind::Datasec { vars, .. }) => vars
                .iter()
                .map(|v| btf.name_of(v.ty).map(str::to_string))
                .collect(),
            _ => continue,
        };
        let Some(t) = btf.type_mut(id) else { continue };
        let TypeKind::Datasec { size, vars } = &mut t.kind else {
            continue;
        };
        if let Some(s) = section {
            *size = u32::try_from(s.size).unwrap_or(u32::MAX);
            for (v, name) in vars.iter_mut().zip(var_names) {
                if let Some(sym) = name.and_then(|n| {
                    elf.symbols
                        .iter()
                        .find(|y| y.section == Some(s.index) && y.name == n)
                }) {
                    v.offset = u32::try_from(sym.value).unwrap_or(u32::MAX);
                }
            }
        }
    }
}

/// The `.kconfig` map: every `__kconfig` extern laid out at its alignment, filled with
/// the host's values. Returns its map index and the externs (ksyms included).
fn kconfig_layout(
    btf: Option<&Btf>,
    elf: &Elf,
    object: &str,
    maps: &mut Vec<MapSpec>,
    opts: &LoadOptions<'_>,
) -> Result<(Option<usize>, Vec<ExternSpec>), ObjectError> {
    let mut externs = Vec::new();
    let Some(btf) = btf else {
        return Ok((None, externs));
    };
    let weak = |name: &str| elf.symbols.iter().any(|s| s.name == name && s.is_weak());
    let vars_of = |sec: &str| -> Vec<(String, TypeId)> {
        let Some(id) = btf.find(Kind::Datasec, sec) else {
            return Vec::new();
        };
        match btf.type_by_id(id).map(|t| &t.kind) {
            Some(TypeKind::Datasec { vars, .. }) => vars
                .iter()
                .filter_map(|v| {
                    let name = btf.name_of(v.ty)?.to_string();
                    let ty = match btf.type_by_id(v.ty)?.kind {
                        TypeKind::Var { ty, .. } => ty,
                        _ => v.ty,
                    };
                    Some((name, ty))
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    for (name, _) in vars_of(".ksyms") {
        externs.push(ExternSpec {
            weak: weak(&name),
            name,
            kind: ExternKind::Ksym,
            resolved: false,
        });
    }
    let kconfig = vars_of(".kconfig");
    if kconfig.is_empty() {
        return Ok((None, externs));
    }
    let mut data = Vec::new();
    for (name, ty) in kconfig {
        let size = btf.size_of(ty).map_err(btf_error)?;
        // A hostile BTF can give an extern any size: bound it like a section.
        opts.limits.check(
            "size of a __kconfig extern",
            size,
            opts.limits.max_section_bytes,
        )?;
        let size = size as usize;
        let align = size.clamp(1, 8).next_power_of_two().min(8);
        let offset = data.len().next_multiple_of(align);
        data.resize(offset + size, 0);
        let is_weak = weak(&name);
        let value = kconfig_value(&name, opts);
        let resolved = match value {
            Some(v) => {
                write_kconfig(&mut data[offset..offset + size], &v, btf, ty).map_err(
                    |problem| ObjectError::Extern {
                        name: name.clone(),
                        problem,
                    },
                )?;
                true
            }
            None if is_weak || opts.allow_unresolved_externs => false,
            None => {
                return Err(ObjectError::Extern {
                    name,
                    problem: "no value supplied for this __kconfig extern (and it is not __weak)"
                        .into(),
                });
            }
        };
        externs.push(ExternSpec {
            name,
            weak: is_weak,
            kind: ExternKind::Kconfig {
                offset: offset as u32,
                size: size as u32,
            },
            resolved,
        });
    }
    let mut m = MapSpec {
        name: maps::internal_map_name(object, ".kconfig"),
        origin: MapOrigin::Kconfig,
        section: ".kconfig".into(),
        map_type: maps::MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: data.len().max(1) as u32,
        max_entries: 1,
        flags: maps::F_RDONLY_PROG | maps::F_MMAPABLE,
        numa_node: None,
        pinning: 0,
        map_extra: 0,
        btf_key_type_id: 0,
        btf_value_type_id: btf.find(Kind::Datasec, ".kconfig").map_or(0, |t| t.0),
        inner: None,
        initial_data: None,
        initial_slots: Vec::new(),
        values_offset: None,
        frozen: true,
        offset: 0,
    };
    data.resize(m.value_size as usize, 0);
    m.initial_data = Some(data);
    maps.push(m);
    Ok((Some(maps.len() - 1), externs))
}

fn kconfig_value(name: &str, opts: &LoadOptions<'_>) -> Option<KconfigValue> {
    if name == "LINUX_KERNEL_VERSION" {
        return opts
            .kernel_version
            .map(|v| KconfigValue::Int(i64::from(v)))
            .or_else(|| opts.kconfig.get(name).cloned());
    }
    opts.kconfig.get(name).cloned()
}

fn write_kconfig(dst: &mut [u8], v: &KconfigValue, btf: &Btf, ty: TypeId) -> Result<(), String> {
    let resolved = btf.skip_mods_and_typedefs(ty);
    let is_char_array = matches!(
        btf.type_by_id(resolved).map(|t| &t.kind),
        Some(TypeKind::Array { .. })
    );
    match v {
        KconfigValue::Str(s) if is_char_array => {
            let n = s.len().min(dst.len().saturating_sub(1));
            dst[..n].copy_from_slice(&s.as_bytes()[..n]);
            Ok(())
        }
        KconfigValue::Str(s) => Err(format!("string value `{s}` for a non-array extern")),
        KconfigValue::Tristate(c) => {
            let n = match c {
                'y' => 1,
                'n' => 0,
                'm' => 2,
                other => return Err(format!("tristate value `{other}` is not y, n or m")),
            };
            dst.fill(0);
            if let Some(b) = dst.first_mut() {
                *b = n;
            }
            Ok(())
        }
        KconfigValue::Int(n) => {
            let bytes = n.to_le_bytes();
            let len = dst.len().min(8);
            dst[..len].copy_from_slice(&bytes[..len]);
            Ok(())
        }
    }
}

/// Fills the `lddw`s and calls that refer to externs.
#[allow(clippy::too_many_arguments)]
fn resolve_externs(
    linked: &mut Linked,
    elf: &Elf,
    btf: Option<&Btf>,
    opts: &LoadOptions<'_>,
    kconfig_map: Option<usize>,
    externs: &mut [ExternSpec],
    program: &str,
    section: &str,
) -> Result<(), ObjectError> {
    for p in linked.externs.clone() {
        let sym = &elf.symbols[p.symbol];
        let undefined = || ObjectError::UndefinedSymbol {
            symbol: sym.name.clone(),
            section: section.to_string(),
            offset: p.offset,
            hint: format!(
                " in program `{program}`: declare it `__kconfig` or `__ksym`, or define it"
            ),
        };
        let Some(ext) = externs.iter_mut().find(|e| e.name == sym.name) else {
            return Err(undefined());
        };
        match ext.kind {
            ExternKind::Kconfig { offset, .. } => {
                let map = kconfig_map.ok_or_else(undefined)?;
                let insn = &mut linked.insns[p.pc];
                insn.src = PSEUDO_MAP_IDX_VALUE;
                insn.imm = map as i32;
                linked.insns[p.pc + 1].imm = offset as i32;
            }
            ExternKind::Ksym => {
                let target = opts.target_btf;
                if p.is_call {
                    let id = target
                        .and_then(|t| t.find(Kind::Func, &sym.name))
                        .map(|id| id.0)
                        .or_else(|| opts.host_kfuncs.get(&sym.name).copied());
                    match id {
                        Some(id) => {
                            linked.insns[p.pc].src = PSEUDO_KFUNC_CALL;
                            linked.insns[p.pc].imm = id as i32;
                            ext.resolved = true;
                        }
                        None if opts.allow_unresolved_externs => {
                            linked.insns[p.pc].src = PSEUDO_KFUNC_CALL;
                            linked.insns[p.pc].imm = 0;
                        }
                        None => {
                            return Err(ObjectError::Extern {
                                name: sym.name.clone(),
                                problem: "kfunc not found in the target BTF".into(),
                            });
                        }
                    }
                    continue;
                }
                // A typed ksym (`extern const struct rq runqueues __ksym;`) is a VAR with a
                // type; a typeless one (`extern const void schedule __ksym;`) has void.
                let typed = btf.is_some_and(|b| {
                    b.find(Kind::Var, &sym.name)
                        .and_then(|id| b.type_by_id(id))
                        .is_some_and(|t| matches!(t.kind, TypeKind::Var { ty, .. } if ty.0 != 0))
                });
                let by_btf = typed
                    .then(|| target.and_then(|t| t.find(Kind::Var, &sym.name)))
                    .flatten();
                if let Some(id) = by_btf {
                    linked.insns[p.pc].src = PSEUDO_BTF_ID;
                    linked.insns[p.pc].imm = id.0 as i32;
                    linked.insns[p.pc + 1].imm = 0;
                    ext.resolved = true;
                } else if let Some(addr) = opts.ksym_addresses.get(&sym.name) {
                    linked.insns[p.pc].src = 0;
                    linked.insns[p.pc].imm = *addr as u32 as i32;
                    linked.insns[p.pc + 1].imm = (*addr >> 32) as u32 as i32;
                    ext.resolved = true;
                } else if ext.weak || opts.allow_unresolved_externs {
                    linked.insns[p.pc].src = 0;
                    linked.insns[p.pc].imm = 0;
                    linked.insns[p.pc + 1].imm = 0;
                } else {
                    return Err(ObjectError::Extern {
                        name: sym.name.clone(),
                        problem: "__ksym not found: no target BTF variable and no address supplied"
                            .into(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Maps each placed function's instructions in its section to pcs of the program.
fn pc_of(linked: &Linked, code: &Code<'_>, section: usize, insn: usize) -> Option<usize> {
    linked.placed.iter().find_map(|&(base, f)| {
        let func = &code.functions[f];
        (func.section == section && func.start <= insn && insn < func.start + func.len)
            .then(|| base + insn - func.start)
    })
}

fn section_index(elf: &Elf, name: &str) -> Option<usize> {
    elf.sections.iter().position(|s| s.name == name)
}

/// Func info and line info of the program, from `.BTF.ext`.
fn ext_info(
    prog: &mut ProgramSpec,
    linked: &Linked,
    code: &Code<'_>,
    elf: &Elf,
    btf: &Btf,
    ext: &BtfExt,
) {
    for sec in &ext.func_info {
        let Some(si) = section_index(elf, &sec.section) else {
            continue;
        };
        for r in &sec.records {
            if let Some(pc) = pc_of(linked, code, si, (r.insn_off / 8) as usize) {
                prog.func_info.push((pc, r.type_id));
            }
        }
    }
    prog.func_info.sort_by_key(|(pc, _)| *pc);
    for sec in &ext.line_info {
        let Some(si) = section_index(elf, &sec.section) else {
            continue;
        };
        for r in &sec.records {
            if let Some(pc) = pc_of(linked, code, si, (r.insn_off / 8) as usize) {
                prog.line_info.push(LineEntry {
                    pc,
                    file_name_off: r.file_name_off,
                    line_off: r.line_off,
                    file: btf.string(r.file_name_off).unwrap_or_default().to_string(),
                    line: r.line,
                    col: r.col,
                    text: btf.string(r.line_off).unwrap_or_default().to_string(),
                });
            }
        }
    }
    prog.line_info.sort_by_key(|l| l.pc);
}

/// Source lines from DWARF rows: one entry per instruction that starts a row. DWARF has
/// no source text; `text` stays empty.
fn dwarf_lines(
    prog: &mut ProgramSpec,
    linked: &Linked,
    code: &Code<'_>,
    rows: &[crate::dwarf::Row],
) {
    for (section, insn, file, line, col) in rows {
        if let Some(pc) = pc_of(linked, code, *section, *insn) {
            prog.line_info.push(LineEntry {
                pc,
                file_name_off: 0,
                line_off: 0,
                file: file.clone(),
                line: *line,
                col: *col,
                text: String::new(),
            });
        }
    }
    prog.line_info.sort_by_key(|l| l.pc);
    prog.line_info.dedup_by_key(|l| l.pc);
}

/// Resolves and applies the program's CO-RE relocations against `target`.
fn apply_core(
    prog: &mut ProgramSpec,
    linked: &Linked,
    code: &Code<'_>,
    elf: &Elf,
    btf: &Btf,
    ext: &BtfExt,
    target: &Btf,
) -> Result<Vec<usize>, ObjectError> {
    let mut applied = Vec::new();
    for sec in &ext.core_relos {
        let Some(si) = section_index(elf, &sec.section) else {
            continue;
        };
        for r in &sec.records {
            let Some(pc) = pc_of(linked, code, si, (r.insn_off / 8) as usize) else {
                continue;
            };
            let err = |problem: String| ObjectError::Core {
                program: prog.name.clone(),
                pc,
                problem,
            };
            let res = bpfvm_btf::core::resolve(btf, r, target).map_err(|e| err(e.to_string()))?;
            bpfvm_btf::core::patch(&mut prog.insns, pc, &res).map_err(|e| err(e.to_string()))?;
            applied.push(pc);
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relocation_type_names() {
        assert_eq!(r_type_name(1), "R_BPF_64_64");
        assert_eq!(r_type_name(10), "R_BPF_64_32");
        assert_eq!(r_type_name(99), "unknown");
    }

    #[test]
    fn kconfig_values_by_type() {
        let mut btf = Btf::parse(&empty_btf()).expect("empty BTF");
        let int = btf.add_type(bpfvm_btf::Type {
            name_off: 0,
            kind: TypeKind::Int {
                size: 4,
                encoding: bpfvm_btf::IntEncoding {
                    signed: true,
                    char: false,
                    bool: false,
                },
                bit_offset: 0,
                bits: 32,
            },
        });
        let mut dst = [0xff; 4];
        write_kconfig(&mut dst, &KconfigValue::Int(0x0006_1200), &btf, int).expect("int");
        assert_eq!(u32::from_le_bytes(dst), 0x0006_1200);
        write_kconfig(&mut dst, &KconfigValue::Tristate('m'), &btf, int).expect("tristate");
        assert_eq!(dst, [2, 0, 0, 0]);
        assert!(write_kconfig(&mut dst, &KconfigValue::Tristate('x'), &btf, int).is_err());
    }

    fn empty_btf() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(0xeb9fu16.to_le_bytes());
        b.extend([1, 0]);
        b.extend(24u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.push(0);
        b
    }
}
