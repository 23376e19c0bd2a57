//! Kernel maps: `BPF_MAP_CREATE` and the element, freeze and batch commands.
//!
//! Every operation checks the sizes of the buffers it hands the kernel against the map's
//! key and value sizes first, because the kernel reads and writes exactly that many bytes
//! behind the pointers: a wrong size is a [`KernelError::Invalid`], never a stray access.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::error::KernelError;
use crate::sys::{Attr, Bpf, Cmd, Errno};

/// A map type (`enum bpf_map_type`). Open-ended: the kernel adds types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapType(pub u32);

impl MapType {
    /// `BPF_MAP_TYPE_HASH`
    pub const HASH: MapType = MapType(1);
    /// `BPF_MAP_TYPE_ARRAY`
    pub const ARRAY: MapType = MapType(2);
    /// `BPF_MAP_TYPE_PROG_ARRAY`
    pub const PROG_ARRAY: MapType = MapType(3);
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`
    pub const PERF_EVENT_ARRAY: MapType = MapType(4);
    /// `BPF_MAP_TYPE_PERCPU_HASH`
    pub const PERCPU_HASH: MapType = MapType(5);
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`
    pub const PERCPU_ARRAY: MapType = MapType(6);
    /// `BPF_MAP_TYPE_LRU_HASH`
    pub const LRU_HASH: MapType = MapType(9);
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`
    pub const LRU_PERCPU_HASH: MapType = MapType(10);
    /// `BPF_MAP_TYPE_LPM_TRIE`
    pub const LPM_TRIE: MapType = MapType(11);
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`
    pub const ARRAY_OF_MAPS: MapType = MapType(12);
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`
    pub const HASH_OF_MAPS: MapType = MapType(13);
    /// `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`
    pub const PERCPU_CGROUP_STORAGE: MapType = MapType(21);
    /// `BPF_MAP_TYPE_QUEUE`
    pub const QUEUE: MapType = MapType(22);
    /// `BPF_MAP_TYPE_STACK`
    pub const STACK: MapType = MapType(23);
    /// `BPF_MAP_TYPE_RINGBUF`
    pub const RINGBUF: MapType = MapType(27);
    /// `BPF_MAP_TYPE_BLOOM_FILTER`
    pub const BLOOM_FILTER: MapType = MapType(30);

    /// Whether user space sees one value per possible CPU.
    pub const fn is_per_cpu(self) -> bool {
        matches!(self.0, 5 | 6 | 10 | 21)
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            1 => "hash",
            2 => "array",
            3 => "prog_array",
            4 => "perf_event_array",
            5 => "percpu_hash",
            6 => "percpu_array",
            9 => "lru_hash",
            10 => "lru_percpu_hash",
            11 => "lpm_trie",
            12 => "array_of_maps",
            13 => "hash_of_maps",
            21 => "percpu_cgroup_storage",
            22 => "queue",
            23 => "stack",
            27 => "ringbuf",
            30 => "bloom_filter",
            n => return write!(f, "map type {n}"),
        };
        f.write_str(name)
    }
}

/// `BPF_F_NO_PREALLOC`
pub const F_NO_PREALLOC: u32 = 1;
/// `BPF_F_NUMA_NODE`
pub const F_NUMA_NODE: u32 = 1 << 2;
/// `BPF_F_RDONLY_PROG`: programs may not write the map.
pub const F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`
pub const F_MMAPABLE: u32 = 1 << 10;

/// Update flags: create or replace (`BPF_ANY`).
pub const UPDATE_ANY: u64 = 0;
/// Update flags: create only (`BPF_NOEXIST`).
pub const UPDATE_NOEXIST: u64 = 1;
/// Update flags: replace only (`BPF_EXIST`).
pub const UPDATE_EXIST: u64 = 2;
/// Element flags: take the value's `bpf_spin_lock` (`BPF_F_LOCK`).
pub const F_LOCK: u64 = 4;

mod off {
    pub const MAP_TYPE: usize = 0;
    pub const KEY_SIZE: usize = 4;
    pub const VALUE_SIZE: usize = 8;
    pub const MAX_ENTRIES: usize = 12;
    pub const MAP_FLAGS: usize = 16;
    pub const INNER_MAP_FD: usize = 20;
    pub const NUMA_NODE: usize = 24;
    pub const MAP_NAME: usize = 28;
    pub const MAP_IFINDEX: usize = 44;
    pub const BTF_FD: usize = 48;
    pub const BTF_KEY_TYPE_ID: usize = 52;
    pub const BTF_VALUE_TYPE_ID: usize = 56;
    pub const BTF_VMLINUX_VALUE_TYPE_ID: usize = 60;
    pub const MAP_EXTRA: usize = 64;
    pub const VALUE_TYPE_BTF_OBJ_FD: usize = 72;
    pub const MAP_TOKEN_FD: usize = 76;
    pub const CREATE_SIZE: usize = 80;

