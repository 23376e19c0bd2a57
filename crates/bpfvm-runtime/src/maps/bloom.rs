//! Bloom filter maps (`kernel/bpf/bloom_filter.c`).
//!
//! Kernel semantics kept:
//! - `map_extra` (its low 4 bits; higher bits are `EINVAL` at creation) is the number of
//!   hash functions, 0 meaning 5.
//! - The bit array has `roundup_pow_of_two(max_entries * hashes / 5 * 7)` bits (at least
//!   64; 2^32 when that passes 2^31), as the kernel sizes it.
//! - Hash `i` of a value is the kernel's `jhash2` over its 32-bit words when `value_size`
//!   is a multiple of 4, else `jhash` over its bytes, seeded with `seed + i`, masked to
//!   the bit array. The seed is 0 under `BPF_F_ZERO_SEED`, else random per map; with a
//!   zero seed a bpfvm filter sets exactly the bits a kernel filter sets, so both answer
//!   every query alike (false positives included).
//! - push (`bpf_map_push_elem`, or `BPF_MAP_UPDATE_ELEM` without a key) takes only
//!   `BPF_ANY` (`EINVAL` otherwise); peek answers `Ok` (maybe present) or `ENOENT`
//!   (certainly absent); a keyed lookup or update is `EINVAL`, delete, pop and
//!   get-next-key `EOPNOTSUPP`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bpfvm_abi::{F_ZERO_SEED, MapError, MapSpec};

use super::{
    Map, MapConfig, MemoryAccountant, RunGuard, ValueRef, check_host_read, check_host_write,
    check_len, check_prog_write,
};

const JHASH_INITVAL: u32 = 0xdead_beef;

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

