//! Typed handles for the map kinds without keys and values in the hash/array sense: ring
//! buffers and perf buffers (the host consumes records), program arrays (the host sets
//! programs), queues and stacks (push and pop), LPM tries (longest-prefix match) and
//! bloom filters (membership). Each checks the map's type and sizes when made, so a
//! mismatch is an [`Error::MapShape`], never a panic.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bpfvm_abi::{MapError, MapType};
use bpfvm_runtime::maps::{
    BloomFilterMap, PerfEventArrayMap, ProgArrayMap, QueueStackMap, RingBufConsumer, RingBufMap,
};
use bytemuck::Pod;

use crate::error::{Error, map_err};
use crate::object::{MapRef, Program};
use crate::typed::{check_sizes, read, shape};

/// The concrete runtime map behind `m`, or a shape error (a map of the right type number
/// but another implementation, say one a host wrapped).
fn concrete<'a, T: 'static>(m: &'a MapRef, what: &str) -> Result<&'a T, Error> {
    m.map
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| shape(&m.name, format!("is not bpfvm's own {what}")))
}

/// The host's consumer of a ring buffer map (`BPF_MAP_TYPE_RINGBUF`), like libbpf's
/// `ring_buffer` or aya's `RingBuf`: records come out in the order programs reserved
/// them, up to the first one still being written; discarded ones are skipped.
///
/// ```
/// use std::sync::Arc;
/// use bpfvm::RingBuf;
/// use bpfvm_abi::{MapSpec, MapType};
/// use bpfvm_runtime::maps::{Map, MapConfig, RingBufMap};
/// let ring = Arc::new(RingBufMap::new(&MapSpec::new(MapType::Ringbuf, 0, 0, 4096), &MapConfig::new(1, 1 << 20))?);
/// let events = RingBuf::new(bpfvm::MapRef::from_map("events", ring.clone()))?;
/// // What a program's bpf_ringbuf_output does:
/// ring.ring().output(b"first", 0)?;
/// ring.ring().output(&7u32.to_ne_bytes(), 0)?;
/// let mut seen = Vec::new();
/// assert_eq!(events.consume(|r| seen.push(r.to_vec())), 2);
/// assert_eq!(seen, vec![b"first".to_vec(), 7u32.to_ne_bytes().to_vec()]);
/// assert_eq!(events.consume(|_| ()), 0); // consumed: the ring is empty
/// ring.ring().output(&9u64.to_ne_bytes(), 0)?;
/// assert_eq!(events.drain::<u64>()?, vec![9]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RingBuf {
    name: String,
    consumer: RingBufConsumer,
}

impl RingBuf {
    /// A consumer of `map`, which must be a ring buffer. One consumer at a time reads a
    /// ring (a second one waits for the first to finish each call).
    pub fn new(map: MapRef) -> Result<RingBuf, Error> {
        check_sizes(&map, &[MapType::Ringbuf], "a ring buffer", 0, 0)?;
        let consumer = concrete::<RingBufMap>(&map, "ring buffer")?.consumer();
        Ok(RingBuf {
            name: map.name,
            consumer,
        })
    }

    /// Calls `f` on every committed record now in the ring, in order, and frees them.
    /// Returns how many there were. Do not consume this ring from inside `f`.
    pub fn consume(&self, f: impl FnMut(&[u8])) -> usize {
        self.consumer.consume(f)
    }

    /// As [`RingBuf::consume`]; if there was nothing, waits up to `timeout` for a
    /// program to commit a record (with a wakeup) and consumes again (libbpf's
    /// `ring_buffer__poll`). Returns how many records `f` saw.
    pub fn poll(&self, timeout: Duration, f: impl FnMut(&[u8])) -> usize {
        self.consumer.poll(timeout, f)
    }