    // Element commands.
    pub const ELEM_MAP_FD: usize = 0;
    pub const ELEM_KEY: usize = 8;
    pub const ELEM_VALUE: usize = 16;
    pub const ELEM_FLAGS: usize = 24;
    pub const ELEM_SIZE: usize = 32;

    // Batch commands.
    pub const IN_BATCH: usize = 0;
    pub const OUT_BATCH: usize = 8;
    pub const KEYS: usize = 16;
    pub const VALUES: usize = 24;
    pub const COUNT: usize = 32;
    pub const BATCH_MAP_FD: usize = 36;
    pub const ELEM_FLAGS_BATCH: usize = 40;
    pub const BATCH_SIZE: usize = 56;
}

/// What to create: the fields of `BPF_MAP_CREATE`, including those libbpf fills from an
/// object's BTF. Build with [`MapCreate::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct MapCreate<'a> {
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
    /// Name (at most 15 bytes kept; letters, digits, `_` and `.`).
    pub name: String,
    /// Template inner map, for map-in-map types.
    pub inner_map: Option<BorrowedFd<'a>>,
    /// NUMA node (sets [`F_NUMA_NODE`]).
    pub numa_node: Option<u32>,
    /// Device to offload to (0: none).
    pub ifindex: u32,
    /// BTF object describing key and value.
    pub btf: Option<BorrowedFd<'a>>,
    /// BTF type id of the key.
    pub btf_key_type_id: u32,
    /// BTF type id of the value.
    pub btf_value_type_id: u32,
    /// BTF type id of a struct_ops value in vmlinux.
    pub btf_vmlinux_value_type_id: u32,
    /// Type-specific extra (bloom filter hash count, arena start address).
    pub map_extra: u64,
    /// Module BTF object holding the value type.
    pub value_type_btf_obj: Option<BorrowedFd<'a>>,
    /// BPF token delegating the permission.
    pub token: Option<BorrowedFd<'a>>,
}

impl<'a> MapCreate<'a> {
    /// A map with these sizes and no flags, name or BTF.
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> Self {
        MapCreate {
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            name: String::new(),
            inner_map: None,
            numa_node: None,
            ifindex: 0,
            btf: None,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
            btf_vmlinux_value_type_id: 0,
            map_extra: 0,
            value_type_btf_obj: None,
            token: None,
        }
    }

    /// Sets the name.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Sets the `BPF_F_*` flags.
    pub fn with_flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// Sets the template inner map.
    pub fn with_inner_map(mut self, inner: BorrowedFd<'a>) -> Self {
        self.inner_map = Some(inner);
        self
    }

    /// Sets the BTF object and the key and value type ids.
    pub fn with_btf(mut self, btf: BorrowedFd<'a>, key_type_id: u32, value_type_id: u32) -> Self {
        self.btf = Some(btf);
        self.btf_key_type_id = key_type_id;
        self.btf_value_type_id = value_type_id;
        self
    }

