//! Typed handles over a map's host API: keys and values as plain Rust types
//! (`bytemuck::Pod`: integers, arrays, `#[repr(C)]` structs without padding).

use std::marker::PhantomData;
use std::sync::Arc;

use bpfvm_abi::{MapError, MapType, UPDATE_ANY};
use bpfvm_runtime::LoadedProgram;
use bpfvm_runtime::maps::{Map, MapOfMaps, ProgArrayMap};
use bytemuck::Pod;

use crate::error::{Error, map_err};
use crate::object::MapRef;

pub(crate) fn shape(name: &str, reason: String) -> Error {
    Error::MapShape {
        name: name.to_string(),
        reason,
    }
}

/// Checks the map's type and its key and value sizes against `K` and `V`.
fn check<K, V>(m: &MapRef, types: &[MapType], what: &str) -> Result<(), Error> {
    check_sizes(m, types, what, size_of::<K>(), size_of::<V>())
}

/// Checks the map's type against `types` and its key and value sizes against `k` and `v`
/// bytes (`k` = 0 for maps without keys: queues, stacks, bloom filters, ring buffers).
pub(crate) fn check_sizes(
    m: &MapRef,
    types: &[MapType],
    what: &str,
    k: usize,
    v: usize,
) -> Result<(), Error> {
    let spec = m.spec();
    if !types.contains(&spec.map_type) {
        return Err(shape(
            &m.name,
            format!("is a {} map, not {what}", spec.map_type),
        ));
    }
    if spec.key_size as usize != k {
        return Err(shape(
            &m.name,
            format!("keys are {} bytes, the key type {k}", spec.key_size),
        ));
    }
    if spec.value_size as usize != v {
        return Err(shape(
            &m.name,
            format!("values are {} bytes, the value type {v}", spec.value_size),
        ));
    }
    Ok(())
}

/// `bytes` (a key, value or record of map `name`, named by `what`) as a `T`. The map's
/// sizes were checked when the handle was made, but a host's own [`Map`] may hand back
/// any length: another length than `T`'s is an [`Error::MapShape`], never a panic.
pub(crate) fn read<T: Pod>(name: &str, what: &str, bytes: &[u8]) -> Result<T, Error> {
    if bytes.len() != size_of::<T>() {
        return Err(shape(
            name,
            format!(
                "gave a {what} of {} bytes, the {what} type is {}",
                bytes.len(),
                size_of::<T>()
            ),
        ));
    }
    Ok(bytemuck::pod_read_unaligned(bytes))
}

