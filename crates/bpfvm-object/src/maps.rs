//! Map definitions: BTF-defined `.maps`, the legacy `maps` section, and the internal
//! maps that hold global data (`.data`, `.rodata`, `.bss`, their `.*` variants) and
//! `__kconfig` externs.

use std::fmt;

use bpfvm_btf::{Btf, Kind, TypeId, TypeKind};

use crate::elf::{Elf, Section};
use crate::{Limits, ObjectError};

/// `BPF_MAP_TYPE_ARRAY`, the type of every internal map.
pub const MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_F_RDONLY_PROG`: programs may only read the map (`.rodata`, `.kconfig`).
pub const F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`: global data maps can be mapped into user space.
pub const F_MMAPABLE: u32 = 1 << 10;

/// `enum bpf_map_type`, by value.
pub const MAP_TYPE_NAMES: [&str; 34] = [
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

/// Where a map comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapOrigin {
    /// A BTF-defined map in `.maps`.
    Btf,
    /// A `struct bpf_map_def` in the legacy `maps` section.
    Legacy,
    /// The global variables of a data section.
    Data(DataKind),
    /// The values of the object's `__kconfig` externs.
    Kconfig,
}

/// Which kind of data section backs an internal map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// `.data`, `.data.*`: initialized, writable.
    Data,
    /// `.rodata`, `.rodata.*`: constant; frozen after loading.
    Rodata,
    /// `.bss`: zero-initialized, writable.
    Bss,
}

/// A map the object asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// Name (the variable's, or the internal map's as libbpf names it).
    pub name: String,
    /// Where it comes from.
    pub origin: MapOrigin,
    /// The section the definition (or the data) lives in.
    pub section: String,
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
    /// NUMA node, when the definition names one.
    pub numa_node: Option<u32>,
    /// `LIBBPF_PIN_BY_NAME` (1) or none (0).
    pub pinning: u32,
    /// Type-specific extra.
    pub map_extra: u64,
    /// BTF type of the key (0: none).
    pub btf_key_type_id: u32,
    /// BTF type of the value (0: none; for data maps, the section's DATASEC).
    pub btf_value_type_id: u32,
    /// The inner map's definition, for map-in-map types.
    pub inner: Option<Box<MapSpec>>,
    /// Initial contents of the value of key 0 (data maps).
    pub initial_data: Option<Vec<u8>>,
    /// Static initializer of a map-in-map or program array (`.values = { &m, [1] = &p }`):
    /// which slot holds which map or program.
    pub initial_slots: Vec<(u32, SlotValue)>,
    /// Byte offset of the `values` member in the definition (for its relocations).
    pub(crate) values_offset: Option<u64>,
    /// Made read-only for user space after it is filled (`.rodata`, `.kconfig`).
    pub frozen: bool,
    /// Where the definition starts in its section (for relocations against it).
    pub(crate) offset: u64,
}

impl MapSpec {
    /// The map type's name (`hash`, `array`…).
    pub fn type_name(&self) -> &'static str {
        MAP_TYPE_NAMES
            .get(self.map_type as usize)
            .copied()
            .unwrap_or("unknown")
    }

    fn empty(name: String, origin: MapOrigin, section: &str, offset: u64) -> MapSpec {
        MapSpec {
            name,
            origin,
            section: section.to_string(),
            map_type: 0,
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            flags: 0,
            numa_node: None,
            pinning: 0,
            map_extra: 0,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
            inner: None,
            initial_data: None,
            initial_slots: Vec::new(),
            values_offset: None,
            frozen: false,
            offset,
        }
    }
}

impl fmt::Display for MapSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} key {} value {} max_entries {}",
            self.type_name(),
            self.name,
            self.key_size,
            self.value_size,
            self.max_entries
        )?;
        if self.flags != 0 {
            write!(f, " flags {:#x}", self.flags)?;
        }
        if self.pinning != 0 {
            f.write_str(" pinned by name")?;
        }
        if let Some(inner) = &self.inner {
            write!(f, " inner ({inner})")?;
        }
        Ok(())
    }
}

/// What a slot of a statically initialized map-in-map or program array holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotValue {
    /// The map at this index of [`crate::Object::maps`].
    Map(usize),
    /// The program with this name.
    Program(String),
}

/// Whether `name` is a global-data section, and which kind.
pub(crate) fn data_kind(section: &Section) -> Option<DataKind> {
    let n = section.name.as_str();
    let is = |base: &str| n == base || n.starts_with(&format!("{base}."));
    if is(".rodata") {
        Some(DataKind::Rodata)
    } else if is(".data") {
        Some(DataKind::Data)
    } else if is(".bss") {
        Some(DataKind::Bss)
    } else {
        None
    }
}