    /// Sets `map_extra`.
    pub fn with_map_extra(mut self, extra: u64) -> Self {
        self.map_extra = extra;
        self
    }

    fn attr(&self) -> Result<Attr, KernelError> {
        if !self
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err(KernelError::Invalid(format!(
                "map name `{}`: the kernel accepts only letters, digits, `_` and `.`",
                self.name.escape_debug()
            )));
        }
        let fd = |f: Option<BorrowedFd<'_>>| f.map_or(0, |f| f.as_raw_fd() as u32);
        let mut a = Attr::new(off::CREATE_SIZE);
        a.set_u32(off::MAP_TYPE, self.map_type.0);
        a.set_u32(off::KEY_SIZE, self.key_size);
        a.set_u32(off::VALUE_SIZE, self.value_size);
        a.set_u32(off::MAX_ENTRIES, self.max_entries);
        let mut flags = self.flags;
        if let Some(node) = self.numa_node {
            flags |= F_NUMA_NODE;
            a.set_u32(off::NUMA_NODE, node);
        }
        a.set_u32(off::MAP_FLAGS, flags);
        a.set_u32(off::INNER_MAP_FD, fd(self.inner_map));
        a.set_name(off::MAP_NAME, &self.name);
        a.set_u32(off::MAP_IFINDEX, self.ifindex);
        a.set_u32(off::BTF_FD, fd(self.btf));
        a.set_u32(off::BTF_KEY_TYPE_ID, self.btf_key_type_id);
        a.set_u32(off::BTF_VALUE_TYPE_ID, self.btf_value_type_id);
        a.set_u32(
            off::BTF_VMLINUX_VALUE_TYPE_ID,
            self.btf_vmlinux_value_type_id,
        );
        a.set_u64(off::MAP_EXTRA, self.map_extra);
        a.set_u32(off::VALUE_TYPE_BTF_OBJ_FD, fd(self.value_type_btf_obj));
        a.set_u32(off::MAP_TOKEN_FD, fd(self.token));
        Ok(a)
    }
}

/// A kernel map, closed on drop.
#[derive(Debug)]
pub struct Map {
    bpf: Bpf,
    fd: OwnedFd,
    map_type: MapType,
    key_size: usize,
    value_size: usize,
    max_entries: u32,
    /// Bytes of one value as user space reads and writes it (per-CPU: one slot per CPU).
    value_len: usize,
}

/// The parts of `struct bpf_map_info` bpfvm uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// Map type.
    pub map_type: MapType,
    /// Kernel-wide map id.
    pub id: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// Flags.
    pub flags: u32,
    /// Name.
    pub name: String,
}

/// The path of a pin, NUL-terminated for the kernel.
fn pin_path(path: &std::path::Path) -> Result<std::ffi::CString, KernelError> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        KernelError::Invalid(format!("pin path {} contains a NUL byte", path.display()))
    })
}

impl Bpf {
    /// Opens the map pinned at `path` (`BPF_OBJ_GET`), checking it has the shape of
    /// `spec`: a pinned map of another shape is an error, as in libbpf.
    pub fn map_from_pin(
        &self,
        path: &std::path::Path,
        spec: &MapCreate<'_>,
    ) -> Result<Map, KernelError> {
        let cpath = pin_path(path)?;
        let mut a = Attr::new(16);
        a.set_ptr(0, cpath.as_bytes_with_nul());
        let fd = self
            .call_fd(Cmd::OBJ_GET, &mut a)
            .map_err(KernelError::syscall(Cmd::OBJ_GET))?;
        let value_size = spec.value_size as usize;
        let value_len = if spec.map_type.is_per_cpu() {
            value_size.next_multiple_of(8) * possible_cpus()?
        } else {
            value_size
        };
        let map = Map {
            bpf: self.clone(),
            fd,
            map_type: spec.map_type,
            key_size: spec.key_size as usize,
            value_size,
            max_entries: spec.max_entries,
            value_len,
        };
        let info = map.info()?;
        let want = (
            spec.map_type,
            spec.key_size,
            spec.value_size,
            spec.max_entries,
        );
        let have = (
            info.map_type,
            info.key_size,
            info.value_size,
            info.max_entries,
        );
        if want != have {
            return Err(KernelError::Invalid(format!(
                "the map pinned at {} is {} key {} value {} max_entries {}, the object wants {} key {} value {} max_entries {}",
                path.display(),
                have.0,
                have.1,
                have.2,
                have.3,
                want.0,
                want.1,
                want.2,
                want.3
            )));
        }
        Ok(map)
    }

