//! Longest-prefix-match tries (`kernel/bpf/lpm_trie.c`), with the kernel's node structure
//! so that iteration order and every answer are the kernel's.
//!
//! A key is a native-endian `u32` prefix length followed by `key_size - 4` data bytes
//! (read most significant bit first). Kernel semantics kept:
//! - creation needs `BPF_F_NO_PREALLOC` and `5 <= key_size <= 260` (`EINVAL`);
//! - lookup is a longest-prefix match: the most specific stored prefix that covers the
//!   key's first `prefixlen` bits (a key whose prefix length passes the data's bits finds
//!   nothing);
//! - update and delete are exact matches on (prefix length, the first prefix-length
//!   bits); update takes `BPF_ANY`, `BPF_NOEXIST` (`EEXIST` if present), `BPF_EXIST`
//!   (`ENOENT` if absent), anything else or a prefix length past the data is `EINVAL`;
//!   inserting a new prefix into a full trie is `ENOSPC` (replacing one is fine);
//! - get-next-key walks in postorder (more specific prefixes first); a missing or
//!   invalid key restarts at the leftmost element.
//!
//! Nodes live in an arena under a `RwLock`; intermediate nodes (no value) are created and
//! removed exactly as the kernel does. Each element's value is a `ValueBuf` whose address
//! never changes; a replaced or deleted value is freed through the epoch collector (see
//! the `maps` module doc), so pointers programs got stay valid for their run.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bpfvm_abi::{F_RDONLY_PROG, MapError, MapSpec, UPDATE_EXIST, UPDATE_NOEXIST};

use super::buf::{ValueBuf, round8};
use super::{
    Map, MapConfig, MemoryAccountant, RunGuard, ValueRef, check_host_read, check_host_write,
    check_len, check_prog_write, check_update_flags,
};

/// Bytes charged per element on top of its value and data: the node and, at most one per
/// element, an intermediate node.
const NODE_OVERHEAD: u64 = 64;

#[derive(Debug)]
struct Node {
    child: [Option<usize>; 2],
    prefixlen: u32,
    data: Box<[u8]>,
    /// `None` for intermediate nodes.
    value: Option<ValueBuf>,
}

impl Node {
    fn is_im(&self) -> bool {
        self.value.is_none()
    }
}

/// Where a node hangs: the root, or a parent's child slot.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Root,
    Child(usize, usize),
}

#[derive(Debug, Default)]
struct Trie {
    nodes: Vec<Option<Node>>,
    free: Vec<usize>,
    root: Option<usize>,
    n_entries: usize,
}

impl Trie {
    fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().unwrap_or_else(|| unreachable!())
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().unwrap_or_else(|| unreachable!())
    }

    fn get(&self, slot: Slot) -> Option<usize> {
        match slot {
            Slot::Root => self.root,
            Slot::Child(p, b) => self.node(p).child[b],
        }
    }

    fn set(&mut self, slot: Slot, to: Option<usize>) {
        match slot {
            Slot::Root => self.root = to,
            Slot::Child(p, b) => self.node_mut(p).child[b] = to,
        }
    }

    fn alloc(&mut self, node: Node) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        }
    }

    fn take(&mut self, i: usize) -> Node {
        self.free.push(i);
        self.nodes[i].take().unwrap_or_else(|| unreachable!())
    }
}

/// Bit `index` of `data`, most significant first (the kernel's `extract_bit`).
fn bit(data: &[u8], index: u32) -> usize {
    usize::from(data[(index / 8) as usize] & (1 << (7 - index % 8)) != 0)
}

/// The kernel's `longest_prefix_match`: the number of leading bits `node` and the key
/// share, capped at both prefix lengths.
fn match_len(node: &Node, prefixlen: u32, data: &[u8]) -> u32 {
    let limit = node.prefixlen.min(prefixlen);
    let mut n = 0;
    for (a, b) in node.data.iter().zip(data) {
        let diff = a ^ b;
        if diff != 0 {
            n += diff.leading_zeros();
            return n.min(limit);
        }
        n += 8;
        if n >= limit {
            return limit;
        }
    }
    n.min(limit)
}

