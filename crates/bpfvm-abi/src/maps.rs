//! Map types, specs and errors, as the kernel defines them.

use std::fmt;

/// `enum bpf_map_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(u32)]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH`
    Hash = 1,
    /// `BPF_MAP_TYPE_ARRAY`
    Array = 2,
    /// `BPF_MAP_TYPE_PROG_ARRAY`
    ProgArray = 3,
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`
    PerfEventArray = 4,
    /// `BPF_MAP_TYPE_PERCPU_HASH`
    PercpuHash = 5,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`
    PercpuArray = 6,
    /// `BPF_MAP_TYPE_STACK_TRACE`
    StackTrace = 7,
    /// `BPF_MAP_TYPE_CGROUP_ARRAY`
    CgroupArray = 8,
    /// `BPF_MAP_TYPE_LRU_HASH`
    LruHash = 9,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`
    LruPercpuHash = 10,
    /// `BPF_MAP_TYPE_LPM_TRIE`
    LpmTrie = 11,
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`
    ArrayOfMaps = 12,
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`
    HashOfMaps = 13,
    /// `BPF_MAP_TYPE_QUEUE`
    Queue = 22,
    /// `BPF_MAP_TYPE_STACK`
    Stack = 23,
    /// `BPF_MAP_TYPE_RINGBUF`
    Ringbuf = 27,
    /// `BPF_MAP_TYPE_BLOOM_FILTER`
    BloomFilter = 30,
}

impl MapType {
    /// Every type bpfvm knows.
    pub const ALL: [MapType; 17] = [
        MapType::Hash,
        MapType::Array,
        MapType::ProgArray,
        MapType::PerfEventArray,
        MapType::PercpuHash,
        MapType::PercpuArray,
        MapType::StackTrace,
        MapType::CgroupArray,
        MapType::LruHash,
        MapType::LruPercpuHash,
        MapType::LpmTrie,
        MapType::ArrayOfMaps,
        MapType::HashOfMaps,
        MapType::Queue,
        MapType::Stack,
        MapType::Ringbuf,
        MapType::BloomFilter,
    ];

    /// The type with the kernel's number `n`.
    pub fn from_u32(n: u32) -> Option<MapType> {
        MapType::ALL.into_iter().find(|t| *t as u32 == n)
    }

    /// The kernel's name without the prefix, lowercase (`hash`, `percpu_array`…), as
    /// bpftool prints it.
    pub const fn name(self) -> &'static str {
        match self {
            MapType::Hash => "hash",
            MapType::Array => "array",
            MapType::ProgArray => "prog_array",
            MapType::PerfEventArray => "perf_event_array",
            MapType::PercpuHash => "percpu_hash",
            MapType::PercpuArray => "percpu_array",
            MapType::StackTrace => "stack_trace",
            MapType::CgroupArray => "cgroup_array",
            MapType::LruHash => "lru_hash",
            MapType::LruPercpuHash => "lru_percpu_hash",
            MapType::LpmTrie => "lpm_trie",
            MapType::ArrayOfMaps => "array_of_maps",
            MapType::HashOfMaps => "hash_of_maps",
            MapType::Queue => "queue",
            MapType::Stack => "stack",
            MapType::Ringbuf => "ringbuf",
            MapType::BloomFilter => "bloom_filter",
        }
    }

    /// Whether each CPU (each bpfvm worker slot) has its own copy of every value.
    pub const fn is_per_cpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuHash | MapType::PercpuArray | MapType::LruPercpuHash
        )
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Update flags: create or replace (`BPF_ANY`).
pub const UPDATE_ANY: u64 = 0;
/// Update flags: create only (`BPF_NOEXIST`).
pub const UPDATE_NOEXIST: u64 = 1;
/// Update flags: replace only (`BPF_EXIST`).
pub const UPDATE_EXIST: u64 = 2;
/// Element flags: take the value's `bpf_spin_lock` (`BPF_F_LOCK`).
pub const F_LOCK: u64 = 4;

/// `BPF_F_NO_PREALLOC`
pub const F_NO_PREALLOC: u32 = 1;
/// `BPF_F_NO_COMMON_LRU`
pub const F_NO_COMMON_LRU: u32 = 1 << 1;
/// `BPF_F_NUMA_NODE`
pub const F_NUMA_NODE: u32 = 1 << 2;
/// `BPF_F_RDONLY`: user space may only read.
pub const F_RDONLY: u32 = 1 << 3;
/// `BPF_F_WRONLY`: user space may only write.
pub const F_WRONLY: u32 = 1 << 4;
/// `BPF_F_ZERO_SEED`: a fixed hash seed (reproducible iteration order).
pub const F_ZERO_SEED: u32 = 1 << 6;
/// `BPF_F_RDONLY_PROG`: programs may only read.
pub const F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_WRONLY_PROG`: programs may only write.
pub const F_WRONLY_PROG: u32 = 1 << 8;
/// `BPF_F_MMAPABLE`
pub const F_MMAPABLE: u32 = 1 << 10;