    /// Adopts an open map file descriptor, taking its shape from the kernel
    /// (`BPF_OBJ_GET_INFO_BY_FD`); a descriptor that is not a map is an error.
    pub fn map_from_fd(&self, fd: OwnedFd) -> Result<Map, KernelError> {
        let mut map = Map {
            bpf: self.clone(),
            fd,
            map_type: MapType(0),
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            value_len: 0,
        };
        let info = map.info()?;
        map.map_type = info.map_type;
        map.key_size = info.key_size as usize;
        map.value_size = info.value_size as usize;
        map.max_entries = info.max_entries;
        map.value_len = if info.map_type.is_per_cpu() {
            map.value_size.next_multiple_of(8) * possible_cpus()?
        } else {
            map.value_size
        };
        Ok(map)
    }

    /// Creates a map (`BPF_MAP_CREATE`).
    pub fn map_create(&self, spec: &MapCreate<'_>) -> Result<Map, KernelError> {
        let mut attr = spec.attr()?;
        let fd = self
            .call_fd(Cmd::MAP_CREATE, &mut attr)
            .map_err(KernelError::syscall(Cmd::MAP_CREATE))?;
        let value_size = spec.value_size as usize;
        let value_len = if spec.map_type.is_per_cpu() {
            value_size.next_multiple_of(8) * possible_cpus()?
        } else {
            value_size
        };
        Ok(Map {
            bpf: self.clone(),
            fd,
            map_type: spec.map_type,
            key_size: spec.key_size as usize,
            value_size,
            max_entries: spec.max_entries,
            value_len,
        })
    }
}

/// The number of possible CPUs (`/sys/devices/system/cpu/possible`), which sizes per-CPU
/// values in user space.
pub fn possible_cpus() -> Result<usize, KernelError> {
    let path = "/sys/devices/system/cpu/possible";
    let text = std::fs::read_to_string(path)
        .map_err(|e| KernelError::Invalid(format!("reading {path}: {e}")))?;
    parse_cpu_list(text.trim())
        .ok_or_else(|| KernelError::Invalid(format!("{path}: cannot parse `{}`", text.trim())))
}

/// Counts the CPUs of a list such as `0-3,5,7-8`, as the highest CPU plus one (the
/// kernel sizes per-CPU copies by the highest possible CPU).
fn parse_cpu_list(list: &str) -> Option<usize> {
    let mut highest = None;
    for part in list.split(',') {
        let last = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                (a <= b).then_some(b)?
            }
            None => part.trim().parse().ok()?,
        };
        highest = highest.max(Some(last));
    }
    highest.map(|h| h + 1)
}

/// Where a batch walk stands: pass `None` to start, then the token each call returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchToken(Vec<u8>);

/// One batch of elements read from a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `count` keys, back to back.
    pub keys: Vec<u8>,
    /// `count` values, back to back.
    pub values: Vec<u8>,
    /// How many elements the batch holds.
    pub count: usize,
    /// Where the next batch starts; `None` when the walk is complete.
    pub next: Option<BatchToken>,
}

