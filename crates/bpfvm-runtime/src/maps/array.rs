//! Array and per-CPU array maps (`kernel/bpf/arraymap.c`): one preallocated block, element
//! `i` (slot `c`) at `(i * slots + c) * round8(value_size)`.

use std::sync::Arc;

use bpfvm_abi::{F_RDONLY_PROG, MapError, MapSpec, MapType, UPDATE_NOEXIST};

use super::buf::{ValueBuf, round8};
use super::{
    Map, MapConfig, MemoryAccountant, RunGuard, ValueRef, check_host_read, check_host_write,
    check_len, check_prog_write, check_update_flags,
};

/// An array or per-CPU array map.
#[derive(Debug)]
pub struct ArrayMap {
    spec: MapSpec,
    /// Slots per element: 1, or the config's CPUs for a per-CPU array.
    slots: usize,
    /// `round8(value_size)`.
    elem: usize,
    /// `None` only during `drop`.
    buf: Option<ValueBuf>,
    charged: u64,
    memory: Arc<MemoryAccountant>,
}

impl ArrayMap {
    /// Allocates the array (zeroed), charging `config`'s accountant. `spec` must be an array
    /// or per-CPU array spec that passed `validate`.
    pub fn new(spec: &MapSpec, config: &MapConfig) -> Result<ArrayMap, MapError> {
        let per_cpu = spec.map_type == MapType::PercpuArray;
        let slots = if per_cpu { config.cpus.max(1) } else { 1 };
        let too_big = || {
            MapError::TooBig(format!(
                "{} map: {} entries of {} bytes overflow",
                spec.map_type, spec.max_entries, spec.value_size
            ))
        };
        let elem = round8(spec.value_size as usize).ok_or_else(too_big)?;
        let total = (spec.max_entries as usize)
            .checked_mul(slots)
            .and_then(|n| n.checked_mul(elem))
            .filter(|n| *n <= isize::MAX as usize)
            .ok_or_else(too_big)?;
        let charged = total as u64;
        config.memory.charge(charged)?;
        let buf = match ValueBuf::zeroed(total) {
            Ok(b) => b,
            Err(e) => {
                config.memory.uncharge(charged);
                return Err(e);
            }
        };
        Ok(ArrayMap {
            spec: spec.clone(),
            slots,
            elem,
            buf: Some(buf),
            charged,
            memory: Arc::clone(&config.memory),
        })
    }

    fn buf(&self) -> &ValueBuf {
        // The buffer is taken only in `drop`.
        self.buf.as_ref().unwrap_or_else(|| unreachable!())
    }

    fn per_cpu(&self) -> bool {
        self.spec.map_type == MapType::PercpuArray
    }

    /// The index a key names, or `None` when out of range. Checks the key's size.
    fn index(&self, key: &[u8]) -> Result<Option<usize>, MapError> {
        check_len("key", key.len(), 4)?;
        let i = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]);
        Ok((i < self.spec.max_entries).then_some(i as usize))
    }

    fn offset(&self, index: usize, slot: usize) -> usize {
        (index * self.slots + slot) * self.elem
    }

    /// Update checks in the kernel's order: flags, index (`E2BIG`), `NOEXIST` (`EEXIST`).
    fn update_index(&self, key: &[u8], flags: u64) -> Result<usize, MapError> {
        check_update_flags(flags)?;
        let index = self.index(key)?.ok_or_else(|| {
            MapError::TooBig(format!(
                "index out of range of {} entries",
                self.spec.max_entries
            ))
        })?;
        if flags & UPDATE_NOEXIST != 0 {
            return Err(MapError::Exists);
        }
        Ok(index)
    }
}

impl Map for ArrayMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    /// The kernel's `array_map_direct_value_addr`: only single-element, non-per-CPU arrays
    /// (global data sections).
    fn direct_value(&self) -> Option<(std::ptr::NonNull<u8>, usize, bool)> {
        if self.per_cpu() || self.spec.max_entries != 1 {
            return None;
        }
        let writable = self.spec.flags & F_RDONLY_PROG == 0;
        Some((
            self.buf().ptr_at(self.offset(0, 0)),
            self.spec.value_size as usize,
            writable,
        ))
    }

    fn value_len(&self) -> usize {
        if self.per_cpu() {
            self.elem * self.slots
        } else {
            self.spec.value_size as usize
        }
    }

    fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        let index = self.index(key)?.ok_or(MapError::NotFound)?;
        let mut out = vec![0; self.value_len()];
        self.buf().read(self.offset(index, 0), &mut out);
        Ok(out)
    }

    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        check_len("value", value.len(), self.value_len())?;
        let index = self.update_index(key, flags)?;
        self.buf().write(self.offset(index, 0), value);
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        check_len("key", key.len(), 4)?;
        Err(MapError::Invalid("array elements cannot be deleted".into()))
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        let next = match key {
            None => 0,
            Some(k) => match self.index(k)? {
                None => 0,
                Some(i) if i + 1 == self.spec.max_entries as usize => {
                    return Err(MapError::NotFound);
                }
                Some(i) => i as u32 + 1,
            },
        };
        Ok(next.to_ne_bytes().to_vec())
    }

    #[inline]
    fn lookup_value<'a>(
        &'a self,
        key: &[u8],
        cpu: usize,
        _guard: &'a RunGuard,
    ) -> Option<ValueRef<'a>> {
        if cpu >= self.slots && self.per_cpu() {
            return None;
        }
        let slot = if self.per_cpu() { cpu } else { 0 };
        let index = self.index(key).ok()??;
        let ptr = self.buf().ptr_at(self.offset(index, slot));
        let writable = self.spec.flags & F_RDONLY_PROG == 0;
        Some(ValueRef::new(ptr, self.spec.value_size as usize, writable))
    }

    fn prog_update(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: usize,
    ) -> Result<(), MapError> {
        check_prog_write(&self.spec)?;
        check_len("value", value.len(), self.spec.value_size as usize)?;
        let slot = if self.per_cpu() { cpu } else { 0 };
        if slot >= self.slots {
            return Err(MapError::Invalid(format!("no CPU slot {cpu}")));
        }
        let index = self.update_index(key, flags)?;
        self.buf().write(self.offset(index, slot), value);
        Ok(())
    }

    fn prog_delete(&self, key: &[u8]) -> Result<(), MapError> {
        check_prog_write(&self.spec)?;
        check_len("key", key.len(), 4)?;
        Err(MapError::Invalid("array elements cannot be deleted".into()))
    }
}

impl Drop for ArrayMap {
    fn drop(&mut self) {
        self.memory.uncharge(self.charged);
        // Runs may still hold pointers into the block under their guards: free it only
        // after every current guard is gone (the module's reclamation invariant).
        if let Some(buf) = self.buf.take() {
            crossbeam_epoch::pin().defer(move || drop(buf));
        }
    }
}