/// The kernel's `jhash` (`include/linux/jhash.h`) over bytes, words read in native order.
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    let mut a = JHASH_INITVAL
        .wrapping_add(key.len() as u32)
        .wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let word = |k: &[u8]| u32::from_ne_bytes([k[0], k[1], k[2], k[3]]);
    let mut k = key;
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..]));
        b = b.wrapping_add(word(&k[4..]));
        c = c.wrapping_add(word(&k[8..]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    // The tail, little end first, as the kernel's switch adds it.
    for (i, byte) in k.iter().enumerate() {
        let v = u32::from(*byte) << (8 * (i % 4));
        match i / 4 {
            0 => a = a.wrapping_add(v),
            1 => b = b.wrapping_add(v),
            _ => c = c.wrapping_add(v),
        }
    }
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// The kernel's `jhash2` over 32-bit words.
pub fn jhash2(words: &[u32], initval: u32) -> u32 {
    let mut a = JHASH_INITVAL
        .wrapping_add((words.len() as u32) << 2)
        .wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let mut k = words;
    while k.len() > 3 {
        a = a.wrapping_add(k[0]);
        b = b.wrapping_add(k[1]);
        c = c.wrapping_add(k[2]);
        mix(&mut a, &mut b, &mut c);
        k = &k[3..];
    }
    if k.is_empty() {
        return c;
    }
    a = a.wrapping_add(k[0]);
    if let Some(w) = k.get(1) {
        b = b.wrapping_add(*w);
    }
    if let Some(w) = k.get(2) {
        c = c.wrapping_add(*w);
    }
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// A bloom filter map.
#[derive(Debug)]
pub struct BloomFilterMap {
    spec: MapSpec,
    bits: Vec<AtomicU64>,
    mask: u32,
    seed: u32,
    hashes: u32,
    charged: u64,
    memory: Arc<MemoryAccountant>,
}

impl BloomFilterMap {
    /// Allocates the bit array, charging `config`'s accountant. `spec` must be a bloom
    /// filter spec that passed the create checks; `seed` is used unless the spec has
    /// `BPF_F_ZERO_SEED`.
    pub fn new(spec: &MapSpec, config: &MapConfig, seed: u32) -> Result<BloomFilterMap, MapError> {
        if spec.map_extra & !0xf != 0 {
            return Err(MapError::Invalid(format!(
                "bloom_filter map: map_extra {:#x} (only the low 4 bits: hash count)",
                spec.map_extra
            )));
        }
        let hashes = match spec.map_extra as u32 {
            0 => 5,
            n => n,
        };
        // The kernel's sizing: n * k * 7 / 5 bits (in u32 arithmetic, dividing first),
        // rounded up to a power of two, at least 64, or 2^32 past 2^31.
        let nr_bits = spec
            .max_entries
            .checked_mul(hashes)
            .and_then(|n| (n / 5).checked_mul(7))
            .filter(|n| *n <= 1 << 31);
        let (bits, mask) = match nr_bits {
            None => (1u64 << 32, u32::MAX),
            Some(n) if n <= 64 => (64, 63),
            Some(n) => {
                let n = n.next_power_of_two();
                (u64::from(n), n - 1)
            }
        };
        let words = (bits / 64) as usize;
        let charged = bits / 8;
        let v = config.memory.charged_vec(
            charged,
            words,
            || AtomicU64::new(0),
            "64-bit words of bloom filter bits",
        )?;
        Ok(BloomFilterMap {
            spec: spec.clone(),
            bits: v,
            mask,
            seed: if spec.flags & F_ZERO_SEED != 0 {
                0
            } else {
                seed
            },
            hashes,
            charged,
            memory: Arc::clone(&config.memory),
        })
    }

    /// Number of bits of the array.
    pub fn bit_count(&self) -> u64 {
        u64::from(self.mask) + 1
    }

    /// Number of hash functions.
    pub fn hash_count(&self) -> u32 {
        self.hashes
    }

    fn hash(&self, value: &[u8], index: u32) -> u32 {
        let seed = self.seed.wrapping_add(index);
        let h = if value.len().is_multiple_of(4) {
            let words: Vec<u32> = value
                .chunks_exact(4)
                .map(|w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
                .collect();
            jhash2(&words, seed)
        } else {
            jhash(value, seed)
        };
        h & self.mask
    }

    fn bit(&self, h: u32) -> (&AtomicU64, u64) {
        (&self.bits[(h / 64) as usize], 1u64 << (h % 64))
    }

    fn push_value(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags != 0 {
            return Err(MapError::Invalid(format!(
                "bloom filter push flags {flags:#x} (only BPF_ANY)"
            )));
        }
        check_len("value", value.len(), self.spec.value_size as usize)?;
        for i in 0..self.hashes {
            let (word, bit) = self.bit(self.hash(value, i));
            word.fetch_or(bit, Ordering::Relaxed);
        }
        Ok(())
    }

    fn test(&self, value: &[u8]) -> Result<(), MapError> {
        check_len("value", value.len(), self.spec.value_size as usize)?;
        for i in 0..self.hashes {
            let (word, bit) = self.bit(self.hash(value, i));
            if word.load(Ordering::Relaxed) & bit == 0 {
                return Err(MapError::NotFound);
            }
        }
        Ok(())
    }

    /// `BPF_MAP_LOOKUP_ELEM` from the host for a bloom filter: the value is the input;
    /// `Ok` when it may be present, `NotFound` when it is certainly absent.
    pub fn contains(&self, value: &[u8]) -> Result<(), MapError> {
        check_host_read(&self.spec)?;
        self.test(value)
    }
}

fn opnotsupp(what: &str) -> MapError {
    MapError::OpNotSupported(format!("bloom filter maps have no {what}"))
}

impl Map for BloomFilterMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn value_len(&self) -> usize {
        self.spec.value_size as usize
    }

    /// `EINVAL`: a lookup with a key has no meaning (hosts use
    /// [`BloomFilterMap::contains`], programs [`Map::peek`]).
    fn lookup(&self, _key: &[u8]) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        Err(MapError::Invalid(
            "bloom filters are queried with a value (peek)".into(),
        ))
    }

    /// A push: the key must be empty.
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        if !key.is_empty() {
            return Err(MapError::Invalid("bloom filters have no keys".into()));
        }
        self.push_value(value, flags)
    }

    fn delete(&self, _key: &[u8]) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        Err(opnotsupp("delete"))
    }

    fn next_key(&self, _key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        Err(opnotsupp("keys"))
    }

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
        Err(MapError::Invalid(
            "bloom filters have no keyed update (push)".into(),
        ))
    }

    fn prog_delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(opnotsupp("delete"))
    }

    /// `bpf_map_push_elem`: sets the value's bits. `NotPermitted` for
    /// `BPF_F_RDONLY_PROG` maps.
    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        check_prog_write(&self.spec)?;
        self.push_value(value, flags)
    }

    fn pop(&self, _out: &mut [u8]) -> Result<(), MapError> {
        Err(opnotsupp("pop"))
    }

    /// `bpf_map_peek_elem`: `value` is the input.
    fn peek(&self, value: &mut [u8]) -> Result<(), MapError> {
        self.test(value)
    }
}

impl Drop for BloomFilterMap {
    fn drop(&mut self) {
        self.memory.uncharge(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bob Jenkins' published lookup3 `hashlittle` check values, which the kernel's
    /// `jhash` equals on little-endian machines.
    #[test]
    #[cfg(target_endian = "little")]
    fn jhash_matches_lookup3() {
        assert_eq!(jhash(b"", 0), 0xdeadbeef);
        assert_eq!(jhash(b"Four score and seven years ago", 0), 0x17770551);
        assert_eq!(jhash(b"Four score and seven years ago", 1), 0xcd628161);
    }

    #[test]
    fn jhash2_agrees_with_jhash_on_whole_words() {
        let words = [1u32, 2, 3, 4, 5, 0xdeadbeef, 7];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        for n in 0..=words.len() {
            assert_eq!(jhash2(&words[..n], 9), jhash(&bytes[..4 * n], 9), "{n}");
        }
    }
}