impl Map {
    /// The file descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The map type.
    pub fn map_type(&self) -> MapType {
        self.map_type
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> usize {
        self.key_size
    }

    /// Value size in bytes, as created.
    pub fn value_size(&self) -> usize {
        self.value_size
    }

    /// Bytes of one value as user space sees it: `value_size`, or for per-CPU maps
    /// `value_size` rounded up to 8 times the number of possible CPUs.
    pub fn value_len(&self) -> usize {
        self.value_len
    }

    /// Capacity.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    fn check(&self, what: &str, got: usize, want: usize) -> Result<(), KernelError> {
        if got == want {
            Ok(())
        } else {
            Err(KernelError::Invalid(format!(
                "{what} is {got} bytes, the {} map's is {want}",
                self.map_type
            )))
        }
    }

    /// The attributes of an element command; `key` is `None` only for "first key".
    fn elem_attr(&self, key: Option<&[u8]>, flags: u64) -> Result<Attr, KernelError> {
        let mut a = Attr::new(off::ELEM_SIZE);
        a.set_u32(off::ELEM_MAP_FD, self.fd.as_raw_fd() as u32);
        if let Some(key) = key {
            self.check("key", key.len(), self.key_size)?;
            a.set_ptr(off::ELEM_KEY, key);
        }
        a.set_u64(off::ELEM_FLAGS, flags);
        Ok(a)
    }