    /// Consumes every record now in the ring as a `T` (records are `#[repr(C)]` structs
    /// a program reserved with `sizeof`). A record of another size is an
    /// [`Error::MapShape`]; the ring is drained either way.
    pub fn drain<T: Pod>(&self) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        let mut bad = None;
        self.consumer
            .consume(|r| match read::<T>(&self.name, "record", r) {
                Ok(v) => out.push(v),
                Err(e) => {
                    bad.get_or_insert(e);
                }
            });
        match bad {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// The host's reader of a perf event array's output buffers (`BPF_MAP_TYPE_PERF_EVENT_ARRAY`
/// with `bpf_perf_event_output`), like libbpf's `perf_buffer`. Every CPU slot has its own
/// buffer; a sample that does not fit is counted as lost and reported as such.
///
/// ```
/// use std::sync::Arc;
/// use bpfvm::PerfBuffer;
/// use bpfvm_abi::{MapSpec, MapType};
/// use bpfvm_runtime::maps::{MapConfig, PerfEventArrayMap, F_CURRENT_CPU, perf_sample_record_len};
/// // Two CPU slots, each with room for two 8-byte samples (24-byte records).
/// let array = Arc::new(PerfEventArrayMap::with_buffer_size(
///     &MapSpec::new(MapType::PerfEventArray, 4, 4, 2),
///     &MapConfig::new(2, 1 << 20),
///     2 * perf_sample_record_len(8),
/// )?);
/// let events = PerfBuffer::new(bpfvm::MapRef::from_map("events", array.clone()))?;
/// // What bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, ...) does on CPUs 1 and 0:
/// array.output(1, F_CURRENT_CPU, &[b"1st on 1"])?;
/// array.output(0, F_CURRENT_CPU, &[b"1st on 0"])?;
/// array.output(0, F_CURRENT_CPU, &[b"2nd on 0"])?;
/// assert!(array.output(0, F_CURRENT_CPU, &[b"3rd on 0"]).is_err()); // full: lost
/// let (mut samples, mut lost) = (Vec::new(), Vec::new());
/// let n = events.consume(|cpu, s| samples.push((cpu, s.to_vec())), |cpu, k| lost.push((cpu, k)));
/// assert_eq!(n, 3);
/// // In CPU order, then in output order; the lost record where the sample would have been.
/// assert_eq!(samples, vec![
///     (0, b"1st on 0".to_vec()),
///     (0, b"2nd on 0".to_vec()),
///     (1, b"1st on 1".to_vec()),
/// ]);
/// assert_eq!(lost, vec![(0, 1)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PerfBuffer {
    buffer: bpfvm_runtime::maps::PerfBuffer,
}

impl PerfBuffer {
    /// A reader of `map`, which must be a perf event array.
    pub fn new(map: MapRef) -> Result<PerfBuffer, Error> {
        check_sizes(&map, &[MapType::PerfEventArray], "a perf event array", 4, 4)?;
        let buffer = concrete::<PerfEventArrayMap>(&map, "perf event array")?.perf_buffer();
        Ok(PerfBuffer { buffer })
    }

    /// Drains every CPU's buffer, in CPU order: `on_sample(cpu, bytes)` per sample,
    /// `on_lost(cpu, count)` where samples were lost. Returns the samples delivered.
    pub fn consume(
        &self,
        on_sample: impl FnMut(usize, &[u8]),
        on_lost: impl FnMut(usize, u64),
    ) -> usize {
        self.buffer.consume(on_sample, on_lost)
    }

    /// As [`PerfBuffer::consume`]; if there was nothing, waits up to `timeout` for an
    /// output and consumes again (libbpf's `perf_buffer__poll`).
    pub fn poll(
        &self,
        timeout: Duration,
        on_sample: impl FnMut(usize, &[u8]),
        on_lost: impl FnMut(usize, u64),
    ) -> usize {
        self.buffer.poll(timeout, on_sample, on_lost)
    }
}

/// A program array (`BPF_MAP_TYPE_PROG_ARRAY`): the slots `bpf_tail_call` jumps through.
///
/// ```
/// use std::sync::Arc;
/// use bpfvm::{ProgArray, Program};
/// use bpfvm_abi::{MapSpec, MapType};
/// use bpfvm_runtime::maps::{MapConfig, create_map};
/// use bpfvm_runtime::{LoadedProgram, ProgramType};
/// let map = create_map(&MapSpec::new(MapType::ProgArray, 4, 4, 8), &MapConfig::new(1, 1 << 20))?;
/// let jumps = ProgArray::new(bpfvm::MapRef::from_map("jumps", map.into()))?;
/// let slots = bpfvm_isa::assemble("r0 = 7\nexit", bpfvm_isa::Dialect::Llvm)?;
/// let seven = LoadedProgram::new(
///     bpfvm_isa::Program::from_slots(slots)?,
///     ProgramType::Kernel(bpfvm_abi::ProgramType::SocketFilter),
/// )?;
/// jumps.set(3, &Program::from_loaded("seven", Arc::new(seven)))?;
/// assert!(jumps.is_set(3) && !jumps.is_set(2));
/// assert!(jumps.clear(3)?);
/// assert!(!jumps.clear(3)?); // already empty
/// assert!(jumps.set(8, &Program::from_loaded("x", jumps_program()?)).is_err()); // E2BIG
/// # fn jumps_program() -> Result<Arc<LoadedProgram>, Box<dyn std::error::Error>> {
/// #     let slots = bpfvm_isa::assemble("r0 = 0\nexit", bpfvm_isa::Dialect::Llvm)?;
/// #     Ok(Arc::new(LoadedProgram::new(bpfvm_isa::Program::from_slots(slots)?,
/// #         ProgramType::Kernel(bpfvm_abi::ProgramType::SocketFilter))?))
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProgArray {
    map: MapRef,
}

impl ProgArray {
    /// A typed view of `map`, which must be a program array.
    pub fn new(map: MapRef) -> Result<ProgArray, Error> {
        check_sizes(&map, &[MapType::ProgArray], "a program array", 4, 4)?;
        concrete::<ProgArrayMap>(&map, "program array")?;
        Ok(ProgArray { map })
    }

