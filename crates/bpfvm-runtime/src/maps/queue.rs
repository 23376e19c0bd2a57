//! Queue and stack maps (`kernel/bpf/queue_stack_maps.c`): a ring of `max_entries + 1`
//! value slots with a head and a tail, as the kernel keeps it.
//!
//! Kernel semantics kept:
//! - push (`bpf_map_push_elem`, or `BPF_MAP_UPDATE_ELEM` without a key) with `BPF_ANY`
//!   fails with `E2BIG` when full; with `BPF_EXIST` it drops the oldest element (the
//!   queue's front, the stack's bottom) to make room; `BPF_NOEXIST` or any other flag is
//!   `EINVAL`.
//! - pop and peek on an empty map fail with `ENOENT` and zero the output buffer (the
//!   kernel `memset`s it).
//! - there are no keys: `BPF_MAP_LOOKUP_ELEM` without a key is a peek, `BPF_MAP_DELETE_ELEM`
//!   and `BPF_MAP_GET_NEXT_KEY` are `EINVAL`, and so is passing a key.
//!
//! Values are copied in and out (programs never hold pointers into a queue), so the ring
//! is plain bytes under a mutex.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bpfvm_abi::{F_LOCK, MapError, MapSpec, MapType, UPDATE_EXIST, UPDATE_NOEXIST};

use super::{
    Map, MapConfig, MemoryAccountant, RunGuard, ValueRef, check_host_read, check_host_write,
    check_len, check_prog_write,
};

/// The ring: `size = max_entries + 1` slots; empty when `head == tail`.
#[derive(Debug)]
struct Ring {
    head: u32,
    tail: u32,
    size: u32,
    elems: Vec<u8>,
}

/// A queue (first in, first out) or stack (last in, first out) map.
#[derive(Debug)]
pub struct QueueStackMap {
    spec: MapSpec,
    stack: bool,
    vsize: usize,
    ring: Mutex<Ring>,
    charged: u64,
    memory: Arc<MemoryAccountant>,
}

