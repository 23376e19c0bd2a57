//! Values as JSON by their BTF type, both ways: map keys and values formatted as
//! `bpftool map dump` does with BTF, and context structs written from JSON by field name.

use bpfvm_btf::{Btf, TypeId, TypeKind};
use serde_json::{Map, Value, json};

/// Nesting limit (BTF can describe cycles only through pointers, which are not followed;
/// this bounds malformed input).
const MAX_DEPTH: usize = 32;

fn uint(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = bytes.len().min(8);
    w[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(w)
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits == 0 || bits >= 64 {
        return v as i64;
    }
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// `bytes` as a value of type `ty`: integers as numbers, structs and unions as objects
/// by member name, arrays as arrays (`char` arrays as strings), enums by enumerator name,
/// data sections as objects by variable name. What cannot be decoded is a hex string.
pub fn format(btf: &Btf, ty: TypeId, bytes: &[u8]) -> Value {
    // Values made, at most: a few per byte for real types. Zero-size members and
    // overlapping ones (unions, malformed BTF) could otherwise make a value of billions
    // of nodes from a few bytes; past the budget the rest prints as hex.
    let mut budget = bytes.len().saturating_mul(8).saturating_add(4096);
    fmt(btf, ty, bytes, 0, &mut budget)
}

fn raw(bytes: &[u8]) -> Value {
    json!(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn fmt(btf: &Btf, ty: TypeId, bytes: &[u8], depth: usize, budget: &mut usize) -> Value {
    if depth > MAX_DEPTH || *budget == 0 {
        return raw(bytes);
    }
    *budget -= 1;
    let id = btf.skip_mods_and_typedefs(ty);
    let Some(t) = btf.type_by_id(id) else {
        return raw(bytes);
    };
    match &t.kind {
        TypeKind::Int {
            size,
            encoding,
            bits,
            ..
        } => {
            let b = &bytes[..(*size as usize).min(bytes.len())];
            let v = uint(b);
            if b.len() > 8 {
                // `__int128`: a hex string, as bpftool's `btf_int128_print`.
                let mut w = [0u8; 16];
                let n = b.len().min(16);
                w[..n].copy_from_slice(&b[..n]);
                json!(format!("{:#x}", u128::from_le_bytes(w)))
            } else if encoding.bool {
                json!(v != 0)
            } else if encoding.signed {
                json!(sign_extend(v, u32::from(*bits)))
            } else {
                json!(v)
            }
        }
        TypeKind::Ptr { .. } => json!(uint(&bytes[..8.min(bytes.len())])),
        TypeKind::Enum {
            size,
            signed,
            values,
        }
        | TypeKind::Enum64 {
            size,
            signed,
            values,
        } => {
            let v = uint(&bytes[..(*size as usize).min(bytes.len())]);
            let v = if *signed {
                sign_extend(v, size.saturating_mul(8))
            } else {
                v as i64
            };
            match values.iter().find(|e| {
                e.value == v
                    || (!*signed
                        && *size < 8
                        && e.value as u64 & ((1 << (size * 8)) - 1) == v as u64)
            }) {
                Some(e) => json!(btf.string(e.name_off).unwrap_or("?")),
                None => json!(v),
            }
        }
        TypeKind::Array { elem, nelems, .. } => {
            let esize = match btf.size_of(*elem) {
                Ok(s) if s > 0 => s as usize,
                // Zero-size elements (`struct {} e[N]`): nothing to show, N times.
                _ => return raw(bytes),
            };
            let e = btf.skip_mods_and_typedefs(*elem);
            if let Some(TypeKind::Int {
                size: 1, encoding, ..
            }) = btf.type_by_id(e).map(|t| &t.kind)
                && (encoding.char || btf.name_of(e) == Some("char"))
            {
                let b = &bytes[..(*nelems as usize).min(bytes.len())];
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                if b[..end].iter().all(|c| (b' '..=b'~').contains(c)) {
                    return json!(String::from_utf8_lossy(&b[..end]));
                }
            }
            Value::Array(
                bytes
                    .chunks_exact(esize)
                    .take(*nelems as usize)
                    .map(|b| fmt(btf, *elem, b, depth + 1, budget))
                    .collect(),
            )
        }
        TypeKind::Struct { members, .. } | TypeKind::Union { members, .. } => {
            let mut out = Map::new();
            for m in members {
                let name = btf.string(m.name_off).unwrap_or("");
                let v = if m.bitfield_size > 64 {
                    // Wider than 64 bits (malformed BTF): not decoded.
                    Value::Null
                } else if m.bitfield_size > 0 {
                    // Bitfields: read the bits little-endian from the struct.
                    let mut acc = 0u64;
                    for i in 0..m.bitfield_size {
                        let bit = m.bit_offset as usize + i as usize;
                        let byte = bytes.get(bit / 8).copied().unwrap_or(0);
                        acc |= u64::from((byte >> (bit % 8)) & 1) << i;
                    }
                    json!(acc)
                } else {
                    let off = (m.bit_offset / 8) as usize;
                    let size = btf.size_of(m.ty).unwrap_or(0) as usize;
                    match bytes.get(off..off + size) {
                        Some(b) => fmt(btf, m.ty, b, depth + 1, budget),
                        None => Value::Null,
                    }
                };
                if name.is_empty() {
                    // Anonymous struct/union: its members are the parent's.
                    if let Value::Object(inner) = v {
                        out.extend(inner);
                    }
                } else {
                    out.insert(name.to_string(), v);
                }
            }
            Value::Object(out)
        }
        TypeKind::Datasec { vars, .. } => {
            let mut out = Map::new();
            for v in vars {
                let name = btf.name_of(v.ty).unwrap_or("?").to_string();
                let var_ty = match btf.type_by_id(v.ty).map(|t| &t.kind) {
                    Some(TypeKind::Var { ty, .. }) => *ty,
                    _ => v.ty,
                };
                let (o, s) = (v.offset as usize, v.size as usize);
                if let Some(b) = bytes.get(o..o + s) {
                    out.insert(name, fmt(btf, var_ty, b, depth + 1, budget));
                }
            }
            Value::Object(out)
        }
        TypeKind::Var { ty, .. } => fmt(btf, *ty, bytes, depth + 1, budget),
        _ => raw(bytes),
    }
}

/// The largest context struct `encode` builds (1 MiB).
const MAX_CONTEXT: usize = 1 << 20;

/// `value` as bytes of type `ty` (a context struct): an object sets members by name
/// (unnamed ones are zero), an array sets elements, a string fills a `char` array, a
/// number an integer or enum. Unknown members and values that do not fit are errors.
pub fn encode(btf: &Btf, ty: TypeId, value: &Value) -> Result<Vec<u8>, String> {
    let size = btf.size_of(ty).map_err(|e| format!("type size: {e}"))? as usize;
    // The size comes from the object's BTF: a context of gigabytes is not built.
    if size > MAX_CONTEXT {
        return Err(format!(
            "{} is {size} bytes; contexts are limited to {MAX_CONTEXT}",
            type_name(btf, ty)
        ));
    }
    let mut out = vec![0u8; size];
    put(btf, ty, value, &mut out, &type_name(btf, ty), 0)?;
    Ok(out)
}

/// `struct op_event`, `__u32`: the type's C name without its body.
fn type_name(btf: &Btf, ty: TypeId) -> String {
    let id = btf.skip_mods_and_typedefs(ty);
    let name = btf.name_of(ty).filter(|n| !n.is_empty());
    let prefix = match btf.type_by_id(id).map(|t| &t.kind) {
        Some(TypeKind::Struct { .. }) if name == btf.name_of(id) => "struct ",
        Some(TypeKind::Union { .. }) if name == btf.name_of(id) => "union ",
        Some(TypeKind::Enum { .. } | TypeKind::Enum64 { .. }) if name == btf.name_of(id) => "enum ",
        _ => "",
    };
    format!("{prefix}{}", name.unwrap_or("(anonymous)"))
}

fn put(
    btf: &Btf,
    ty: TypeId,
    value: &Value,
    out: &mut [u8],
    path: &str,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path}: nested too deeply"));
    }
    let id = btf.skip_mods_and_typedefs(ty);
    let kind = btf
        .type_by_id(id)
        .map(|t| &t.kind)
        .ok_or_else(|| format!("{path}: no BTF type {}", id.0))?;
    match (kind, value) {
        (
            TypeKind::Struct { members, .. } | TypeKind::Union { members, .. },
            Value::Object(fields),
        ) => {
            for (name, v) in fields {
                let m = members
                    .iter()
                    .find(|m| btf.string(m.name_off) == Some(name.as_str()))
                    .ok_or_else(|| {
                        let names: Vec<_> = members
                            .iter()
                            .filter_map(|m| btf.string(m.name_off))
                            .filter(|n| !n.is_empty())
                            .collect();
                        format!(
                            "{path} has no field `{name}` (it has: {})",
                            names.join(", ")
                        )
                    })?;
                let sub = format!("{path}.{name}");
                if m.bitfield_size > 0 {
                    return Err(format!("{sub}: bitfields cannot be set from JSON"));
                }
                let off = (m.bit_offset / 8) as usize;
                let size = btf.size_of(m.ty).map_err(|e| format!("{sub}: {e}"))? as usize;
                let slot = out
                    .get_mut(off..off + size)
                    .ok_or_else(|| format!("{sub}: outside the struct"))?;
                put(btf, m.ty, v, slot, &sub, depth + 1)?;
            }
            Ok(())
        }
        (TypeKind::Array { elem, nelems, .. }, Value::String(s)) => {
            if s.len() > *nelems as usize {
                return Err(format!(
                    "{path}: \"{s}\" is {} bytes, the array {nelems}",
                    s.len()
                ));
            }
            let esize = btf.size_of(*elem).unwrap_or(0);
            if esize != 1 {
                return Err(format!("{path}: a string fills only a char array"));
            }
            out[..s.len()].copy_from_slice(s.as_bytes());
            Ok(())
        }
        (TypeKind::Array { elem, nelems, .. }, Value::Array(items)) => {
            if items.len() > *nelems as usize {
                return Err(format!(
                    "{path}: {} elements, the array has {nelems}",
                    items.len()
                ));
            }
            let esize = btf.size_of(*elem).map_err(|e| format!("{path}: {e}"))? as usize;
            for (i, v) in items.iter().enumerate() {
                let slot = out
                    .get_mut(i * esize..(i + 1) * esize)
                    .ok_or_else(|| format!("{path}[{i}]: outside the array"))?;
                put(btf, *elem, v, slot, &format!("{path}[{i}]"), depth + 1)?;
            }
            Ok(())
        }
        (
            TypeKind::Int { .. }
            | TypeKind::Enum { .. }
            | TypeKind::Enum64 { .. }
            | TypeKind::Ptr { .. },
            Value::Number(n),
        ) => {
            let size = out.len();
            if size == 0 {
                return Err(format!("{path}: a 0-byte integer cannot hold {n}"));
            }
            // Wider than 8 bytes (`__int128`): the rest is the sign extension.
            let (v, fill): (u64, u8) = if let Some(u) = n.as_u64() {
                if size < 8 && u >> (size * 8) != 0 {
                    return Err(format!("{path}: {u} does not fit in {size} bytes"));
                }
                (u, 0)
            } else if let Some(i) = n.as_i64() {
                if size < 8 && (i < -(1i64 << (size * 8 - 1))) {
                    return Err(format!("{path}: {i} does not fit in {size} bytes"));
                }
                (i as u64, if i < 0 { 0xff } else { 0 })
            } else {
                return Err(format!("{path}: {n} is not an integer"));
            };
            let (low, high) = out.split_at_mut(size.min(8));
            low.copy_from_slice(&v.to_le_bytes()[..low.len()]);
            high.fill(fill);
            Ok(())
        }
        (TypeKind::Int { encoding, .. }, Value::Bool(b)) if encoding.bool => {
            let first = out
                .first_mut()
                .ok_or_else(|| format!("{path}: a 0-byte bool"))?;
            *first = u8::from(*b);
            Ok(())
        }
        (_, v) => Err(format!("{path}: {v} does not fit a {}", type_name(btf, id))),
    }
}