/// A longest-prefix-match trie map.
#[derive(Debug)]
pub struct LpmTrieMap {
    spec: MapSpec,
    data_size: usize,
    max_prefixlen: u32,
    /// `round8(value_size)`.
    block: usize,
    charge: u64,
    trie: RwLock<Trie>,
    memory: Arc<MemoryAccountant>,
}

impl LpmTrieMap {
    /// An empty trie. `spec` must be an LPM trie spec that passed the create checks.
    pub fn new(spec: &MapSpec, config: &MapConfig) -> Result<LpmTrieMap, MapError> {
        let data_size = (spec.key_size as usize).saturating_sub(4);
        let block = round8(spec.value_size as usize).ok_or_else(|| {
            MapError::TooBig(format!("lpm_trie map: value_size {}", spec.value_size))
        })?;
        let charge = block as u64 + 2 * (data_size as u64 + NODE_OVERHEAD);
        Ok(LpmTrieMap {
            spec: spec.clone(),
            data_size,
            max_prefixlen: (data_size * 8) as u32,
            block,
            charge,
            trie: RwLock::new(Trie::default()),
            memory: Arc::clone(&config.memory),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Trie> {
        self.trie.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Trie> {
        self.trie.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of elements (intermediate nodes not counted).
    pub fn len(&self) -> usize {
        self.read().n_entries
    }

    /// Whether the trie has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Splits a key into its prefix length and data; `EINVAL` on a wrong size.
    fn split<'k>(&self, key: &'k [u8]) -> Result<(u32, &'k [u8]), MapError> {
        check_len("key", key.len(), self.spec.key_size as usize)?;
        let prefixlen = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]);
        Ok((prefixlen, &key[4..]))
    }

    /// The kernel's `trie_lookup_elem`: the node of the longest matching prefix.
    fn find(&self, trie: &Trie, prefixlen: u32, data: &[u8]) -> Option<usize> {
        if prefixlen > self.max_prefixlen {
            return None;
        }
        let mut found = None;
        let mut cur = trie.root;
        while let Some(i) = cur {
            let node = trie.node(i);
            let m = match_len(node, prefixlen, data);
            if m == self.max_prefixlen {
                return Some(i);
            }
            if m < node.prefixlen {
                break;
            }
            if !node.is_im() {
                found = Some(i);
            }
            cur = node.child[bit(data, node.prefixlen)];
        }
        found
    }

    fn new_value(&self, value: &[u8]) -> Result<ValueBuf, MapError> {
        let buf = ValueBuf::zeroed(self.block)?;
        buf.write(0, value);
        Ok(buf)
    }

    /// Counts a new element (the kernel's `trie_check_add_elem`), charging its memory.
    fn add_elem(&self, trie: &mut Trie, flags: u64) -> Result<(), MapError> {
        if flags == UPDATE_EXIST {
            return Err(MapError::NotFound);
        }
        if trie.n_entries == self.spec.max_entries as usize {
            return Err(MapError::NoSpace(format!(
                "the trie is full ({} entries)",
                self.spec.max_entries
            )));
        }
        self.memory.charge(self.charge)?;
        trie.n_entries += 1;
        Ok(())
    }

    /// The kernel's `trie_update_elem`.
    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        check_update_flags(flags)?;
        let (prefixlen, data) = self.split(key)?;
        check_len("value", value.len(), self.spec.value_size as usize)?;
        if prefixlen > self.max_prefixlen {
            return Err(MapError::Invalid(format!(
                "prefix length {prefixlen} passes the key's {} bits",
                self.max_prefixlen
            )));
        }
        let new_value = self.new_value(value)?;
        let mut guard = self.write();
        let trie = &mut *guard;
        let mut slot = Slot::Root;
        let mut m = 0;
        let mut found = None;
        while let Some(i) = trie.get(slot) {
            let node = trie.node(i);
            m = match_len(node, prefixlen, data);
            if node.prefixlen != m || node.prefixlen == prefixlen {
                found = Some(i);
                break;
            }
            slot = Slot::Child(i, bit(data, node.prefixlen));
        }
        let new_node = |value| Node {
            child: [None, None],
            prefixlen,
            data: data.into(),
            value: Some(value),
        };
        let Some(i) = found else {
            self.add_elem(trie, flags)?;
            let n = trie.alloc(new_node(new_value));
            trie.set(slot, Some(n));
            return Ok(());
        };
        let (node_prefixlen, node_im) = {
            let node = trie.node(i);
            (node.prefixlen, node.is_im())
        };
        if node_prefixlen == m {
            // The same prefix: replace the value (a fresh block, as the kernel allocates
            // a fresh node), or turn an intermediate node into an element.
            if !node_im {
                if flags & UPDATE_NOEXIST != 0 {
                    return Err(MapError::Exists);
                }
            } else {
                self.add_elem(trie, flags)?;
            }
            // The kernel's new node carries the new key's bytes (bits past the prefix
            // included, which get-next-key reports).
            let node = trie.node_mut(i);
            node.data = data.into();
            let old = node.value.replace(new_value);
            drop(guard);
            if let Some(old) = old {
                crossbeam_epoch::pin().defer(move || drop(old));
            }
            return Ok(());
        }
        self.add_elem(trie, flags)?;
        if m == prefixlen {
            // The new prefix covers the node: insert it above.
            let b = bit(&trie.node(i).data, m);
            let mut n = new_node(new_value);
            n.child[b] = Some(i);
            let n = trie.alloc(n);
            trie.set(slot, Some(n));
            return Ok(());
        }
        // They diverge at bit `m`: an intermediate node of prefix `m` parents both.
        let n = trie.alloc(new_node(new_value));
        let im_data = trie.node(i).data.clone();
        let children = if bit(data, m) == 1 {
            [Some(i), Some(n)]
        } else {
            [Some(n), Some(i)]
        };
        let im = trie.alloc(Node {
            child: children,
            prefixlen: m,
            data: im_data,
            value: None,
        });
        trie.set(slot, Some(im));
        Ok(())
    }

    /// The kernel's `trie_delete_elem`.
    fn delete_elem(&self, key: &[u8]) -> Result<(), MapError> {
        let (prefixlen, data) = self.split(key)?;
        if prefixlen > self.max_prefixlen {
            return Err(MapError::Invalid(format!(
                "prefix length {prefixlen} passes the key's {} bits",
                self.max_prefixlen
            )));
        }
        let mut guard = self.write();
        let trie = &mut *guard;
        let mut trim = Slot::Root;
        let mut trim2 = trim;
        let mut parent = None;
        let mut m = 0;
        let mut cur = None;
        while let Some(i) = trie.get(trim) {
            let node = trie.node(i);
            m = match_len(node, prefixlen, data);
            cur = Some(i);
            if node.prefixlen != m || node.prefixlen == prefixlen {
                break;
            }
            parent = Some(i);
            trim2 = trim;
            trim = Slot::Child(i, bit(data, node.prefixlen));
            cur = None;
        }
        let Some(i) = cur else {
            return Err(MapError::NotFound);
        };
        {
            let node = trie.node(i);
            if node.prefixlen != prefixlen || node.prefixlen != m || node.is_im() {
                return Err(MapError::NotFound);
            }
        }
        trie.n_entries -= 1;
        self.memory.uncharge(self.charge);
        let children = trie.node(i).child;
        let old_value;
        if children[0].is_some() && children[1].is_some() {
            // Two children: the node stays as an intermediate one.
            old_value = trie.node_mut(i).value.take();
        } else if let Some(p) = parent.filter(|p| trie.node(*p).is_im())
            && children == [None, None]
        {
            // A leaf under an intermediate parent: the sibling replaces the parent.
            let pc = trie.node(p).child;
            let sibling = if pc[0] == Some(i) { pc[1] } else { pc[0] };
            trie.set(trim2, sibling);
            trie.take(p);
            old_value = trie.take(i).value;
        } else {
            trie.set(trim, children[0].or(children[1]));
            old_value = trie.take(i).value;
        }
        drop(guard);
        if let Some(old) = old_value {
            crossbeam_epoch::pin().defer(move || drop(old));
        }
        Ok(())
    }

    fn key_of(&self, node: &Node) -> Vec<u8> {
        let mut k = Vec::with_capacity(4 + self.data_size);
        k.extend_from_slice(&node.prefixlen.to_ne_bytes());
        k.extend_from_slice(&node.data);
        k
    }

    /// The leftmost element in postorder under `root` (the kernel's `find_leftmost`).
    fn leftmost(trie: &Trie, root: usize) -> usize {
        let mut next = root;
        let mut cur = Some(root);
        while let Some(i) = cur {
            let node = trie.node(i);
            if node.is_im() {
                cur = node.child[0];
            } else {
                next = i;
                cur = node.child[0].or(node.child[1]);
            }
        }
        next
    }

    /// The kernel's `trie_get_next_key` (postorder).
    fn next(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        let trie = self.read();
        let Some(root) = trie.root else {
            return Err(MapError::NotFound);
        };
        let split = match key {
            Some(k) => Some(self.split(k)?),
            None => None,
        };
        let Some((prefixlen, data)) = split.filter(|(p, _)| *p <= self.max_prefixlen) else {
            return Ok(self.key_of(trie.node(Self::leftmost(&trie, root))));
        };
        let mut stack = Vec::new();
        let mut cur = Some(root);
        let mut m = 0;
        while let Some(i) = cur {
            stack.push(i);
            let node = trie.node(i);
            m = match_len(node, prefixlen, data);
            if node.prefixlen != m || node.prefixlen == prefixlen {
                break;
            }
            cur = node.child[bit(data, node.prefixlen)];
        }
        let exact = cur.is_some_and(|i| {
            let node = trie.node(i);
            node.prefixlen == m && !node.is_im()
        });
        if !exact {
            return Ok(self.key_of(trie.node(Self::leftmost(&trie, root))));
        }
        let mut node = stack.pop().unwrap_or(root);
        while let Some(&parent) = stack.last() {
            let p = trie.node(parent);
            if p.child[0] == Some(node)
                && let Some(right) = p.child[1]
            {
                return Ok(self.key_of(trie.node(Self::leftmost(&trie, right))));
            }
            if !p.is_im() {
                return Ok(self.key_of(p));
            }
            node = parent;
            stack.pop();
        }
        Err(MapError::NotFound)
    }
}

impl Map for LpmTrieMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn value_len(&self) -> usize {
        self.spec.value_size as usize
    }

