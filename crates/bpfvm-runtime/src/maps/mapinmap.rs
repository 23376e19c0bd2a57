//! Maps of maps: `BPF_MAP_TYPE_ARRAY_OF_MAPS` and `BPF_MAP_TYPE_HASH_OF_MAPS`
//! (`kernel/bpf/map_in_map.c`, the fd parts of `arraymap.c` and `hashtab.c`).
//!
//! The host stores inner maps with [`MapOfMaps::set`] (the kernel's update with a map
//! fd); a program's `bpf_map_lookup_elem` on the outer map gets the inner map
//! ([`Map::lookup_inner`]) and then uses it as any map. Every inner map must match the
//! spec's `inner` template as the kernel's `bpf_map_meta_equal` checks it: same type,
//! key size, value size and flags (`BPF_F_RDONLY`/`BPF_F_WRONLY` aside, which the kernel
//! does not keep on the map), and for array inner maps the same `max_entries` unless the
//! template has `BPF_F_INNER_MAP`; a mismatch is `EINVAL`. A map-in-map template (two
//! levels) is `EINVAL` at creation.
//!
//! Kernel semantics kept: arrays of maps take only `BPF_ANY` (`EINVAL`), an index
//! `>= max_entries` is `E2BIG` on set and delete, an empty slot `ENOENT` on delete, and
//! iteration visits every index; hashes of maps keep the hash rules (`EEXIST`, `ENOENT`,
//! `E2BIG` when full, iteration in key-byte order). There are no file descriptors here,
//! so a host `lookup` (the kernel answers the inner map's id) and an `update` with raw fd
//! bytes are `NotSupported`; programs cannot update or delete (the verifier forbids it).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bpfvm_abi::{F_RDONLY, F_WRONLY, MapError, MapSpec, MapType, UPDATE_EXIST, UPDATE_NOEXIST};

use super::{
    F_INNER_MAP, Map, MapConfig, MemoryAccountant, check_host_read, check_host_write, check_len,
    check_update_flags, not_supported,
};

/// Bytes charged per slot (array) or element (hash, with its key).
const SLOT_BYTES: u64 = 64;

#[derive(Debug)]
enum Slots {
    Array(Vec<Option<Arc<dyn Map>>>),
    Hash(BTreeMap<Box<[u8]>, Arc<dyn Map>>),
}

/// An array of maps or a hash of maps.
#[derive(Debug)]
pub struct MapOfMaps {
    spec: MapSpec,
    inner: MapSpec,
    slots: RwLock<Slots>,
    charged: RwLock<u64>,
    elem_charge: u64,
    memory: Arc<MemoryAccountant>,
}

/// The flags the kernel keeps on a map (`bpf_map_flags_retain_permanent`).
fn permanent(flags: u32) -> u32 {
    flags & !(F_RDONLY | F_WRONLY)
}

/// The kernel's `map_meta_equal` of the inner template `meta` and a candidate `spec`.
pub fn inner_matches(meta: &MapSpec, spec: &MapSpec) -> Result<(), MapError> {
    let mismatch = |what: String| {
        Err(MapError::Invalid(format!(
            "the inner map does not match the template: {what}"
        )))
    };
    if meta.map_type != spec.map_type {
        return mismatch(format!("type {} is not {}", spec.map_type, meta.map_type));
    }
    if meta.key_size != spec.key_size || meta.value_size != spec.value_size {
        return mismatch(format!(
            "key/value sizes {}/{} are not {}/{}",
            spec.key_size, spec.value_size, meta.key_size, meta.value_size
        ));
    }
    if permanent(meta.flags) != permanent(spec.flags) {
        return mismatch(format!("flags {:#x} are not {:#x}", spec.flags, meta.flags));
    }
    if meta.map_type == MapType::Array
        && meta.flags & F_INNER_MAP == 0
        && meta.max_entries != spec.max_entries
    {
        return mismatch(format!(
            "max_entries {} is not {} (no BPF_F_INNER_MAP)",
            spec.max_entries, meta.max_entries
        ));
    }
    Ok(())
}