/// What a map is: the fields of `BPF_MAP_CREATE` that give it its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// Type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU, for per-CPU types).
    pub value_size: u32,
    /// Capacity (for ring buffers: bytes, a power-of-two multiple of the page size).
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
    /// Type-specific extra (bloom filter: number of hash functions, 0 meaning 5).
    pub map_extra: u64,
    /// Template of the inner maps of a map-in-map type.
    pub inner: Option<Box<MapSpec>>,
}

impl MapSpec {
    /// A spec with no flags, extra or inner map.
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> MapSpec {
        MapSpec {
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            map_extra: 0,
            inner: None,
        }
    }

    /// Checks the spec as the kernel's `map_alloc_check` functions do; the error names the
    /// rule (the kernel answers `EINVAL`, or `E2BIG` for sizes past its limits).
    pub fn validate(&self) -> Result<(), MapError> {
        let invalid = |why: &str| Err(MapError::Invalid(format!("{} map: {why}", self.map_type)));
        // The kernel's KMALLOC_MAX_SIZE-style bound on one value.
        const MAX_VALUE_SIZE: u32 = 1 << 20;
        if self.max_entries == 0 && !matches!(self.map_type, MapType::Ringbuf) {
            return invalid("max_entries must not be 0");
        }
        if self.value_size > MAX_VALUE_SIZE {
            return Err(MapError::TooBig(format!(
                "{} map: value_size {} exceeds {MAX_VALUE_SIZE}",
                self.map_type, self.value_size
            )));
        }
        match self.map_type {
            MapType::Array
            | MapType::PercpuArray
            | MapType::ProgArray
            | MapType::PerfEventArray
            | MapType::CgroupArray
            | MapType::ArrayOfMaps => {
                if self.key_size != 4 {
                    return invalid("key_size must be 4");
                }
            }
            MapType::Queue | MapType::Stack | MapType::BloomFilter => {
                if self.key_size != 0 {
                    return invalid("key_size must be 0");
                }
            }
            MapType::Ringbuf => {
                if self.key_size != 0 || self.value_size != 0 {
                    return invalid("key_size and value_size must be 0");
                }
                let n = self.max_entries;
                if n == 0 || !n.is_power_of_two() || !n.is_multiple_of(4096) {
                    return invalid("max_entries must be a power-of-two multiple of the page size");
                }
                return Ok(());
            }
            _ => {
                if self.key_size == 0 {
                    return invalid("key_size must not be 0");
                }
            }
        }
        if self.value_size == 0
            && !matches!(self.map_type, MapType::ProgArray | MapType::CgroupArray)
        {
            return invalid("value_size must not be 0");
        }
        if matches!(
            self.map_type,
            MapType::ProgArray
                | MapType::PerfEventArray
                | MapType::CgroupArray
                | MapType::ArrayOfMaps
                | MapType::HashOfMaps
        ) && self.value_size != 4
        {
            return invalid("value_size must be 4 (a file descriptor)");
        }
        if matches!(self.map_type, MapType::ArrayOfMaps | MapType::HashOfMaps)
            && self.inner.is_none()
        {
            return invalid("a map-in-map needs an inner map template");
        }
        Ok(())
    }
}