    /// Runs an element command that may answer `ENOENT` ("no such element").
    fn elem_call(&self, cmd: Cmd, attr: &mut Attr) -> Result<bool, KernelError> {
        match self.bpf.call(cmd, attr) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(errno) => Err(KernelError::Syscall { cmd, errno }),
        }
    }

    /// Reads the value of `key` into `value` (`BPF_MAP_LOOKUP_ELEM`); `false` when there is
    /// no such element. `flags` may be [`F_LOCK`].
    pub fn lookup_into(
        &self,
        key: &[u8],
        value: &mut [u8],
        flags: u64,
    ) -> Result<bool, KernelError> {
        self.check("value buffer", value.len(), self.value_len)?;
        let mut a = self.elem_attr(Some(key), flags)?;
        a.set_mut_ptr(off::ELEM_VALUE, value);
        self.elem_call(Cmd::MAP_LOOKUP_ELEM, &mut a)
    }

    /// The value of `key`, if there is one.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        let mut value = vec![0; self.value_len];
        Ok(self.lookup_into(key, &mut value, 0)?.then_some(value))
    }

    /// Writes `value` under `key` (`BPF_MAP_UPDATE_ELEM`) with `UPDATE_*` / [`F_LOCK`] flags.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), KernelError> {
        self.check("value", value.len(), self.value_len)?;
        let mut a = self.elem_attr(Some(key), flags)?;
        a.set_ptr(off::ELEM_VALUE, value);
        self.bpf
            .call(Cmd::MAP_UPDATE_ELEM, &mut a)
            .map(drop)
            .map_err(KernelError::syscall(Cmd::MAP_UPDATE_ELEM))
    }

    /// Removes `key` (`BPF_MAP_DELETE_ELEM`); `false` when it was not there.
    pub fn delete(&self, key: &[u8]) -> Result<bool, KernelError> {
        let mut a = self.elem_attr(Some(key), 0)?;
        self.elem_call(Cmd::MAP_DELETE_ELEM, &mut a)
    }

    /// The key after `key`, or the first key for `None` (`BPF_MAP_GET_NEXT_KEY`); `None`
    /// at the end.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, KernelError> {
        let mut next = vec![0; self.key_size];
        let mut a = self.elem_attr(key, 0)?;
        a.set_mut_ptr(off::ELEM_VALUE, &mut next);
        Ok(self
            .elem_call(Cmd::MAP_GET_NEXT_KEY, &mut a)?
            .then_some(next))
    }

    /// Every key, in the kernel's iteration order.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, KernelError> {
        let mut keys = Vec::new();
        let mut cur = self.next_key(None)?;
        while let Some(k) = cur {
            cur = self.next_key(Some(&k))?;
            keys.push(k);
        }
        Ok(keys)
    }

    /// Reads and removes `key`'s value (`BPF_MAP_LOOKUP_AND_DELETE_ELEM`; for queues and
    /// stacks pass an empty key to pop).
    pub fn lookup_and_delete(
        &self,
        key: &[u8],
        flags: u64,
    ) -> Result<Option<Vec<u8>>, KernelError> {
        let mut value = vec![0; self.value_len];
        let mut a = self.elem_attr(Some(key), flags)?;
        a.set_mut_ptr(off::ELEM_VALUE, &mut value);
        Ok(self
            .elem_call(Cmd::MAP_LOOKUP_AND_DELETE_ELEM, &mut a)?
            .then_some(value))
    }

    /// Pins the map at `path` in a BPF filesystem (`BPF_OBJ_PIN`).
    pub fn pin(&self, path: &std::path::Path) -> Result<(), KernelError> {
        let cpath = pin_path(path)?;
        let mut a = Attr::new(16);
        a.set_ptr(0, cpath.as_bytes_with_nul());
        a.set_u32(8, self.fd.as_raw_fd() as u32);
        self.bpf
            .call(Cmd::OBJ_PIN, &mut a)
            .map(drop)
            .map_err(KernelError::syscall(Cmd::OBJ_PIN))
    }

    /// What the kernel reports about the map (`BPF_OBJ_GET_INFO_BY_FD`).
    pub fn info(&self) -> Result<MapInfo, KernelError> {
        let mut info = vec![0u8; 88];
        let mut a = Attr::new(16);
        a.set_u32(0, self.fd.as_raw_fd() as u32);
        a.set_u32(4, info.len() as u32);
        a.set_mut_ptr(8, &mut info);
        self.bpf
            .call(Cmd::OBJ_GET_INFO_BY_FD, &mut a)
            .map_err(KernelError::syscall(Cmd::OBJ_GET_INFO_BY_FD))?;
        let u = |o: usize| u32::from_le_bytes([info[o], info[o + 1], info[o + 2], info[o + 3]]);
        let name = &info[24..40];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        Ok(MapInfo {
            map_type: MapType(u(0)),
            id: u(4),
            key_size: u(8),
            value_size: u(12),
            max_entries: u(16),
            flags: u(20),
            name: String::from_utf8_lossy(&name[..end]).into_owned(),
        })
    }

    /// Makes the map read-only for user space from now on (`BPF_MAP_FREEZE`).
    pub fn freeze(&self) -> Result<(), KernelError> {
        let mut a = Attr::new(off::ELEM_SIZE);
        a.set_u32(off::ELEM_MAP_FD, self.fd.as_raw_fd() as u32);
        self.bpf
            .call(Cmd::MAP_FREEZE, &mut a)
            .map(drop)
            .map_err(KernelError::syscall(Cmd::MAP_FREEZE))
    }

    /// Bytes of a batch token: hash maps use a 32-bit bucket index, the others a key.
    fn token_len(&self) -> usize {
        self.key_size.max(8)
    }

    fn batch_read(
        &self,
        cmd: Cmd,
        from: Option<&BatchToken>,
        max: usize,
    ) -> Result<Batch, KernelError> {
        let mut keys = vec![0; self.key_size * max];
        let mut values = vec![0; self.value_len * max];
        let mut out = vec![0; self.token_len()];
        let mut a = Attr::new(off::BATCH_SIZE);
        if let Some(t) = from {
            self.check("batch token", t.0.len(), self.token_len())?;
            a.set_ptr(off::IN_BATCH, &t.0);
        }
        a.set_mut_ptr(off::OUT_BATCH, &mut out);
        a.set_mut_ptr(off::KEYS, &mut keys);
        a.set_mut_ptr(off::VALUES, &mut values);
        a.set_u32(off::COUNT, u32::try_from(max).unwrap_or(u32::MAX));
        a.set_u32(off::BATCH_MAP_FD, self.fd.as_raw_fd() as u32);
        let done = match self.bpf.call(cmd, &mut a) {
            Ok(_) => false,
            // The walk reached the end; `count` says how many came with it.
            Err(Errno::ENOENT) => true,
            Err(errno) => return Err(KernelError::Syscall { cmd, errno }),
        };
        let count = (a.u32(off::COUNT) as usize).min(max);
        keys.truncate(self.key_size * count);
        values.truncate(self.value_len * count);
        Ok(Batch {
            keys,
            values,
            count,
            next: (!done).then_some(BatchToken(out)),
        })
    }

    /// Reads up to `max` elements starting at `from` (`BPF_MAP_LOOKUP_BATCH`).
    pub fn lookup_batch(
        &self,
        from: Option<&BatchToken>,
        max: usize,
    ) -> Result<Batch, KernelError> {
        self.batch_read(Cmd::MAP_LOOKUP_BATCH, from, max)
    }

    /// Reads and removes up to `max` elements (`BPF_MAP_LOOKUP_AND_DELETE_BATCH`).
    pub fn lookup_and_delete_batch(
        &self,
        from: Option<&BatchToken>,
        max: usize,
    ) -> Result<Batch, KernelError> {
        self.batch_read(Cmd::MAP_LOOKUP_AND_DELETE_BATCH, from, max)
    }

    /// Writes `keys.len() / key_size` elements (`BPF_MAP_UPDATE_BATCH`); returns how many
    /// were written (on error, the ones before the failing element stay written).
    pub fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        elem_flags: u64,
    ) -> Result<usize, KernelError> {
        let n = self.batch_count(keys)?;
        self.check("values", values.len(), n * self.value_len)?;
        let mut a = Attr::new(off::BATCH_SIZE);
        a.set_ptr(off::KEYS, keys);
        a.set_ptr(off::VALUES, values);
        a.set_u32(off::COUNT, n as u32);
        a.set_u32(off::BATCH_MAP_FD, self.fd.as_raw_fd() as u32);
        a.set_u64(off::ELEM_FLAGS_BATCH, elem_flags);
        self.bpf
            .call(Cmd::MAP_UPDATE_BATCH, &mut a)
            .map(|_| a.u32(off::COUNT) as usize)
            .map_err(KernelError::syscall(Cmd::MAP_UPDATE_BATCH))
    }

    /// Removes the given keys (`BPF_MAP_DELETE_BATCH`); returns how many were removed.
    pub fn delete_batch(&self, keys: &[u8]) -> Result<usize, KernelError> {
        let n = self.batch_count(keys)?;
        let mut a = Attr::new(off::BATCH_SIZE);
        a.set_ptr(off::KEYS, keys);
        a.set_u32(off::COUNT, n as u32);
        a.set_u32(off::BATCH_MAP_FD, self.fd.as_raw_fd() as u32);
        self.bpf
            .call(Cmd::MAP_DELETE_BATCH, &mut a)
            .map(|_| a.u32(off::COUNT) as usize)
            .map_err(KernelError::syscall(Cmd::MAP_DELETE_BATCH))
    }

    fn batch_count(&self, keys: &[u8]) -> Result<usize, KernelError> {
        if self.key_size == 0 || !keys.len().is_multiple_of(self.key_size) {
            return Err(KernelError::Invalid(format!(
                "batch keys: {} bytes is not a whole number of {}-byte keys",
                keys.len(),
                self.key_size
            )));
        }
        let n = keys.len() / self.key_size;
        u32::try_from(n)
            .map(|_| n)
            .map_err(|_| KernelError::Invalid(format!("batch of {n} elements is too large")))
    }
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Some(9));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list(""), None);
    }
}