/// A hash (or LRU hash) map with keys `K` and values `V`.
///
/// ```
/// use bpfvm::HashMap;
/// use bpfvm_abi::{MapSpec, MapType};
/// use bpfvm_runtime::maps::{MapConfig, create_map};
/// let map = create_map(&MapSpec::new(MapType::Hash, 4, 8, 16), &MapConfig::new(1, 1 << 20))?;
/// let counts: HashMap<u32, u64> = HashMap::new(bpfvm::MapRef::from_map("counts", map.into()))?;
/// counts.insert(&7, &100, bpfvm_abi::UPDATE_ANY)?;
/// assert_eq!(counts.get(&7)?, Some(100));
/// assert_eq!(counts.entries()?, vec![(7, 100)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct HashMap<K, V> {
    map: MapRef,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Pod, V: Pod> HashMap<K, V> {
    /// A typed view of `map`, which must be a hash or LRU hash map of these sizes.
    pub fn new(map: MapRef) -> Result<HashMap<K, V>, Error> {
        check::<K, V>(&map, &[MapType::Hash, MapType::LruHash], "a hash map")?;
        Ok(HashMap {
            map,
            _types: PhantomData,
        })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &K) -> Result<Option<V>, Error> {
        match self.map.map.lookup(bytemuck::bytes_of(key)) {
            Ok(v) => read(&self.map.name, "value", &v).map(Some),
            Err(MapError::NotFound) => Ok(None),
            Err(e) => Err(map_err(&self.map.name)(e)),
        }
    }

    /// Inserts or replaces per `flags` (`UPDATE_ANY`, `UPDATE_NOEXIST`, `UPDATE_EXIST`).
    pub fn insert(&self, key: &K, value: &V, flags: u64) -> Result<(), Error> {
        self.map
            .map
            .update(bytemuck::bytes_of(key), bytemuck::bytes_of(value), flags)
            .map_err(map_err(&self.map.name))
    }

    /// Removes `key`; whether it was present.
    pub fn remove(&self, key: &K) -> Result<bool, Error> {
        match self.map.map.delete(bytemuck::bytes_of(key)) {
            Ok(()) => Ok(true),
            Err(MapError::NotFound) => Ok(false),
            Err(e) => Err(map_err(&self.map.name)(e)),
        }
    }

    /// Every key.
    pub fn keys(&self) -> Result<Vec<K>, Error> {
        let keys = self.map.map.keys().map_err(map_err(&self.map.name))?;
        keys.iter()
            .map(|k| read(&self.map.name, "key", k))
            .collect()
    }

    /// Every entry (entries deleted during the walk are skipped).
    pub fn entries(&self) -> Result<Vec<(K, V)>, Error> {
        let mut out = Vec::new();
        for k in self.keys()? {
            if let Some(v) = self.get(&k)? {
                out.push((k, v));
            }
        }
        Ok(out)
    }
}

/// An array map of `V`.
#[derive(Debug, Clone)]
pub struct Array<V> {
    map: MapRef,
    _types: PhantomData<fn() -> V>,
}

impl<V: Pod> Array<V> {
    /// A typed view of `map`, which must be an array of `V`.
    pub fn new(map: MapRef) -> Result<Array<V>, Error> {
        check::<u32, V>(&map, &[MapType::Array], "an array")?;
        Ok(Array {
            map,
            _types: PhantomData,
        })
    }

    /// Number of elements.
    pub fn len(&self) -> u32 {
        self.map.spec().max_entries
    }

    /// Whether it has no elements (never: arrays have at least one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `index`.
    pub fn get(&self, index: u32) -> Result<V, Error> {
        let v = self
            .map
            .map
            .lookup(&index.to_ne_bytes())
            .map_err(map_err(&self.map.name))?;
        read(&self.map.name, "value", &v)
    }

    /// Sets element `index`.
    pub fn set(&self, index: u32, value: &V) -> Result<(), Error> {
        self.map
            .map
            .update(&index.to_ne_bytes(), bytemuck::bytes_of(value), UPDATE_ANY)
            .map_err(map_err(&self.map.name))
    }

    /// Every element, in index order.
    pub fn values(&self) -> Result<Vec<V>, Error> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

/// Splits a per-CPU value (slots of `value_size` rounded up to 8) into one `V` per slot;
/// a length that is not whole slots is an [`Error::MapShape`].
fn per_cpu_values<V: Pod>(name: &str, bytes: &[u8]) -> Result<Vec<V>, Error> {
    let stride = size_of::<V>().next_multiple_of(8).max(8);
    if !bytes.len().is_multiple_of(stride) {
        return Err(shape(
            name,
            format!(
                "gave a per-CPU value of {} bytes, not whole {stride}-byte slots",
                bytes.len()
            ),
        ));
    }
    bytes
        .chunks_exact(stride)
        .map(|c| read(name, "value", &c[..size_of::<V>()]))
        .collect()
}

/// Builds a per-CPU value: `value` in every slot.
fn per_cpu_bytes<V: Pod>(value: &V, slots: usize) -> Vec<u8> {
    let stride = size_of::<V>().next_multiple_of(8).max(8);
    let mut out = vec![0u8; stride * slots];
    for c in out.chunks_mut(stride) {
        c[..size_of::<V>()].copy_from_slice(bytemuck::bytes_of(value));
    }
    out
}

/// A per-CPU array of `V`: the host reads every slot.
#[derive(Debug, Clone)]
pub struct PerCpuArray<V> {
    map: MapRef,
    _types: PhantomData<fn() -> V>,
}

impl<V: Pod> PerCpuArray<V> {
    /// A typed view of `map`, which must be a per-CPU array of `V`.
    pub fn new(map: MapRef) -> Result<PerCpuArray<V>, Error> {
        check::<u32, V>(&map, &[MapType::PercpuArray], "a per-CPU array")?;
        Ok(PerCpuArray {
            map,
            _types: PhantomData,
        })
    }