/// How a map operation fails, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// No such element (`ENOENT`).
    #[error("no such element (ENOENT)")]
    NotFound,
    /// The element exists and `BPF_NOEXIST` was given (`EEXIST`).
    #[error("element exists (EEXIST)")]
    Exists,
    /// The map is full (`E2BIG`), or a size is beyond a limit.
    #[error("{0} (E2BIG)")]
    TooBig(String),
    /// An invalid argument: a bad flag, key or spec (`EINVAL`).
    #[error("{0} (EINVAL)")]
    Invalid(String),
    /// The memory cap or the allocator refused (`ENOMEM`).
    #[error("out of map memory: {0} (ENOMEM)")]
    NoMemory(String),
    /// The operation is not permitted on this map (`EPERM`): a frozen or read-only map.
    #[error("{0} (EPERM)")]
    NotPermitted(String),
    /// The map type does not support the operation (`ENOTSUPP`, 524 in the kernel).
    #[error("{0} (ENOTSUPP)")]
    NotSupported(String),
    /// Busy (`EBUSY`): a lock could not be taken.
    #[error("busy (EBUSY)")]
    Busy,
    /// No room left (`ENOSPC`): a full LPM trie on insert.
    #[error("{0} (ENOSPC)")]
    NoSpace(String),
    /// The operation is not supported by this map type, as POSIX says it (`EOPNOTSUPP`,
    /// 95): bloom filters' delete, pop and get-next-key.
    #[error("{0} (EOPNOTSUPP)")]
    OpNotSupported(String),
}

impl MapError {
    /// The errno value.
    pub fn errno(&self) -> i32 {
        match self {
            MapError::NotFound => 2,
            MapError::Exists => 17,
            MapError::TooBig(_) => 7,
            MapError::Invalid(_) => 22,
            MapError::NoMemory(_) => 12,
            MapError::NotPermitted(_) => 1,
            MapError::NotSupported(_) => 524,
            MapError::Busy => 16,
            MapError::NoSpace(_) => 28,
            MapError::OpNotSupported(_) => 95,
        }
    }

    /// What a helper returns for it: the negative errno.
    pub fn helper_return(&self) -> i64 {
        -i64::from(self.errno())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_numbering_and_names() {
        assert_eq!(MapType::from_u32(1), Some(MapType::Hash));
        assert_eq!(MapType::from_u32(27), Some(MapType::Ringbuf));
        assert_eq!(MapType::from_u32(99), None);
        assert_eq!(MapType::LruPercpuHash.to_string(), "lru_percpu_hash");
        assert!(MapType::PercpuArray.is_per_cpu() && !MapType::Array.is_per_cpu());
    }

    #[test]
    fn specs_are_checked_like_the_kernel() {
        assert!(MapSpec::new(MapType::Hash, 4, 8, 16).validate().is_ok());
        assert!(MapSpec::new(MapType::Array, 8, 8, 16).validate().is_err());
        assert!(MapSpec::new(MapType::Hash, 4, 0, 16).validate().is_err());
        assert!(MapSpec::new(MapType::Hash, 4, 8, 0).validate().is_err());
        assert!(
            MapSpec::new(MapType::Ringbuf, 0, 0, 4096)
                .validate()
                .is_ok()
        );
        assert!(
            MapSpec::new(MapType::Ringbuf, 0, 0, 6000)
                .validate()
                .is_err()
        );
        assert!(MapSpec::new(MapType::Queue, 0, 8, 4).validate().is_ok());
        assert_eq!(MapError::Exists.helper_return(), -17);
    }
}