/// libbpf's internal map name: as much of the object name (at most 8 characters) as
/// leaves room for the section name in the kernel's 15, then the section name; characters
/// the kernel refuses become `_`.
pub(crate) fn internal_map_name(object: &str, section: &str) -> String {
    let room = 15usize.saturating_sub(section.chars().count());
    let prefix: String = object.chars().take(room.min(8)).collect();
    let name: String = format!("{prefix}{section}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(15)
        .collect();
    name
}

/// The internal map of a data section.
pub(crate) fn data_map(
    object: &str,
    section: &Section,
    btf: Option<&Btf>,
    kind: DataKind,
) -> MapSpec {
    let size = u32::try_from(section.size).unwrap_or(u32::MAX);
    let mut m = MapSpec::empty(
        internal_map_name(object, &section.name),
        MapOrigin::Data(kind),
        &section.name,
        0,
    );
    m.map_type = MAP_TYPE_ARRAY;
    m.key_size = 4;
    m.value_size = size.max(1);
    m.max_entries = 1;
    m.flags = F_MMAPABLE
        | if kind == DataKind::Rodata {
            F_RDONLY_PROG
        } else {
            0
        };
    m.frozen = kind == DataKind::Rodata;
    let mut data = if kind == DataKind::Bss {
        vec![0; section.size as usize]
    } else {
        section.data.clone()
    };
    data.resize(m.value_size as usize, 0);
    m.initial_data = Some(data);
    if let Some(btf) = btf {
        m.btf_value_type_id = btf.find(Kind::Datasec, &section.name).map_or(0, |t| t.0);
    }
    m
}

/// Legacy `struct bpf_map_def` maps: one per symbol of the `maps` section, each
/// `section size / symbols` bytes (as libbpf reads them).
pub(crate) fn legacy_maps(
    elf: &Elf,
    section: &Section,
    limits: &Limits,
) -> Result<Vec<MapSpec>, ObjectError> {
    let mut syms: Vec<_> = elf
        .symbols
        .iter()
        .filter(|s| s.section == Some(section.index) && !s.is_section() && !s.name.is_empty())
        .collect();
    syms.sort_by_key(|s| s.value);
    if syms.is_empty() {
        return Ok(Vec::new());
    }
    limits.check("number of maps", syms.len() as u64, limits.max_maps)?;
    let def_size = section.data.len() / syms.len();
    if def_size < 16 || !def_size.is_multiple_of(4) {
        return Err(ObjectError::Map {
            map: syms[0].name.clone(),
            problem: format!(
                "legacy `maps` section of {} bytes for {} maps: {def_size}-byte definitions are not `struct bpf_map_def`",
                section.data.len(),
                syms.len()
            ),
        });
    }
    let mut maps = Vec::new();
    for s in syms {
        let at = s.value as usize;
        let def = section
            .data
            .get(at..at.saturating_add(def_size))
            .ok_or_else(|| ObjectError::Map {
                map: s.name.clone(),
                problem: format!("definition at offset {at} lies outside the `maps` section"),
            })?;
        let word = |i: usize| {
            def.get(i * 4..i * 4 + 4)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let mut m = MapSpec::empty(s.name.clone(), MapOrigin::Legacy, &section.name, s.value);
        m.map_type = word(0);
        m.key_size = word(1);
        m.value_size = word(2);
        m.max_entries = word(3);
        m.flags = word(4);
        limits.check(
            "max_entries",
            u64::from(m.max_entries),
            limits.max_map_entries,
        )?;
        maps.push(m);
    }
    Ok(maps)
}

/// BTF-defined maps: the variables of the `.maps` DATASEC.
pub(crate) fn btf_maps(
    elf: &Elf,
    section: &Section,
    btf: &Btf,
    limits: &Limits,
) -> Result<Vec<MapSpec>, ObjectError> {
    let Some(datasec) = btf.find(Kind::Datasec, ".maps") else {
        return Err(ObjectError::Map {
            map: ".maps".into(),
            problem: "the object's BTF has no `.maps` DATASEC describing the section".into(),
        });
    };
    let Some(TypeKind::Datasec { vars, .. }) = btf.type_by_id(datasec).map(|t| &t.kind) else {
        return Err(ObjectError::Btf(format!("type {datasec} is not a DATASEC")));
    };
    limits.check("number of maps", vars.len() as u64, limits.max_maps)?;
    let mut maps = Vec::new();
    for v in vars {
        let name = btf.name_of(v.ty).unwrap_or_default().to_string();
        let Some(TypeKind::Var { ty, .. }) = btf.type_by_id(v.ty).map(|t| &t.kind) else {
            return Err(ObjectError::Map {
                map: name,
                problem: format!("DATASEC `.maps` entry {} is not a VAR", v.ty),
            });
        };
        // The variable's offset comes from its ELF symbol (clang leaves DATASEC offsets 0).
        let offset = elf
            .symbols
            .iter()
            .find(|s| s.section == Some(section.index) && s.name == name)
            .map_or(u64::from(v.offset), |s| s.value);
        let mut m = MapSpec::empty(name, MapOrigin::Btf, &section.name, offset);
        parse_map_def(btf, *ty, &mut m, limits, 0)?;
        maps.push(m);
    }
    Ok(maps)
}

/// `__uint(name, N)` is `int (*name)[N]`: a pointer to an array of N elements.
fn uint_value(btf: &Btf, ty: TypeId) -> Option<u32> {
    let TypeKind::Ptr { target } = btf.type_by_id(btf.skip_mods_and_typedefs(ty))?.kind else {
        return None;
    };
    match &btf.type_by_id(btf.skip_mods_and_typedefs(target))?.kind {
        TypeKind::Array { nelems, .. } => Some(*nelems),
        _ => None,
    }
}

/// `__type(name, T)` is `T *name`: the pointed-to type.
fn pointee(btf: &Btf, ty: TypeId) -> Option<TypeId> {
    match btf.type_by_id(btf.skip_mods_and_typedefs(ty))?.kind {
        TypeKind::Ptr { target } => Some(target),
        _ => None,
    }
}

fn parse_map_def(
    btf: &Btf,
    ty: TypeId,
    m: &mut MapSpec,
    limits: &Limits,
    depth: u32,
) -> Result<(), ObjectError> {
    let bad = |m: &MapSpec, problem: String| ObjectError::Map {
        map: m.name.clone(),
        problem,
    };
    let def = btf.skip_mods_and_typedefs(ty);
    let Some(TypeKind::Struct { members, .. }) = btf.type_by_id(def).map(|t| &t.kind) else {
        return Err(bad(m, format!("definition type {def} is not a struct")));
    };
    for member in members {
        let field = btf.string(member.name_off).unwrap_or_default();
        let uint = || {
            uint_value(btf, member.ty).ok_or_else(|| {
                bad(
                    m,
                    format!("`{field}` is not `__uint(...)` (a pointer to an array)"),
                )
            })
        };
        let size_of = |t: TypeId| {
            btf.size_of(t)
                .ok()
                .and_then(|s| u32::try_from(s).ok())
                .ok_or_else(|| bad(m, format!("`{field}` has a type of unknown size")))
        };
        match field {
            "type" => m.map_type = uint()?,
            "max_entries" => m.max_entries = uint()?,
            "map_flags" => m.flags = uint()?,
            "numa_node" => m.numa_node = Some(uint()?),
            "key_size" => m.key_size = uint()?,
            "value_size" => m.value_size = uint()?,
            "pinning" => m.pinning = uint()?,
            "map_extra" => m.map_extra = u64::from(uint()?),
            "key" => {
                let t = pointee(btf, member.ty)
                    .ok_or_else(|| bad(m, "`key` is not `__type(key, T)`".into()))?;
                m.key_size = size_of(t)?;
                m.btf_key_type_id = t.0;
            }
            "value" => {
                let t = pointee(btf, member.ty)
                    .ok_or_else(|| bad(m, "`value` is not `__type(value, T)`".into()))?;
                m.value_size = size_of(t)?;
                m.btf_value_type_id = t.0;
            }
            "values" => {
                // `__array(values, struct inner)`: `typeof(struct inner) *values[]`.
                if depth > 0 {
                    return Err(bad(m, "map-in-map nested more than one level".into()));
                }
                let arr = btf.skip_mods_and_typedefs(member.ty);
                let Some(TypeKind::Array { elem, .. }) = btf.type_by_id(arr).map(|t| &t.kind)
                else {
                    return Err(bad(m, "`values` is not `__array(values, ...)`".into()));
                };
                let Some(inner_def) = pointee(btf, *elem) else {
                    return Err(bad(
                        m,
                        "`values` elements are not pointers to a map definition".into(),
                    ));
                };
                if matches!(m.map_type, 12 | 13) {
                    let mut inner =
                        MapSpec::empty(format!("{}.inner", m.name), MapOrigin::Btf, &m.section, 0);
                    parse_map_def(btf, inner_def, &mut inner, limits, depth + 1)?;
                    m.inner = Some(Box::new(inner));
                }
                // Map-in-map values are fds; prog arrays' are program fds: 4 bytes either way.
                m.value_size = 4;
                m.values_offset = Some(u64::from(member.bit_offset / 8));
            }
            other => {
                return Err(bad(m, format!("unknown map definition field `{other}`")));
            }
        }
    }
    limits.check(
        "max_entries",
        u64::from(m.max_entries),
        limits.max_map_entries,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_names_follow_libbpf() {
        assert_eq!(internal_map_name("globals", ".data"), "globals.data");
        // The section name keeps priority: `.rodata.str1.1` leaves room for one character.
        assert_eq!(
            internal_map_name("a_long_object_name", ".rodata.str1.1"),
            "a.rodata.str1.1"
        );
        assert_eq!(
            internal_map_name("globals", ".rodata.custom"),
            "g.rodata.custom"
        );
        assert_eq!(internal_map_name("x-y", ".bss"), "x_y.bss");
    }
}
