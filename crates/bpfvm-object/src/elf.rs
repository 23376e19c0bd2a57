//! The ELF layer: sections, symbols and relocations read with the `object` crate into
//! owned, bounds-checked form. Everything above works on [`Elf`].

use object::LittleEndian as LE;
use object::elf::{self, FileHeader64, SectionHeader64, Sym64};
use object::read::elf::{FileHeader, SectionHeader, Sym};

use crate::{Limits, ObjectError};

/// One section.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub index: usize,
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    /// Contents (empty for `SHT_NOBITS`).
    pub data: Vec<u8>,
    /// Size in memory (for `.bss`, the `SHT_NOBITS` size).
    pub size: u64,
}

impl Section {
    pub fn is_exec(&self) -> bool {
        self.sh_type == elf::SHT_PROGBITS && self.flags & u64::from(elf::SHF_EXECINSTR) != 0
    }
}

/// One symbol.
#[derive(Debug, Clone)]
pub(crate) struct Symbol {
    pub name: String,
    /// Section index, or `None` for undefined, absolute and common symbols.
    pub section: Option<usize>,
    pub value: u64,
    pub size: u64,
    pub kind: u8,
    pub bind: u8,
}

impl Symbol {
    pub fn is_func(&self) -> bool {
        self.kind == elf::STT_FUNC
    }
    pub fn is_section(&self) -> bool {
        self.kind == elf::STT_SECTION
    }
    pub fn is_global(&self) -> bool {
        self.bind == elf::STB_GLOBAL || self.bind == elf::STB_WEAK
    }
    pub fn is_weak(&self) -> bool {
        self.bind == elf::STB_WEAK
    }
}

/// One relocation of a section.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reloc {
    pub offset: u64,
    pub symbol: usize,
    pub r_type: u32,
}

/// `R_BPF_64_64`: a `lddw` immediate.
pub(crate) const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_32`: a call's immediate.
pub(crate) const R_BPF_64_32: u32 = 10;

/// The whole file, owned.
#[derive(Debug, Clone)]
pub(crate) struct Elf {
    pub sections: Vec<Section>,
    pub symbols: Vec<Symbol>,
    /// Relocations by the index of the section they patch.
    pub relocs: Vec<Vec<Reloc>>,
}

fn name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Elf {
    pub fn parse(data: &[u8], limits: &Limits) -> Result<Elf, ObjectError> {
        limits.check("object size", data.len() as u64, limits.max_object_bytes)?;
        let header = FileHeader64::<LE>::parse(data)
            .map_err(|e| ObjectError::Malformed(format!("ELF header: {e}")))?;
        let endian = header
            .endian()
            .map_err(|e| ObjectError::Malformed(format!("ELF header: {e}")))?;
        if !header.is_little_endian() {
            return Err(ObjectError::NotBpf(
                "big-endian BPF objects are not supported".into(),
            ));
        }
        let machine = header.e_machine(endian);
        if machine != elf::EM_BPF {
            return Err(ObjectError::NotBpf(format!(
                "e_machine is {machine}, BPF is {}",
                elf::EM_BPF
            )));
        }
        if header.e_type(endian) != elf::ET_REL {
            return Err(ObjectError::NotBpf(format!(
                "e_type is {}, a BPF object file is ET_REL (1)",
                header.e_type(endian)
            )));
        }
        let table = header.sections(endian, data)?;
        limits.check(
            "number of sections",
            table.len() as u64,
            limits.max_sections,
        )?;
        let mut sections = Vec::with_capacity(table.len());
        for (index, sh) in table.iter().enumerate() {
            let sh: &SectionHeader64<LE> = sh;
            let name = name(table.section_name(endian, sh)?);
            let sh_type = sh.sh_type(endian);
            let size = sh.sh_size(endian);
            limits.check("section size", size, limits.max_section_bytes)?;
            let bytes = if sh_type == elf::SHT_NOBITS {
                Vec::new()
            } else {
                sh.data(endian, data)
                    .map_err(|_| {
                        ObjectError::Malformed(format!(
                            "section `{name}`: contents lie outside the file"
                        ))
                    })?
                    .to_vec()
            };
            sections.push(Section {
                index,
                name,
                sh_type,
                flags: sh.sh_flags(endian),
                data: bytes,
                size,
            });
        }
        let symtab = table.symbols(endian, data, elf::SHT_SYMTAB)?;
        limits.check("number of symbols", symtab.len() as u64, limits.max_symbols)?;
        let mut symbols = Vec::with_capacity(symtab.len());
        for sym in symtab.symbols() {
            let sym: &Sym64<LE> = sym;
            let shndx = sym.st_shndx(endian);
            let section = (shndx != elf::SHN_UNDEF && shndx < elf::SHN_LORESERVE)
                .then_some(usize::from(shndx))
                .filter(|&i| i < sections.len());
            symbols.push(Symbol {
                name: name(symtab.symbol_name(endian, sym)?),
                section,
                value: sym.st_value(endian),
                size: sym.st_size(endian),
                kind: sym.st_type(),
                bind: sym.st_bind(),
            });
        }
        let mut relocs = vec![Vec::new(); sections.len()];
        for sh in table.iter() {
            let Some((rels, _link)) = sh.rel(endian, data)? else {
                continue;
            };
            let target = sh.sh_info(endian) as usize;
            if target >= sections.len() {
                return Err(ObjectError::Malformed(format!(
                    "relocation section `{}` applies to section {target}, which does not exist",
                    name(table.section_name(endian, sh)?)
                )));
            }
            for rel in rels {
                let symbol = rel.r_sym(endian) as usize;
                if symbol >= symbols.len() {
                    return Err(ObjectError::Relocation {
                        section: sections[target].name.clone(),
                        offset: rel.r_offset.get(endian),
                        problem: format!("symbol index {symbol} is out of range"),
                    });
                }
                relocs[target].push(Reloc {
                    offset: rel.r_offset.get(endian),
                    symbol,
                    r_type: rel.r_type(endian),
                });
            }
        }
        Ok(Elf {
            sections,
            symbols,
            relocs,
        })
    }

    pub fn section_by_name(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}