    /// Element `index`: one value per slot.
    pub fn get(&self, index: u32) -> Result<Vec<V>, Error> {
        let v = self
            .map
            .map
            .lookup(&index.to_ne_bytes())
            .map_err(map_err(&self.map.name))?;
        per_cpu_values(&self.map.name, &v)
    }

    /// Sets element `index` to `value` in every slot.
    pub fn set(&self, index: u32, value: &V) -> Result<(), Error> {
        let slots = self.map.map.value_len() / size_of::<V>().next_multiple_of(8).max(8);
        self.map
            .map
            .update(
                &index.to_ne_bytes(),
                &per_cpu_bytes(value, slots),
                UPDATE_ANY,
            )
            .map_err(map_err(&self.map.name))
    }
}

/// A per-CPU (or LRU per-CPU) hash map: the host reads every slot.
#[derive(Debug, Clone)]
pub struct PerCpuHashMap<K, V> {
    map: MapRef,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Pod, V: Pod> PerCpuHashMap<K, V> {
    /// A typed view of `map`.
    pub fn new(map: MapRef) -> Result<PerCpuHashMap<K, V>, Error> {
        check::<K, V>(
            &map,
            &[MapType::PercpuHash, MapType::LruPercpuHash],
            "a per-CPU hash map",
        )?;
        Ok(PerCpuHashMap {
            map,
            _types: PhantomData,
        })
    }

    /// The value of `key` in every slot, if present.
    pub fn get(&self, key: &K) -> Result<Option<Vec<V>>, Error> {
        match self.map.map.lookup(bytemuck::bytes_of(key)) {
            Ok(v) => per_cpu_values(&self.map.name, &v).map(Some),
            Err(MapError::NotFound) => Ok(None),
            Err(e) => Err(map_err(&self.map.name)(e)),
        }
    }

    /// Every key.
    pub fn keys(&self) -> Result<Vec<K>, Error> {
        let keys = self.map.map.keys().map_err(map_err(&self.map.name))?;
        keys.iter()
            .map(|k| read(&self.map.name, "key", k))
            .collect()
    }
}

impl MapRef {
    /// Names a runtime map (for maps a host creates itself).
    pub fn from_map(name: &str, map: Arc<dyn Map>) -> MapRef {
        MapRef {
            name: name.to_string(),
            map,
        }
    }
}

/// Sets slot `index` of a program array (static initializers of `.maps`).
pub(crate) fn set_prog_slot(
    map: &dyn Map,
    index: u32,
    prog: Arc<LoadedProgram>,
) -> Result<(), MapError> {
    match map.as_any().downcast_ref::<ProgArrayMap>() {
        Some(p) => p.set(index, prog),
        None => Err(MapError::Invalid(format!(
            "{} maps cannot hold programs",
            map.spec().map_type
        ))),
    }
}

/// Sets slot `index` of a map of maps (static initializers of `.maps`).
pub(crate) fn set_map_slot(map: &dyn Map, index: u32, inner: Arc<dyn Map>) -> Result<(), MapError> {
    match map.as_any().downcast_ref::<MapOfMaps>() {
        Some(m) => m.set(&index.to_ne_bytes(), inner),
        None => Err(MapError::Invalid(format!(
            "{} maps cannot hold maps",
            map.spec().map_type
        ))),
    }
}