impl QueueStackMap {
    /// Allocates the ring, charging `config`'s accountant. `spec` must be a queue or stack
    /// spec that passed the create checks.
    pub fn new(spec: &MapSpec, config: &MapConfig) -> Result<QueueStackMap, MapError> {
        let size = u64::from(spec.max_entries) + 1;
        let bytes = size
            .checked_mul(u64::from(spec.value_size))
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= isize::MAX as usize)
            .ok_or_else(|| {
                MapError::TooBig(format!(
                    "{} map: {size} slots of {} bytes overflow",
                    spec.map_type, spec.value_size
                ))
            })?;
        let size = u32::try_from(size)
            .map_err(|_| MapError::TooBig(format!("{} map: too many entries", spec.map_type)))?;
        let charged = bytes as u64;
        let elems = config
            .memory
            .charged_vec(charged, bytes, || 0u8, "bytes of slots")?;
        Ok(QueueStackMap {
            spec: spec.clone(),
            stack: spec.map_type == MapType::Stack,
            vsize: spec.value_size as usize,
            ring: Mutex::new(Ring {
                head: 0,
                tail: 0,
                size,
                elems,
            }),
            charged,
            memory: Arc::clone(&config.memory),
        })
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        let r = self.ring();
        ((r.head + r.size - r.tail) % r.size) as usize
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` from the host (without a key): pops the next
    /// element. `flags` must be 0 (`EINVAL`); the map must be readable and writable by
    /// user space (`EPERM`).
    pub fn lookup_and_delete(&self, flags: u64) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        check_host_write(&self.spec)?;
        if flags != 0 {
            return Err(MapError::Invalid(format!(
                "flags {flags:#x} on a queue or stack pop"
            )));
        }
        let mut out = vec![0; self.vsize];
        self.get(&mut out, true)?;
        Ok(out)
    }

    fn slot(&self, i: u32) -> std::ops::Range<usize> {
        let start = i as usize * self.vsize;
        start..start + self.vsize
    }

    /// The kernel's `queue_stack_map_push_elem`.
    fn push_value(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & UPDATE_NOEXIST != 0 || flags > UPDATE_EXIST {
            return Err(MapError::Invalid(format!(
                "push flags {flags:#x} (only BPF_ANY and BPF_EXIST)"
            )));
        }
        check_len("value", value.len(), self.vsize)?;
        let mut r = self.ring();
        let next = if r.head + 1 >= r.size { 0 } else { r.head + 1 };
        if next == r.tail {
            if flags & UPDATE_EXIST == 0 {
                return Err(MapError::TooBig(format!(
                    "the {} is full ({} entries)",
                    self.spec.map_type, self.spec.max_entries
                )));
            }
            r.tail = if r.tail + 1 >= r.size { 0 } else { r.tail + 1 };
        }
        let range = self.slot(r.head);
        r.elems[range].copy_from_slice(value);
        r.head = next;
        Ok(())
    }

    /// The kernel's `__queue_map_get` / `__stack_map_get`: copies the next element into
    /// `out` (zeroed when empty: `ENOENT`), removing it when `delete`.
    fn get(&self, out: &mut [u8], delete: bool) -> Result<(), MapError> {
        check_len("value", out.len(), self.vsize)?;
        let mut r = self.ring();
        if r.head == r.tail {
            out.fill(0);
            return Err(MapError::NotFound);
        }
        let index = if self.stack {
            if r.head == 0 { r.size - 1 } else { r.head - 1 }
        } else {
            r.tail
        };
        out.copy_from_slice(&r.elems[self.slot(index)]);
        if delete {
            if self.stack {
                r.head = index;
            } else {
                r.tail = if r.tail + 1 >= r.size { 0 } else { r.tail + 1 };
            }
        }
        Ok(())
    }
}

fn keyless(spec: &MapSpec, key: &[u8]) -> Result<(), MapError> {
    if !key.is_empty() {
        return Err(MapError::Invalid(format!(
            "{} maps have no keys",
            spec.map_type
        )));
    }
    Ok(())
}

impl Map for QueueStackMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn value_len(&self) -> usize {
        self.vsize
    }

    /// A peek (the key must be empty).
    fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        keyless(&self.spec, key)?;
        let mut out = vec![0; self.vsize];
        self.get(&mut out, false)?;
        Ok(out)
    }

    /// A push (the key must be empty).
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        keyless(&self.spec, key)?;
        if flags & F_LOCK != 0 {
            return Err(MapError::Invalid(
                "BPF_F_LOCK on a value without a bpf_spin_lock".into(),
            ));
        }
        self.push_value(value, flags)
    }

    fn delete(&self, _key: &[u8]) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        Err(MapError::Invalid(format!(
            "{} maps have no delete (pop instead)",
            self.spec.map_type
        )))
    }

    fn next_key(&self, _key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        Err(MapError::Invalid(format!(
            "{} maps have no keys",
            self.spec.map_type
        )))
    }

    /// Always `None`: programs peek and pop instead (the kernel's lookup returns `NULL`).
    fn lookup_value<'a>(
        &'a self,
        _key: &[u8],
        _cpu: usize,
        _guard: &'a RunGuard,
    ) -> Option<ValueRef<'a>> {
        None
    }

    fn prog_update(
        &self,
        _key: &[u8],
        _value: &[u8],
        _flags: u64,
        _cpu: usize,
    ) -> Result<(), MapError> {
        Err(MapError::Invalid(format!(
            "{} maps have no keyed update (push instead)",
            self.spec.map_type
        )))
    }

    fn prog_delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::Invalid(format!(
            "{} maps have no delete (pop instead)",
            self.spec.map_type
        )))
    }

    /// Program side (`bpf_map_push_elem`): `NotPermitted` for `BPF_F_RDONLY_PROG` maps.
    /// Hosts push through [`Map::update`] with an empty key.
    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        check_prog_write(&self.spec)?;
        self.push_value(value, flags)
    }

    /// Program side (`bpf_map_pop_elem`): `NotPermitted` for `BPF_F_RDONLY_PROG` maps.
    /// Hosts pop with [`QueueStackMap::lookup_and_delete`].
    fn pop(&self, out: &mut [u8]) -> Result<(), MapError> {
        check_prog_write(&self.spec)?;
        self.get(out, true)
    }

    /// `bpf_map_peek_elem`, and the host's keyless lookup.
    fn peek(&self, value: &mut [u8]) -> Result<(), MapError> {
        self.get(value, false)
    }
}

impl Drop for QueueStackMap {
    fn drop(&mut self) {
        self.memory.uncharge(self.charged);
    }
}