    /// The value of the longest prefix matching `key`.
    fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        let (prefixlen, data) = self.split(key)?;
        let trie = self.read();
        let i = self
            .find(&trie, prefixlen, data)
            .ok_or(MapError::NotFound)?;
        let mut out = vec![0; self.spec.value_size as usize];
        if let Some(v) = &trie.node(i).value {
            v.read(0, &mut out);
        }
        Ok(out)
    }

    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        self.update_elem(key, value, flags)
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        self.delete_elem(key)
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        self.next(key)
    }

    fn lookup_value<'a>(
        &'a self,
        key: &[u8],
        _cpu: usize,
        _guard: &'a RunGuard,
    ) -> Option<ValueRef<'a>> {
        let (prefixlen, data) = self.split(key).ok()?;
        let trie = self.read();
        let i = self.find(&trie, prefixlen, data)?;
        let v = trie.node(i).value.as_ref()?;
        // The block stays valid after the lock is released: it is freed only through the
        // epoch collector, after `_guard` (pinned before this lookup) is dropped.
        let writable = self.spec.flags & F_RDONLY_PROG == 0;
        Some(ValueRef::new(
            v.ptr_at(0),
            self.spec.value_size as usize,
            writable,
        ))
    }

    fn prog_update(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        _cpu: usize,
    ) -> Result<(), MapError> {
        check_prog_write(&self.spec)?;
        self.update_elem(key, value, flags)
    }

    fn prog_delete(&self, key: &[u8]) -> Result<(), MapError> {
        check_prog_write(&self.spec)?;
        self.delete_elem(key)
    }
}

impl Drop for LpmTrieMap {
    fn drop(&mut self) {
        let trie = std::mem::take(self.trie.get_mut().unwrap_or_else(PoisonError::into_inner));
        self.memory.uncharge(self.charge * trie.n_entries as u64);
        // Runs may still hold pointers into these blocks under their guards.
        crossbeam_epoch::pin().defer(move || drop(trie));
    }
}