    fn array(&self) -> Result<&ProgArrayMap, Error> {
        concrete::<ProgArrayMap>(&self.map, "program array")
    }

    /// Puts `program` at `index`, replacing what was there (`E2BIG` past the end). The
    /// kernel also requires the program's type to match the array's other programs; that
    /// check belongs to the static verifier, which has not landed.
    pub fn set(&self, index: u32, program: &Program) -> Result<(), Error> {
        self.array()?
            .set(index, Arc::clone(program.loaded()))
            .map_err(map_err(&self.map.name))
    }

    /// Empties `index`; whether it held a program (`E2BIG` past the end).
    pub fn clear(&self, index: u32) -> Result<bool, Error> {
        match self.array()?.clear(index) {
            Ok(()) => Ok(true),
            Err(MapError::NotFound) => Ok(false),
            Err(e) => Err(map_err(&self.map.name)(e)),
        }
    }

    /// Whether `index` holds a program.
    pub fn is_set(&self, index: u32) -> bool {
        self.map.map.program_at(index).is_some()
    }
}

/// The shared part of [`Queue`] and [`Stack`].
#[derive(Debug, Clone)]
struct Keyless<V> {
    map: MapRef,
    _types: PhantomData<fn() -> V>,
}

impl<V: Pod> Keyless<V> {
    fn new(map: MapRef, map_type: MapType, what: &str) -> Result<Keyless<V>, Error> {
        check_sizes(&map, &[map_type], what, 0, size_of::<V>())?;
        concrete::<QueueStackMap>(&map, what)?;
        Ok(Keyless {
            map,
            _types: PhantomData,
        })
    }

    fn inner(&self) -> Result<&QueueStackMap, Error> {
        concrete::<QueueStackMap>(&self.map, "queue or stack")
    }

    fn push(&self, value: &V, flags: u64) -> Result<(), Error> {
        self.map
            .map
            .update(&[], bytemuck::bytes_of(value), flags)
            .map_err(map_err(&self.map.name))
    }

    fn pop(&self) -> Result<Option<V>, Error> {
        match self.inner()?.lookup_and_delete(0) {
            Ok(v) => read(&self.map.name, "value", &v).map(Some),
            Err(MapError::NotFound) => Ok(None),
            Err(e) => Err(map_err(&self.map.name)(e)),
        }
    }

    fn peek(&self) -> Result<Option<V>, Error> {
        match self.map.map.lookup(&[]) {
            Ok(v) => read(&self.map.name, "value", &v).map(Some),
            Err(MapError::NotFound) => Ok(None),
            Err(e) => Err(map_err(&self.map.name)(e)),
        }
    }

    fn len(&self) -> usize {
        self.inner().map_or(0, QueueStackMap::len)
    }
}

/// A queue map (`BPF_MAP_TYPE_QUEUE`) of `V`: first in, first out.
///
/// ```
/// use bpfvm::Queue;
/// use bpfvm_abi::{MapSpec, MapType, UPDATE_ANY, UPDATE_EXIST};
/// use bpfvm_runtime::maps::{MapConfig, create_map};
/// let map = create_map(&MapSpec::new(MapType::Queue, 0, 4, 2), &MapConfig::new(1, 1 << 20))?;
/// let q: Queue<u32> = Queue::new(bpfvm::MapRef::from_map("jobs", map.into()))?;
/// q.push(&1, UPDATE_ANY)?;
/// q.push(&2, UPDATE_ANY)?;
/// assert!(q.push(&3, UPDATE_ANY).is_err()); // full: E2BIG
/// q.push(&3, UPDATE_EXIST)?; // full, BPF_EXIST: drops the oldest (1)
/// assert_eq!(q.peek()?, Some(2));
/// assert_eq!((q.pop()?, q.pop()?, q.pop()?), (Some(2), Some(3), None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Queue<V>(Keyless<V>);

impl<V: Pod> Queue<V> {
    /// A typed view of `map`, which must be a queue of `V`.
    pub fn new(map: MapRef) -> Result<Queue<V>, Error> {
        Keyless::new(map, MapType::Queue, "a queue").map(Queue)
    }

    /// Appends `value`. `flags`: `UPDATE_ANY` (a full queue is `E2BIG`) or `UPDATE_EXIST`
    /// (a full queue drops its oldest element to make room).
    pub fn push(&self, value: &V, flags: u64) -> Result<(), Error> {
        self.0.push(value, flags)
    }

    /// Removes and returns the oldest element; `None` when empty.
    pub fn pop(&self) -> Result<Option<V>, Error> {
        self.0.pop()
    }

    /// The oldest element, left in place; `None` when empty.
    pub fn peek(&self) -> Result<Option<V>, Error> {
        self.0.peek()
    }