impl MapOfMaps {
    /// An empty map of maps. `spec` must be an array-of-maps or hash-of-maps spec with an
    /// `inner` template that passed the create checks.
    pub fn new(spec: &MapSpec, config: &MapConfig) -> Result<MapOfMaps, MapError> {
        let Some(inner) = spec.inner.as_deref() else {
            return Err(MapError::Invalid(format!(
                "{} map: no inner map template",
                spec.map_type
            )));
        };
        if matches!(inner.map_type, MapType::ArrayOfMaps | MapType::HashOfMaps) {
            return Err(MapError::Invalid(format!(
                "{} map: an inner map may not itself hold maps",
                spec.map_type
            )));
        }
        let elem_charge = SLOT_BYTES + u64::from(spec.key_size);
        let (slots, charged) = if spec.map_type == MapType::ArrayOfMaps {
            let charged = u64::from(spec.max_entries) * SLOT_BYTES;
            let n = spec.max_entries as usize;
            let v = config
                .memory
                .charged_vec(charged, n, || None, "map slots")?;
            (Slots::Array(v), charged)
        } else {
            (Slots::Hash(BTreeMap::new()), 0)
        };
        Ok(MapOfMaps {
            spec: spec.clone(),
            inner: inner.clone(),
            slots: RwLock::new(slots),
            charged: RwLock::new(charged),
            elem_charge,
            memory: Arc::clone(&config.memory),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Slots> {
        self.slots.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Slots> {
        self.slots.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The inner map template.
    pub fn inner_template(&self) -> &MapSpec {
        &self.inner
    }

    /// Stores `map` at `key` with `BPF_ANY` (see [`MapOfMaps::set_with_flags`]).
    pub fn set(&self, key: &[u8], map: Arc<dyn Map>) -> Result<(), MapError> {
        self.set_with_flags(key, map, 0)
    }

    /// Stores `map` at `key`, the kernel's update with a map fd. Checks, in the kernel's
    /// order: `EPERM` (read-only map), flags (`EINVAL`; arrays take only `BPF_ANY`), the
    /// index (`E2BIG`), the template (`EINVAL`), then for hashes `EEXIST`/`ENOENT`/`E2BIG`.
    pub fn set_with_flags(
        &self,
        key: &[u8],
        map: Arc<dyn Map>,
        flags: u64,
    ) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        check_len("key", key.len(), self.spec.key_size as usize)?;
        let old = match &mut *self.write() {
            Slots::Array(v) => {
                if flags != 0 {
                    return Err(MapError::Invalid(format!(
                        "flags {flags:#x} on an array of maps (only BPF_ANY)"
                    )));
                }
                let i = self.array_index(key)?;
                inner_matches(&self.inner, map.spec())?;
                v[i].replace(map)
            }
            Slots::Hash(h) => {
                inner_matches(&self.inner, map.spec())?;
                check_update_flags(flags)?;
                match h.get_mut(key) {
                    Some(slot) => {
                        if flags & UPDATE_NOEXIST != 0 {
                            return Err(MapError::Exists);
                        }
                        Some(std::mem::replace(slot, map))
                    }
                    None => {
                        if flags & UPDATE_EXIST != 0 {
                            return Err(MapError::NotFound);
                        }
                        if h.len() >= self.spec.max_entries as usize {
                            return Err(MapError::TooBig(format!(
                                "the map is full ({} entries)",
                                self.spec.max_entries
                            )));
                        }
                        self.memory.charge(self.elem_charge)?;
                        *self.charged.write().unwrap_or_else(PoisonError::into_inner) +=
                            self.elem_charge;
                        h.insert(key.into(), map);
                        None
                    }
                }
            }
        };
        // An inner map a run acquired stays alive through the run's own `Arc`.
        drop(old);
        Ok(())
    }

    /// Removes the inner map at `key`: `E2BIG` for an array index out of range,
    /// `ENOENT` when there is none.
    pub fn clear(&self, key: &[u8]) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        check_len("key", key.len(), self.spec.key_size as usize)?;
        let old = match &mut *self.write() {
            Slots::Array(v) => {
                let i = self.array_index(key)?;
                v[i].take()
            }
            Slots::Hash(h) => {
                let old = h.remove(key);
                if old.is_some() {
                    self.memory.uncharge(self.elem_charge);
                    *self.charged.write().unwrap_or_else(PoisonError::into_inner) -=
                        self.elem_charge;
                }
                old
            }
        };
        old.map(drop).ok_or(MapError::NotFound)
    }

    fn array_index(&self, key: &[u8]) -> Result<usize, MapError> {
        let i = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]);
        if i >= self.spec.max_entries {
            return Err(MapError::TooBig(format!(
                "index {i} out of range of {} entries",
                self.spec.max_entries
            )));
        }
        Ok(i as usize)
    }
}

impl Map for MapOfMaps {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn value_len(&self) -> usize {
        4
    }

    /// `NotSupported` when present (the kernel answers a map id; use
    /// [`Map::lookup_inner`]); `ENOENT` when absent.
    fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        check_len("key", key.len(), self.spec.key_size as usize)?;
        match self.lookup_inner(key) {
            Some(_) => Err(not_supported(&self.spec, "lookup of map ids")),
            None => Err(MapError::NotFound),
        }
    }

    /// `NotSupported`: use [`MapOfMaps::set`].
    fn update(&self, key: &[u8], _value: &[u8], _flags: u64) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        check_len("key", key.len(), self.spec.key_size as usize)?;
        Err(not_supported(&self.spec, "update with map fds (use set)"))
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.clear(key)
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        if let Some(k) = key {
            check_len("key", k.len(), self.spec.key_size as usize)?;
        }
        match &*self.read() {
            Slots::Array(_) => {
                let max = self.spec.max_entries;
                let next = match key {
                    None => 0,
                    Some(k) => match u32::from_ne_bytes([k[0], k[1], k[2], k[3]]) {
                        i if i >= max => 0,
                        i if i + 1 == max => return Err(MapError::NotFound),
                        i => i + 1,
                    },
                };
                Ok(next.to_ne_bytes().to_vec())
            }
            Slots::Hash(h) => {
                let next = match key {
                    Some(k) if h.contains_key(k) => h
                        .range::<[u8], _>((Bound::Excluded(k), Bound::Unbounded))
                        .next(),
                    _ => h.iter().next(),
                };
                next.map(|(k, _)| k.to_vec()).ok_or(MapError::NotFound)
            }
        }
    }
    fn lookup_inner(&self, key: &[u8]) -> Option<Arc<dyn Map>> {
        if key.len() != self.spec.key_size as usize {
            return None;
        }
        match &*self.read() {
            Slots::Array(v) => {
                let i = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]) as usize;
                v.get(i)?.clone()
            }
            Slots::Hash(h) => h.get(key).cloned(),
        }
    }
}

impl Drop for MapOfMaps {
    fn drop(&mut self) {
        let charged = *self
            .charged
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        self.memory.uncharge(charged);
    }
}
