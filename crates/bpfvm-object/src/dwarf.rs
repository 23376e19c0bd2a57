//! Source lines from DWARF `.debug_line`, for objects compiled with `-g` whose BTF line
//! info is missing (stripped `.BTF.ext`, or a toolchain that emits none).
//!
//! In a relocatable BPF object every line-number sequence starts at address 0 of its
//! section: the `DW_LNE_set_address` operands are `R_BPF_64_ABS64` relocations against
//! the code sections. We apply them with a synthetic address, `section index << 32 |
//! offset`, so each row says which section it belongs to.

use std::borrow::Cow;

use gimli::{EndianSlice, LittleEndian};

use crate::elf::Elf;

/// `R_BPF_64_ABS64`
const R_BPF_64_ABS64: u32 = 2;

/// One row of the line table: (section index, instruction index, file, line, column).
pub(crate) type Row = (usize, usize, String, u32, u32);

/// The line table of the object's DWARF, or empty when it has none or it does not parse.
pub(crate) fn line_rows(elf: &Elf) -> Vec<Row> {
    rows(elf).unwrap_or_default()
}

fn section_data<'a>(elf: &'a Elf, name: &str) -> Cow<'a, [u8]> {
    let Some(sec) = elf.section_by_name(name) else {
        return Cow::Borrowed(&[]);
    };
    if name != ".debug_line" {
        return Cow::Borrowed(&sec.data);
    }
    let mut data = sec.data.clone();
    for rel in &elf.relocs[sec.index] {
        if rel.r_type != R_BPF_64_ABS64 {
            continue;
        }
        let sym = &elf.symbols[rel.symbol];
        let Some(target) = sym.section else { continue };
        let at = rel.offset as usize;
        let Some(slot) = data.get_mut(at..at.saturating_add(8)) else {
            continue;
        };
        let addend = u64::from_le_bytes(slot.try_into().unwrap_or([0; 8]));
        let addr = ((target as u64) << 32) | (sym.value.wrapping_add(addend) & 0xffff_ffff);
        slot.copy_from_slice(&addr.to_le_bytes());
    }
    Cow::Owned(data)
}

fn rows(elf: &Elf) -> Result<Vec<Row>, gimli::Error> {
    let sections: Vec<(gimli::SectionId, Cow<'_, [u8]>)> = [
        gimli::SectionId::DebugAbbrev,
        gimli::SectionId::DebugInfo,
        gimli::SectionId::DebugLine,
        gimli::SectionId::DebugLineStr,
        gimli::SectionId::DebugStr,
        gimli::SectionId::DebugStrOffsets,
        gimli::SectionId::DebugAddr,
    ]
    .into_iter()
    .map(|id| (id, section_data(elf, id.name())))
    .collect();
    let load = |id: gimli::SectionId| -> Result<EndianSlice<'_, LittleEndian>, gimli::Error> {
        let data = sections
            .iter()
            .find(|(s, _)| *s == id)
            .map_or(&[][..], |(_, d)| d.as_ref());
        Ok(EndianSlice::new(data, LittleEndian))
    };
    let dwarf = gimli::Dwarf::load(load)?;
    let mut out = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let Some(program) = unit.line_program.clone() else {
            continue;
        };
        let mut rows = program.rows();
        while let Some((header, row)) = rows.next_row()? {
            if row.end_sequence() {
                continue;
            }
            let addr = row.address();
            let section = (addr >> 32) as usize;
            let offset = addr & 0xffff_ffff;
            if !offset.is_multiple_of(8) || section >= elf.sections.len() {
                continue;
            }
            let file = row
                .file(header)
                .and_then(|f| dwarf.attr_string(&unit, f.path_name()).ok())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let line = row
                .line()
                .map_or(0, |l| u32::try_from(l.get()).unwrap_or(u32::MAX));
            let col = match row.column() {
                gimli::ColumnType::LeftEdge => 0,
                gimli::ColumnType::Column(c) => u32::try_from(c.get()).unwrap_or(u32::MAX),
            };
            out.push((section, (offset / 8) as usize, file, line, col));
        }
    }
    Ok(out)
}