    /// Elements now in the queue.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A stack map (`BPF_MAP_TYPE_STACK`) of `V`: last in, first out.
///
/// ```
/// use bpfvm::Stack;
/// use bpfvm_abi::{MapSpec, MapType, UPDATE_ANY};
/// use bpfvm_runtime::maps::{MapConfig, create_map};
/// let map = create_map(&MapSpec::new(MapType::Stack, 0, 8, 4), &MapConfig::new(1, 1 << 20))?;
/// let s: Stack<u64> = Stack::new(bpfvm::MapRef::from_map("frames", map.into()))?;
/// for v in [10, 20, 30] {
///     s.push(&v, UPDATE_ANY)?;
/// }
/// assert_eq!(s.len(), 3);
/// assert_eq!(s.peek()?, Some(30));
/// assert_eq!((s.pop()?, s.pop()?, s.pop()?, s.pop()?), (Some(30), Some(20), Some(10), None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Stack<V>(Keyless<V>);

impl<V: Pod> Stack<V> {
    /// A typed view of `map`, which must be a stack of `V`.
    pub fn new(map: MapRef) -> Result<Stack<V>, Error> {
        Keyless::new(map, MapType::Stack, "a stack").map(Stack)
    }

    /// Pushes `value`. `flags`: `UPDATE_ANY` (a full stack is `E2BIG`) or `UPDATE_EXIST`
    /// (a full stack drops its bottom element to make room).
    pub fn push(&self, value: &V, flags: u64) -> Result<(), Error> {
        self.0.push(value, flags)
    }

    /// Removes and returns the top element; `None` when empty.
    pub fn pop(&self) -> Result<Option<V>, Error> {
        self.0.pop()
    }

    /// The top element, left in place; `None` when empty.
    pub fn peek(&self) -> Result<Option<V>, Error> {
        self.0.peek()
    }

    /// Elements now on the stack.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the stack is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A key of an [`LpmTrie`]: the kernel's `struct bpf_lpm_trie_key` — a prefix length in
/// bits, then the data, read most significant bit first (for an IPv4 address, `[u8; 4]`
/// in network order; for a path, its bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key<K> {
    /// How many leading bits of `data` the key covers.
    pub prefix_len: u32,
    /// The data.
    pub data: K,
}

impl<K: Pod> Key<K> {
    /// The key of the first `prefix_len` bits of `data`.
    pub fn new(prefix_len: u32, data: K) -> Key<K> {
        Key { prefix_len, data }
    }

    /// The map's key bytes: the native-endian `u32`, then the data, unpadded.
    fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + size_of::<K>());
        out.extend_from_slice(&self.prefix_len.to_ne_bytes());
        out.extend_from_slice(bytemuck::bytes_of(&self.data));
        out
    }

    /// A key of map `name` from its bytes; another length is an [`Error::MapShape`].
    fn from_bytes(name: &str, bytes: &[u8]) -> Result<Key<K>, Error> {
        match bytes.split_first_chunk::<4>() {
            Some((len, data)) => Ok(Key {
                prefix_len: u32::from_ne_bytes(*len),
                data: read(name, "key data", data)?,
            }),
            None => Err(shape(
                name,
                format!(
                    "gave a key of {} bytes, without its prefix length",
                    bytes.len()
                ),
            )),
        }
    }
}

