//! Program arrays (`BPF_MAP_TYPE_PROG_ARRAY`, the fd-array part of
//! `kernel/bpf/arraymap.c`): the jump table of `bpf_tail_call`.
//!
//! The host fills slots with [`ProgArrayMap::set`] (the kernel's update with a program
//! fd) and empties them with [`ProgArrayMap::clear`] or [`Map::delete`]; programs reach
//! them only through `bpf_tail_call` ([`Map::program_at`]). Kernel semantics kept:
//! an index `>= max_entries` is `E2BIG` on set and delete, deleting an empty slot is
//! `ENOENT`, iteration visits every index like an array. Differences: there are no file
//! descriptors here, so a host `lookup` (the kernel answers a program id) and an
//! `update` with raw fd bytes are `NotSupported`; programs cannot look up, update or
//! delete (the verifier forbids it).

use std::sync::{Arc, PoisonError, RwLock};

use bpfvm_abi::{MapError, MapSpec};

use super::{
    Map, MapConfig, MemoryAccountant, check_host_read, check_host_write, check_len, not_supported,
};
use crate::LoadedProgram;

/// Bytes charged per slot.
const SLOT_BYTES: u64 = 8;

/// A program array.
#[derive(Debug)]
pub struct ProgArrayMap {
    spec: MapSpec,
    slots: RwLock<Vec<Option<Arc<LoadedProgram>>>>,
    charged: u64,
    memory: Arc<MemoryAccountant>,
}

impl ProgArrayMap {
    /// An array of `max_entries` empty slots, charged to `config`'s accountant.
    pub fn new(spec: &MapSpec, config: &MapConfig) -> Result<ProgArrayMap, MapError> {
        let charged = u64::from(spec.max_entries) * SLOT_BYTES;
        let n = spec.max_entries as usize;
        let slots = config
            .memory
            .charged_vec(charged, n, || None, "program slots")?;
        Ok(ProgArrayMap {
            spec: spec.clone(),
            slots: RwLock::new(slots),
            charged,
            memory: Arc::clone(&config.memory),
        })
    }

    fn index(&self, index: u32) -> Result<usize, MapError> {
        if index >= self.spec.max_entries {
            return Err(MapError::TooBig(format!(
                "index {index} out of range of {} entries",
                self.spec.max_entries
            )));
        }
        Ok(index as usize)
    }

    /// Puts `program` at `index` (replacing what was there): `E2BIG` out of range,
    /// `EPERM` for a `BPF_F_RDONLY` map.
    pub fn set(&self, index: u32, program: Arc<LoadedProgram>) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        let i = self.index(index)?;
        let old = self
            .slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(i)
            .map(|s| s.replace(program));
        drop(old);
        Ok(())
    }

    /// Empties `index`: `E2BIG` out of range, `ENOENT` when already empty.
    pub fn clear(&self, index: u32) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        let i = self.index(index)?;
        let old = self
            .slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(i)
            .and_then(Option::take);
        old.map(drop).ok_or(MapError::NotFound)
    }

    fn key_index(key: &[u8]) -> Result<u32, MapError> {
        check_len("key", key.len(), 4)?;
        Ok(u32::from_ne_bytes([key[0], key[1], key[2], key[3]]))
    }
}

impl Map for ProgArrayMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn value_len(&self) -> usize {
        4
    }

    /// `NotSupported`: slots hold programs, not ids (use [`Map::program_at`]).
    fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        Self::key_index(key)?;
        Err(not_supported(&self.spec, "lookup of program fds"))
    }

    /// `NotSupported`: use [`ProgArrayMap::set`].
    fn update(&self, key: &[u8], _value: &[u8], _flags: u64) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        Self::key_index(key)?;
        Err(not_supported(
            &self.spec,
            "update with program fds (use set)",
        ))
    }

    /// Empties the slot, as [`ProgArrayMap::clear`].
    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.clear(Self::key_index(key)?)
    }

    /// Every index in order, as for arrays.
    fn next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        let next = match key {
            None => 0,
            Some(k) => match Self::key_index(k)? {
                i if i >= self.spec.max_entries => 0,
                i if i + 1 == self.spec.max_entries => return Err(MapError::NotFound),
                i => i + 1,
            },
        };
        Ok(next.to_ne_bytes().to_vec())
    }
    fn program_at(&self, index: u32) -> Option<Arc<LoadedProgram>> {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(index as usize)?
            .clone()
    }
}

impl Drop for ProgArrayMap {
    fn drop(&mut self) {
        self.memory.uncharge(self.charged);
    }
}