/// A longest-prefix-match trie (`BPF_MAP_TYPE_LPM_TRIE`, created with
/// `BPF_F_NO_PREALLOC`) from [`Key<K>`] to `V`.
///
/// ```
/// use bpfvm::{LpmTrie, lpm_trie::Key};
/// use bpfvm_abi::{MapSpec, MapType, UPDATE_ANY};
/// use bpfvm_runtime::maps::{MapConfig, create_map};
/// let mut spec = MapSpec::new(MapType::LpmTrie, 8, 4, 16);
/// spec.flags = bpfvm_abi::F_NO_PREALLOC; // the kernel requires it for LPM tries
/// let map = create_map(&spec, &MapConfig::new(1, 1 << 20))?;
/// let routes: LpmTrie<[u8; 4], u32> = LpmTrie::new(bpfvm::MapRef::from_map("routes", map.into()))?;
/// routes.insert(&Key::new(8, [10, 0, 0, 0]), &1, UPDATE_ANY)?; // 10.0.0.0/8
/// routes.insert(&Key::new(24, [10, 1, 2, 0]), &2, UPDATE_ANY)?; // 10.1.2.0/24
/// // A lookup is a /32 key: the most specific stored prefix covering it wins.
/// assert_eq!(routes.get(&Key::new(32, [10, 1, 2, 3]))?, Some(2));
/// assert_eq!(routes.get(&Key::new(32, [10, 1, 3, 3]))?, Some(1));
/// assert_eq!(routes.get(&Key::new(32, [11, 1, 2, 3]))?, None);
/// assert!(routes.remove(&Key::new(24, [10, 1, 2, 0]))?); // exact: prefix and bits
/// assert_eq!(routes.get(&Key::new(32, [10, 1, 2, 3]))?, Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LpmTrie<K, V> {
    map: MapRef,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Pod, V: Pod> LpmTrie<K, V> {
    /// A typed view of `map`, which must be an LPM trie whose keys are a `u32` prefix
    /// length and a `K`, and whose values are `V`.
    pub fn new(map: MapRef) -> Result<LpmTrie<K, V>, Error> {
        check_sizes(
            &map,
            &[MapType::LpmTrie],
            "an LPM trie",
            4 + size_of::<K>(),
            size_of::<V>(),
        )?;
        Ok(LpmTrie {
            map,
            _types: PhantomData,
        })
    }

    /// The value of the longest stored prefix that covers `key`'s first `prefix_len`
    /// bits (a lookup usually asks with every bit of `data`), if any.
    pub fn get(&self, key: &Key<K>) -> Result<Option<V>, Error> {
        match self.map.map.lookup(&key.to_bytes()) {
            Ok(v) => read(&self.map.name, "value", &v).map(Some),
            Err(MapError::NotFound) => Ok(None),
            Err(e) => Err(map_err(&self.map.name)(e)),
        }
    }

    /// Stores `value` for exactly `key` (its prefix length and those bits of its data),
    /// per `flags` (`UPDATE_ANY`, `UPDATE_NOEXIST`, `UPDATE_EXIST`). A prefix length past
    /// the data's bits is `EINVAL`; a new prefix in a full trie `ENOSPC`.
    pub fn insert(&self, key: &Key<K>, value: &V, flags: u64) -> Result<(), Error> {
        self.map
            .map
            .update(&key.to_bytes(), bytemuck::bytes_of(value), flags)
            .map_err(map_err(&self.map.name))
    }

    /// Removes exactly `key`; whether it was stored.
    pub fn remove(&self, key: &Key<K>) -> Result<bool, Error> {
        match self.map.map.delete(&key.to_bytes()) {
            Ok(()) => Ok(true),
            Err(MapError::NotFound) => Ok(false),
            Err(e) => Err(map_err(&self.map.name)(e)),
        }
    }

    /// Every stored prefix, in the kernel's order (more specific prefixes first).
    pub fn keys(&self) -> Result<Vec<Key<K>>, Error> {
        let keys = self.map.map.keys().map_err(map_err(&self.map.name))?;
        keys.iter()
            .map(|k| Key::from_bytes(&self.map.name, k))
            .collect()
    }
}

/// A bloom filter (`BPF_MAP_TYPE_BLOOM_FILTER`) of `V`: `contains` is never wrong about
/// a value inserted, and may be wrong (a false positive) about one that was not.
///
/// ```
/// use bpfvm::BloomFilter;
/// use bpfvm_abi::{MapSpec, MapType};
/// use bpfvm_runtime::maps::{MapConfig, create_map};
/// let map = create_map(&MapSpec::new(MapType::BloomFilter, 0, 4, 100), &MapConfig::new(1, 1 << 20))?;
/// let seen: BloomFilter<u32> = BloomFilter::new(bpfvm::MapRef::from_map("seen", map.into()))?;
/// seen.insert(&42)?;
/// assert!(seen.contains(&42)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct BloomFilter<V> {
    map: MapRef,
    _types: PhantomData<fn() -> V>,
}

impl<V: Pod> BloomFilter<V> {
    /// A typed view of `map`, which must be a bloom filter of `V`.
    pub fn new(map: MapRef) -> Result<BloomFilter<V>, Error> {
        check_sizes(
            &map,
            &[MapType::BloomFilter],
            "a bloom filter",
            0,
            size_of::<V>(),
        )?;
        concrete::<BloomFilterMap>(&map, "bloom filter")?;
        Ok(BloomFilter {
            map,
            _types: PhantomData,
        })
    }

    /// Adds `value`.
    pub fn insert(&self, value: &V) -> Result<(), Error> {
        self.map
            .map
            .update(&[], bytemuck::bytes_of(value), 0)
            .map_err(map_err(&self.map.name))
    }

    /// `false` when `value` was certainly never inserted; `true` when it may have been.
    pub fn contains(&self, value: &V) -> Result<bool, Error> {
        let filter = concrete::<BloomFilterMap>(&self.map, "bloom filter")?;
        match filter.contains(bytemuck::bytes_of(value)) {
            Ok(()) => Ok(true),
            Err(MapError::NotFound) => Ok(false),
            Err(e) => Err(map_err(&self.map.name)(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bpfvm_abi::{F_NO_PREALLOC, MapSpec, UPDATE_ANY, UPDATE_EXIST, UPDATE_NOEXIST};
    use bpfvm_runtime::maps::{Map, MapConfig, create_map};

    fn map(name: &str, spec: MapSpec) -> MapRef {
        let m = create_map(&spec, &MapConfig::new(2, 1 << 22)).unwrap();
        MapRef::from_map(name, m.into())
    }

    fn lpm_spec(key: u32, value: u32, max: u32) -> MapSpec {
        let mut spec = MapSpec::new(MapType::LpmTrie, key, value, max);
        spec.flags = F_NO_PREALLOC;
        spec
    }

    fn is_shape(e: Error) -> bool {
        matches!(e, Error::MapShape { .. })
    }

    #[test]
    fn every_handle_refuses_another_map_type_or_size() {
        let hash = map("h", MapSpec::new(MapType::Hash, 4, 4, 4));
        assert!(is_shape(RingBuf::new(hash.clone()).unwrap_err()));
        assert!(is_shape(PerfBuffer::new(hash.clone()).unwrap_err()));
        assert!(is_shape(ProgArray::new(hash.clone()).unwrap_err()));
        assert!(is_shape(Queue::<u32>::new(hash.clone()).unwrap_err()));
        assert!(is_shape(Stack::<u32>::new(hash.clone()).unwrap_err()));
        assert!(is_shape(
            LpmTrie::<u32, u32>::new(hash.clone()).unwrap_err()
        ));
        assert!(is_shape(BloomFilter::<u32>::new(hash).unwrap_err()));
        let queue = map("q", MapSpec::new(MapType::Queue, 0, 4, 4));
        assert!(is_shape(Stack::<u32>::new(queue.clone()).unwrap_err()));
        assert!(is_shape(Queue::<u64>::new(queue).unwrap_err()));
        let lpm = map("l", lpm_spec(8, 4, 4));
        assert!(is_shape(
            LpmTrie::<[u8; 8], u32>::new(lpm.clone()).unwrap_err()
        ));
        assert!(is_shape(
            LpmTrie::<[u8; 4], u64>::new(lpm.clone()).unwrap_err()
        ));
        LpmTrie::<[u8; 4], u32>::new(lpm).unwrap();
        let bloom = map("b", MapSpec::new(MapType::BloomFilter, 0, 8, 4));
        assert!(is_shape(BloomFilter::<u32>::new(bloom).unwrap_err()));
    }

    /// A host's own map whose sizes are as its spec says but which hands back values and
    /// keys one byte short (as a buggy wrapper or remote map might).
    #[derive(Debug)]
    struct OneShort(Box<dyn Map>);

    impl Map for OneShort {
        fn spec(&self) -> &MapSpec {
            self.0.spec()
        }
        fn value_len(&self) -> usize {
            self.0.value_len()
        }
        fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
            let mut v = self.0.lookup(key)?;
            v.pop();
            Ok(v)
        }
        fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
            self.0.update(key, value, flags)
        }
        fn delete(&self, key: &[u8]) -> Result<(), MapError> {
            self.0.delete(key)
        }
        fn next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
            if key.is_some() {
                return Err(MapError::NotFound); // one key is enough
            }
            let mut k = self.0.next_key(None)?;
            k.pop();
            Ok(k)
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    fn one_short(spec: MapSpec) -> MapRef {
        let m = create_map(&spec, &MapConfig::new(2, 1 << 22)).unwrap();
        MapRef::from_map("short", Arc::new(OneShort(m)))
    }

    /// Values and keys of the wrong length from a map are shape errors naming the map,
    /// not a panic in `pod_read_unaligned`.
    #[test]
    fn short_keys_and_values_from_a_host_map_are_errors() {
        use crate::{Array, HashMap, PerCpuArray, PerCpuHashMap};
        let shape_of = |e: Error| match e {
            Error::MapShape { name, reason } => {
                assert_eq!(name, "short");
                reason
            }
            e => panic!("{e}"),
        };
        let h: HashMap<u32, u64> =
            HashMap::new(one_short(MapSpec::new(MapType::Hash, 4, 8, 4))).unwrap();
        h.insert(&1, &2, UPDATE_ANY).unwrap();
        assert_eq!(
            shape_of(h.get(&1).unwrap_err()),
            "gave a value of 7 bytes, the value type is 8"
        );
        assert_eq!(
            shape_of(h.keys().unwrap_err()),
            "gave a key of 3 bytes, the key type is 4"
        );
        assert!(is_shape(h.entries().unwrap_err()));
        let a: Array<u64> = Array::new(one_short(MapSpec::new(MapType::Array, 4, 8, 2))).unwrap();
        assert!(is_shape(a.get(0).unwrap_err()));
        assert!(is_shape(a.values().unwrap_err()));
        // Per-CPU: two 8-byte slots less one byte is not whole slots.
        let p: PerCpuArray<u32> =
            PerCpuArray::new(one_short(MapSpec::new(MapType::PercpuArray, 4, 4, 2))).unwrap();
        assert_eq!(
            shape_of(p.get(0).unwrap_err()),
            "gave a per-CPU value of 15 bytes, not whole 8-byte slots"
        );
        let inner = create_map(
            &MapSpec::new(MapType::PercpuHash, 4, 4, 2),
            &MapConfig::new(2, 1 << 22),
        )
        .unwrap();
        inner
            .update(&5u32.to_ne_bytes(), &[6; 16], UPDATE_ANY)
            .unwrap();
        let ph: PerCpuHashMap<u32, u32> =
            PerCpuHashMap::new(MapRef::from_map("short", Arc::new(OneShort(inner)))).unwrap();
        assert!(is_shape(ph.get(&5).unwrap_err()));
        assert!(is_shape(ph.keys().unwrap_err()));
        let t: LpmTrie<[u8; 4], u32> = LpmTrie::new(one_short(lpm_spec(8, 4, 4))).unwrap();
        t.insert(&Key::new(8, [10, 0, 0, 0]), &1, UPDATE_ANY)
            .unwrap();
        assert!(is_shape(t.get(&Key::new(32, [10, 1, 2, 3])).unwrap_err()));
        assert_eq!(
            shape_of(t.keys().unwrap_err()),
            "gave a key data of 3 bytes, the key data type is 4"
        );
    }

    fn raw_tp(source: &str, maps: Vec<Arc<dyn Map>>) -> Program {
        use bpfvm_runtime::{HelperRegistry, LoadedProgram, ProgramType};
        let kind = ProgramType::Kernel(bpfvm_abi::ProgramType::RawTracepoint);
        let slots = bpfvm_isa::assemble(source, bpfvm_isa::Dialect::Llvm).unwrap();
        let loaded = LoadedProgram::with_maps(
            bpfvm_isa::Program::from_slots(slots).unwrap(),
            kind,
            Arc::new(HelperRegistry::for_program_type(kind)),
            maps,
        )
        .unwrap();
        Program::from_loaded("p", Arc::new(loaded))
    }

    /// `bpf_tail_call(ctx, &jumps, 3)` jumps to what the host set at 3 and falls through
    /// (returning 99) once the host clears it.
    #[test]
    fn tail_calls_follow_the_slots_the_host_sets() {
        use bpfvm_runtime::{Context, RunOptions};
        let m = map("jumps", MapSpec::new(MapType::ProgArray, 4, 4, 4));
        let jumps = ProgArray::new(m.clone()).unwrap();
        let caller = raw_tp(
            "r2 = map[idx:0]\nr3 = 3\ncall 12\nr0 = 99\nexit",
            vec![Arc::clone(m.map())],
        );
        let target = raw_tp("r0 = 7\nexit", Vec::new());
        let run = || {
            let mut event = [0u8; 8];
            let mut ctx = Context::Struct {
                bytes: &mut event,
                writable: false,
            };
            caller.run(&mut ctx, &RunOptions::new()).unwrap()
        };
        assert_eq!(run(), 99);
        jumps.set(3, &target).unwrap();
        assert!(jumps.is_set(3));
        assert_eq!(run(), 7);
        assert!(jumps.clear(3).unwrap());
        assert_eq!(run(), 99);
        match jumps.set(4, &target).unwrap_err() {
            Error::Map { source, .. } => assert_eq!(source.errno(), 7), // E2BIG
            e => panic!("{e}"),
        }
    }

    #[test]
    fn queue_is_fifo_and_full_is_e2big() {
        let q: Queue<u32> = Queue::new(map("q", MapSpec::new(MapType::Queue, 0, 4, 3))).unwrap();
        assert_eq!(q.pop().unwrap(), None);
        assert_eq!(q.peek().unwrap(), None);
        for v in [5, 6, 7] {
            q.push(&v, UPDATE_ANY).unwrap();
        }
        match q.push(&8, UPDATE_ANY).unwrap_err() {
            Error::Map { source, .. } => assert_eq!(source.errno(), 7), // E2BIG
            e => panic!("{e}"),
        }
        // BPF_NOEXIST is EINVAL for queues.
        match q.push(&8, UPDATE_NOEXIST).unwrap_err() {
            Error::Map { source, .. } => assert_eq!(source.errno(), 22),
            e => panic!("{e}"),
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.peek().unwrap(), Some(5));
        let popped: Vec<_> = std::iter::from_fn(|| q.pop().unwrap()).collect();
        assert_eq!(popped, vec![5, 6, 7]);
        assert!(q.is_empty());
    }

    #[test]
    fn stack_is_lifo_and_exist_drops_the_bottom() {
        let s: Stack<u64> = Stack::new(map("s", MapSpec::new(MapType::Stack, 0, 8, 3))).unwrap();
        for v in [1, 2, 3] {
            s.push(&v, UPDATE_ANY).unwrap();
        }
        match s.push(&4, UPDATE_ANY).unwrap_err() {
            Error::Map { source, .. } => assert_eq!(source.errno(), 7),
            e => panic!("{e}"),
        }
        s.push(&4, UPDATE_EXIST).unwrap(); // drops 1, the bottom
        let popped: Vec<_> = std::iter::from_fn(|| s.pop().unwrap()).collect();
        assert_eq!(popped, vec![4, 3, 2]);
    }

    /// Longest match by hand: the stored prefixes of 10.0.0.0/8, 10.1.0.0/16,
    /// 10.1.2.0/24 and 10.1.2.128/25 (values 8, 16, 24, 25).
    #[test]
    fn lpm_lookup_is_the_longest_stored_prefix() {
        let t: LpmTrie<[u8; 4], u32> = LpmTrie::new(map("t", lpm_spec(8, 4, 8))).unwrap();
        for (len, data) in [
            (8, [10, 0, 0, 0]),
            (16, [10, 1, 0, 0]),
            (24, [10, 1, 2, 0]),
            (25, [10, 1, 2, 128]),
        ] {
            t.insert(&Key::new(len, data), &len, UPDATE_ANY).unwrap();
        }
        let cases = [
            ([10, 1, 2, 200], Some(25)), // 200 = 0b1100_1000: top bit set
            ([10, 1, 2, 127], Some(24)), // top bit clear
            ([10, 1, 9, 9], Some(16)),
            ([10, 200, 0, 0], Some(8)),
            ([11, 1, 2, 200], None),
        ];
        for (addr, want) in cases {
            assert_eq!(t.get(&Key::new(32, addr)).unwrap(), want, "{addr:?}");
        }
        // A shorter lookup key only sees prefixes it covers: 10.1.0.0/12 → the /8.
        assert_eq!(t.get(&Key::new(12, [10, 1, 2, 200])).unwrap(), Some(8));
        // Insert and remove are exact: /24 with other bits past the prefix is the same
        // key; /23 is not stored.
        assert!(!t.remove(&Key::new(23, [10, 1, 2, 0])).unwrap());
        assert!(t.remove(&Key::new(24, [10, 1, 2, 99])).unwrap());
        assert_eq!(t.get(&Key::new(32, [10, 1, 2, 127])).unwrap(), Some(16));
        let mut keys: Vec<_> = t.keys().unwrap().iter().map(|k| k.prefix_len).collect();
        keys.sort_unstable();
        assert_eq!(keys, vec![8, 16, 25]);
        // Past the data's 32 bits: EINVAL.
        match t.insert(&Key::new(33, [0; 4]), &0, UPDATE_ANY).unwrap_err() {
            Error::Map { source, .. } => assert_eq!(source.errno(), 22),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn bloom_filter_has_no_false_negatives() {
        let b: BloomFilter<u64> =
            BloomFilter::new(map("b", MapSpec::new(MapType::BloomFilter, 0, 8, 1000))).unwrap();
        for v in (0..1000u64).map(|i| i * 7919) {
            b.insert(&v).unwrap();
        }
        for v in (0..1000u64).map(|i| i * 7919) {
            assert!(b.contains(&v).unwrap(), "{v}");
        }
        // Not a claim about every value (false positives exist), but an empty filter
        // holds nothing.
        let empty: BloomFilter<u64> =
            BloomFilter::new(map("e", MapSpec::new(MapType::BloomFilter, 0, 8, 1000))).unwrap();
        assert!((0..1000u64).all(|v| !empty.contains(&v).unwrap()));
    }

    #[test]
    fn ring_buffer_drain_checks_record_sizes() {
        let m = map("r", MapSpec::new(MapType::Ringbuf, 0, 0, 4096));
        let ring = m
            .map()
            .as_any()
            .downcast_ref::<RingBufMap>()
            .unwrap()
            .ring()
            .clone();
        let r = RingBuf::new(m).unwrap();
        ring.output(&1u32.to_ne_bytes(), 0).unwrap();
        ring.output(&[0; 3], 0).unwrap();
        ring.output(&2u32.to_ne_bytes(), 0).unwrap();
        assert!(is_shape(r.drain::<u32>().unwrap_err()));
        assert_eq!(r.consume(|_| ()), 0); // drained anyway
        ring.output(&3u32.to_ne_bytes(), 0).unwrap();
        let mut n = 0;
        assert_eq!(r.poll(Duration::from_millis(1), |_| n += 1), 1);
        assert_eq!(n, 1);
        assert_eq!(r.poll(Duration::from_millis(1), |_| ()), 0);
        // An empty ring: poll waits for the producer's wakeup.
        let producer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            ring.output(&4u32.to_ne_bytes(), 0).unwrap();
        });
        let mut got = Vec::new();
        let n = r.poll(Duration::from_secs(10), |rec| got.push(rec.to_vec()));
        producer.join().unwrap();
        assert_eq!(n, 1);
        assert_eq!(got, vec![4u32.to_ne_bytes().to_vec()]);
    }
}
