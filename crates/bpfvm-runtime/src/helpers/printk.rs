//! Formatted output: `bpf_trace_printk`, `bpf_trace_vprintk` and `bpf_snprintf`, with the
//! kernel's format rules.
//!
//! The kernel formats in two passes, and so does this module. `bpf_bprintf_prepare`
//! (kernel/bpf/helpers.c) checks the format and packs the arguments into a 512-byte
//! buffer: integers as 4 or 8 bytes, `%c` as one byte, `%s` strings copied in (at most
//! the room left, faults giving an empty string), `%pI4`/`%pI6`/`%pB` preformatted as text.
//! `bstr_printf` (lib/vsprintf.c) then renders the format over that buffer. [`prepare`]
//! is the first pass, [`render`] the second.
//!
//! What the kernel accepts: flags `0 + - space`, a width without `*`, no precision, the
//! length modifiers `l` and `ll` only, conversions `d i u x X` (no `o`, no `h`), `c`,
//! `s`, `%%`, and the pointer forms `%p` (followed by NUL, space or punctuation),
//! `%pK %px %ps %pS %pB %pks %pus %pi4 %pI4 %pi6 %pI6`. A `%s` (and `%pks`/`%pus`) must be
//! followed by NUL, space or punctuation. Every other byte of the format must be printable
//! ASCII or whitespace. Anything else is `-EINVAL`, as is a conversion with no argument
//! left.
//!
//! Where bpfvm differs: `%p` and `%pK` print the raw value as `%px` does (the kernel
//! prints a hash of it unless booted with `no_hash_pointers`; both print NULL as zeros),
//! and `%ps`/`%pS`/`%pB` print `0x` and the hex value (the kernel's output for an address
//! with no symbol: bpfvm has no symbol table).

use super::builtin::{BuiltinHelper, all};
use super::{HelperContext, HelperFn};
use crate::FaultKind;

const fn h(
    id: u32,
    name: &'static str,
    func: HelperFn,
    available: fn(bpfvm_abi::ProgramType) -> bool,
) -> BuiltinHelper {
    BuiltinHelper {
        id,
        name,
        func,
        available,
    }
}

/// This area's helpers.
pub(super) const HELPERS: &[BuiltinHelper] = &[
    h(6, "trace_printk", trace_printk, all),
    h(165, "snprintf", snprintf, all),
    h(177, "trace_vprintk", trace_vprintk, all),
];

/// `EINVAL`, negated, as helpers return it.
const EINVAL: i64 = -22;
/// `ENOSPC`, negated.
const ENOSPC: i64 = -28;

/// Arguments `bpf_trace_printk` takes (`MAX_TRACE_PRINTK_VARARGS`).
pub const MAX_TRACE_PRINTK_VARARGS: usize = 3;
/// Arguments `bpf_snprintf` and `bpf_trace_vprintk` take (`MAX_BPRINTF_VARARGS`).
pub const MAX_BPRINTF_VARARGS: usize = 12;
/// Size of the buffer `bpf_trace_printk` formats into, NUL included (`MAX_BPRINTF_BUF`).
pub const MAX_BPRINTF_BUF: usize = 1024;
/// Size of the packed-argument buffer (`MAX_BPRINTF_BIN_ARGS`): it bounds the `%s`
/// strings of one call.
pub const MAX_BPRINTF_BIN_ARGS: usize = 512;
/// The kernel clamps field widths to this (`FIELD_WIDTH_MAX`).
const FIELD_WIDTH_MAX: usize = (1 << 23) - 1;

/// Conversion flags (`printf_spec.flags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flags {
    left: bool,
    plus: bool,
    space: bool,
    zero: bool,
}

/// One argument as `bpf_bprintf_prepare` packed it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    /// `%d %i`: signed; `%u`: unsigned; `%x`/`%X`: hex. `wide`: `l`/`ll`.
    Int { value: u64, wide: bool, conv: u8 },
    /// `%c`: the low byte.
    Char(u8),
    /// `%s`, `%pks`, `%pus`: the copied string.
    Str(Vec<u8>),
    /// `%px`, `%p`, `%pK`: the value in hex.
    PtrHex(u64),
    /// `%ps`, `%pS`: the symbol text, rendered as a string.
    Text(Vec<u8>),
    /// Text formatted in the first pass (`%pI4`, `%pB`, …) and copied as it is by the
    /// second, without padding.
    Pre(Vec<u8>),
}

/// A piece of the output: literal bytes or a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(Vec<u8>),
    Conv {
        flags: Flags,
        width: Option<usize>,
        arg: Arg,
    },
}

/// The bytes a helper reads a pointer argument's target from: the run's regions.
trait Source {
    /// Up to `max` bytes of the NUL-terminated string at `addr`: `Ok(bytes)` without
    /// the NUL when one was found within `max` bytes, `Err(bytes)` with the `max` bytes
    /// read when none was, `None` when the read faulted first.
    fn string(&mut self, addr: u64, max: usize) -> Option<Result<Vec<u8>, Vec<u8>>>;
    /// `out.len()` bytes at `addr`, or `false` on a fault.
    fn bytes(&mut self, addr: u64, out: &mut [u8]) -> bool;
}

impl Source for HelperContext<'_, '_> {
    fn string(&mut self, addr: u64, max: usize) -> Option<Result<Vec<u8>, Vec<u8>>> {
        let mut v = Vec::new();
        match self.regions.read_cstr(addr, max, &mut v) {
            Ok(true) => Some(Ok(v)),
            // Stopped at `max`: a truncated string.
            Ok(false) if v.len() == max => Some(Err(v)),
            // Stopped at the end of the region: the kernel's read would fault there.
            Ok(false) | Err(_) => None,
        }
    }

    fn bytes(&mut self, addr: u64, out: &mut [u8]) -> bool {
        self.regions.read_bytes(addr, out).is_ok()
    }
}

fn is_punct(b: u8) -> bool {
    b.is_ascii_punctuation()
}

/// The kernel's `isspace`: space, `\t \n \v \f \r`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The packed-argument buffer's accounting: how much of `MAX_BPRINTF_BIN_ARGS` is used.
struct BinArgs {
    /// No arguments: the kernel packs nothing and checks no room.
    unlimited: bool,
    used: usize,
}

impl BinArgs {
    fn room(&self) -> usize {
        MAX_BPRINTF_BIN_ARGS.saturating_sub(self.used)
    }

    /// A 4- or 8-byte value, 4-byte aligned.
    fn scalar(&mut self, size: usize) -> Result<(), i64> {
        if self.unlimited {
            return Ok(());
        }
        self.used = self.used.next_multiple_of(4);
        if self.room() < size {
            return Err(ENOSPC);
        }
        self.used += size;
        Ok(())
    }

    /// Text preformatted by `snprintf(tmp_buf, room, …)`: truncated to the room, and
    /// the buffer advanced by its full length plus the NUL.
    fn text(&mut self, mut full: Vec<u8>) -> Vec<u8> {
        if !self.unlimited {
            let keep = self.room().saturating_sub(1);
            self.used = self.used.saturating_add(full.len() + 1);
            full.truncate(keep);
        }
        full
    }
}

/// `bpf_bprintf_prepare`: checks `fmt` (without its NUL) against `args` and packs them,
/// reading `%s` and `%pI` targets through `src`. `Err` is the negative errno.
fn prepare(fmt: &[u8], args: &[u64], src: &mut dyn Source) -> Result<Vec<Piece>, i64> {
    let at = |i: usize| fmt.get(i).copied().unwrap_or(0);
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let mut bin = BinArgs {
        unlimited: args.is_empty(),
        used: 0,
    };
    let mut next = 0usize;
    let mut i = 0usize;
    while i < fmt.len() {
        let c = fmt[i];
        if !c.is_ascii() || !(c.is_ascii_graphic() || c == b' ' || is_space(c)) {
            return Err(EINVAL);
        }
        if c != b'%' {
            lit.push(c);
            i += 1;
            continue;
        }
        if at(i + 1) == b'%' {
            lit.push(b'%');
            i += 2;
            continue;
        }
        let Some(&raw) = args.get(next) else {
            return Err(EINVAL);
        };
        next += 1;
        i += 1;
        let mut flags = Flags::default();
        loop {
            match at(i) {
                b'0' => flags.zero = true,
                b'+' => flags.plus = true,
                b'-' => flags.left = true,
                b' ' => flags.space = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = None;
        if (b'1'..=b'9').contains(&at(i)) {
            let mut w = 0usize;
            while at(i).is_ascii_digit() {
                w = w
                    .saturating_mul(10)
                    .saturating_add(usize::from(at(i) - b'0'));
                i += 1;
            }
            width = Some(w.min(FIELD_WIDTH_MAX));
        }
        let arg = match at(i) {
            b'p' => {
                let arg = pointer(fmt, i, raw, &mut bin, src)?;
                // The second pass skips every alphanumeric byte after `%p` (all of them
                // printable ASCII, as the first pass requires).
                let mut j = i + 1;
                while at(j).is_ascii_alphanumeric() {
                    j += 1;
                }
                i = j;
                arg
            }
            b's' => {
                i += 1;
                string_arg(at(i), raw, &mut bin, src)?
            }
            b'c' => {
                i += 1;
                if !bin.unlimited {
                    if bin.room() == 0 {
                        return Err(ENOSPC);
                    }
                    bin.used += 1;
                }
                Arg::Char(raw as u8)
            }
            _ => {
                let mut wide = false;
                if at(i) == b'l' {
                    wide = true;
                    i += 1;
                }
                if at(i) == b'l' {
                    i += 1;
                }
                let conv = at(i);
                if !matches!(conv, b'i' | b'd' | b'u' | b'x' | b'X') {
                    return Err(EINVAL);
                }
                i += 1;
                bin.scalar(if wide { 8 } else { 4 })?;
                Arg::Int {
                    value: raw,
                    wide,
                    conv,
                }
            }
        };
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Conv { flags, width, arg });
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

/// `%s`, `%pks`, `%pus`: `next` is the byte after the conversion.
fn string_arg(next: u8, raw: u64, bin: &mut BinArgs, src: &mut dyn Source) -> Result<Arg, i64> {
    if next != 0 && !is_space(next) && !is_punct(next) {
        return Err(EINVAL);
    }
    let max = if bin.unlimited {
        MAX_BPRINTF_BIN_ARGS
    } else {
        if bin.room() == 0 {
            return Err(ENOSPC);
        }
        bin.room()
    };
    // strncpy_from_*_nofault: the string and its NUL, or `max - 1` bytes and a NUL, or
    // on a fault an empty string taking one byte.
    let (s, consumed) = match src.string(raw, max) {
        Some(Ok(s)) => {
            let n = s.len() + 1;
            (s, n)
        }
        Some(Err(mut s)) => {
            s.truncate(max - 1);
            (s, max)
        }
        None => (Vec::new(), 1),
    };
    if !bin.unlimited {
        bin.used += consumed;
    }
    Ok(Arg::Str(s))
}

/// The `%p` forms, `i` at the `p`.
fn pointer(
    fmt: &[u8],
    i: usize,
    raw: u64,
    bin: &mut BinArgs,
    src: &mut dyn Source,
) -> Result<Arg, i64> {
    let at = |k: usize| fmt.get(k).copied().unwrap_or(0);
    let kind = at(i + 1);
    if matches!(kind, b'k' | b'u') && at(i + 2) == b's' {
        let arg = string_arg(at(i + 3), raw, bin, src)?;
        return Ok(arg);
    }
    if kind == 0 || is_space(kind) || is_punct(kind) || matches!(kind, b'K' | b'x') {
        bin.scalar(8)?;
        return Ok(Arg::PtrHex(raw));
    }
    if matches!(kind, b's' | b'S' | b'B') {
        let text = format!("0x{raw:x}").into_bytes();
        if kind == b'B' {
            return Ok(Arg::Pre(bin.text(text)));
        }
        bin.scalar(8)?;
        return Ok(Arg::Text(text));
    }
    let v6 = match (kind, at(i + 2)) {
        (b'i' | b'I', b'4') => false,
        (b'i' | b'I', b'6') => true,
        _ => return Err(EINVAL),
    };
    let size = if v6 { 16 } else { 4 };
    if !bin.unlimited && bin.room() < size {
        return Err(ENOSPC);
    }
    let mut ip = [0u8; 16];
    if !src.bytes(raw, &mut ip[..size]) {
        ip = [0u8; 16];
    }
    let text = ip_text(&ip[..size], kind == b'I');
    Ok(Arg::Pre(bin.text(text)))
}

/// `%pI4` (`1.2.3.4`), `%pi4` (`001.002.003.004`), `%pI6` (eight groups of four hex
/// digits with colons), `%pi6` (the same without colons).
fn ip_text(ip: &[u8], upper_i: bool) -> Vec<u8> {
    let mut s = String::new();
    if ip.len() == 4 {
        for (k, b) in ip.iter().enumerate() {
            if k > 0 {
                s.push('.');
            }
            if upper_i {
                s.push_str(&b.to_string());
            } else {
                s.push_str(&format!("{b:03}"));
            }
        }
    } else {
        for (k, pair) in ip.chunks(2).enumerate() {
            if k > 0 && upper_i {
                s.push(':');
            }
            s.push_str(&format!("{:02x}{:02x}", pair[0], pair[1]));
        }
    }
    s.into_bytes()
}

/// Output into a buffer of `cap` bytes that counts what it could not keep.
struct Out {
    buf: Vec<u8>,
    cap: usize,
    total: usize,
}

impl Out {
    fn new(cap: usize) -> Out {
        Out {
            buf: Vec::new(),
            cap,
            total: 0,
        }
    }

    fn push(&mut self, b: u8) {
        if self.total < self.cap {
            self.buf.push(b);
        }
        self.total += 1;
    }

    fn fill(&mut self, b: u8, n: usize) {
        let keep = self.cap.saturating_sub(self.total).min(n);
        self.buf.extend(std::iter::repeat_n(b, keep));
        self.total += n;
    }

    fn extend(&mut self, s: &[u8]) {
        let keep = self.cap.saturating_sub(self.total).min(s.len());
        self.buf.extend_from_slice(&s[..keep]);
        self.total += s.len();
    }
}

/// `bstr_printf`'s rendering of the prepared pieces for a buffer of `size` bytes: the
/// bytes kept before the NUL (at most `size - 1`) and the length the whole output has.
///
/// One quirk of the kernel's is kept: text preformatted in the first pass (`%pI4`,
/// `%pB`…) is copied only while the output is not yet full (`str < end`); once it is,
/// that text is neither written nor counted. (The kernel then also fails to step over
/// it in the argument buffer, so later arguments are read from the wrong place; their
/// output is beyond the buffer, but their lengths count. bpfvm counts them as they are.)
fn render(pieces: &[Piece], size: usize) -> (Vec<u8>, usize) {
    let mut out = Out::new(size.saturating_sub(1));
    for p in pieces {
        match p {
            Piece::Lit(s) => out.extend(s),
            Piece::Conv {
                arg: Arg::Pre(s), ..
            } => {
                if out.total < size {
                    out.extend(s.split(|&b| b == 0).next().unwrap_or(&[]));
                }
            }
            Piece::Conv { flags, width, arg } => conv(&mut out, *flags, *width, arg),
        }
    }
    (out.buf, out.total)
}

fn conv(out: &mut Out, flags: Flags, width: Option<usize>, arg: &Arg) {
    match arg {
        Arg::Int { value, wide, conv } => {
            let (signed, base, upper) = match conv {
                b'd' | b'i' => (true, 10, false),
                b'u' => (false, 10, false),
                b'x' => (false, 16, false),
                _ => (false, 16, true),
            };
            let v = if *wide {
                *value
            } else if signed {
                i64::from(*value as u32 as i32) as u64
            } else {
                u64::from(*value as u32)
            };
            number(out, v, signed, base, upper, flags, width);
        }
        Arg::PtrHex(v) => {
            // pointer_string: lowercase hex, 16 zero-padded digits unless a width is given.
            let (width, flags) = match width {
                Some(w) => (Some(w), flags),
                None => (
                    Some(16),
                    Flags {
                        zero: true,
                        ..flags
                    },
                ),
            };
            number(out, *v, false, 16, false, flags, width);
        }
        Arg::Char(c) => {
            let pad = width.unwrap_or(0).saturating_sub(1);
            if !flags.left {
                out.fill(b' ', pad);
            }
            out.push(*c);
            if flags.left {
                out.fill(b' ', pad);
            }
        }
        Arg::Str(s) | Arg::Text(s) | Arg::Pre(s) => {
            // The second pass reads strings up to their NUL.
            let s = s.split(|&b| b == 0).next().unwrap_or(&[]);
            let pad = width.unwrap_or(0).saturating_sub(s.len());
            if !flags.left {
                out.fill(b' ', pad);
            }
            out.extend(s);
            if flags.left {
                out.fill(b' ', pad);
            }
        }
    }
}

/// vsprintf's `number()` without precision or `#`.
fn number(
    out: &mut Out,
    num: u64,
    signed: bool,
    base: u64,
    upper: bool,
    flags: Flags,
    width: Option<usize>,
) {
    let zero = flags.zero && !flags.left;
    let mut field = width.unwrap_or(0) as i64;
    let mut num = num;
    let mut sign = None;
    if signed {
        if (num as i64) < 0 {
            sign = Some(b'-');
            num = (num as i64).unsigned_abs();
            field -= 1;
        } else if flags.plus {
            sign = Some(b'+');
            field -= 1;
        } else if flags.space {
            sign = Some(b' ');
            field -= 1;
        }
    }
    let digits = if base == 16 {
        if upper {
            format!("{num:X}")
        } else {
            format!("{num:x}")
        }
    } else {
        num.to_string()
    };
    field -= digits.len() as i64;
    let pad = usize::try_from(field).unwrap_or(0);
    if !zero && !flags.left {
        out.fill(b' ', pad);
    }
    if let Some(s) = sign {
        out.push(s);
    }
    if zero {
        out.fill(b'0', pad);
    }
    out.extend(digits.as_bytes());
    if flags.left {
        out.fill(b' ', pad);
    }
}

/// Formats `fmt` (the bytes before its NUL) with `args` as the kernel's printf-like
/// helpers do, reading `%s` and `%pI` targets through `src`, for a buffer of `size`
/// bytes: the bytes kept before the NUL and the whole output's length, or the negative
/// errno of a bad format.
fn format(
    fmt: &[u8],
    args: &[u64],
    size: usize,
    src: &mut dyn Source,
) -> Result<(Vec<u8>, usize), i64> {
    let pieces = prepare(fmt, args, src)?;
    Ok(render(&pieces, size))
}

/// The format bytes before the first NUL of `fmt_size` bytes at `fmt`, or `None`
/// when there is no NUL (the kernel's `-EINVAL`).
fn sized_format(
    ctx: &mut HelperContext<'_, '_>,
    fmt: u64,
    fmt_size: u64,
) -> Result<Option<Vec<u8>>, FaultKind> {
    let size = usize::try_from(fmt_size).map_err(|_| ctx.fail("format size too large"))?;
    ctx.regions.check(fmt, size, false)?;
    let mut v = ctx.read_vec(fmt, size)?;
    Ok(v.iter().position(|&b| b == 0).map(|n| {
        v.truncate(n);
        v
    }))
}

/// The `data`/`data_len` argument array of `snprintf` and `vprintk`.
fn arg_array(
    ctx: &mut HelperContext<'_, '_>,
    data: u64,
    data_len: u64,
) -> Result<Result<Vec<u64>, i64>, FaultKind> {
    if !data_len.is_multiple_of(8)
        || data_len > (MAX_BPRINTF_VARARGS * 8) as u64
        || (data_len != 0 && data == 0)
    {
        return Ok(Err(EINVAL));
    }
    let bytes = ctx.read_vec(data, data_len as usize)?;
    Ok(Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect()))
}

/// Sends the formatted buffer to the trace sink: up to its first NUL, one trailing
/// newline removed.
fn emit(ctx: &mut HelperContext<'_, '_>, buf: &[u8]) {
    let line = buf.split(|&b| b == 0).next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    ctx.run.env.trace(&String::from_utf8_lossy(line));
}

/// `bpf_trace_printk(fmt, fmt_size, a1, a2, a3)`: formats into a 1024-byte buffer, emits
/// it as a trace line, and returns the length the whole output has (not counting the
/// NUL; more than was kept when it overflowed).
fn trace_printk(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let Some(fmt) = sized_format(ctx, a[0], a[1])? else {
        return Ok(EINVAL as u64);
    };
    let args: [u64; MAX_TRACE_PRINTK_VARARGS] = [a[2], a[3], a[4]];
    match format(&fmt, &args, MAX_BPRINTF_BUF, ctx) {
        Ok((buf, total)) => {
            emit(ctx, &buf);
            Ok(total as u64)
        }
        Err(e) => Ok(e as u64),
    }
}

/// `bpf_trace_vprintk(fmt, fmt_size, data, data_len)`: `bpf_trace_printk` with up to 12
/// arguments from an array.
fn trace_vprintk(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let args = match arg_array(ctx, a[2], a[3])? {
        Ok(v) => v,
        Err(e) => return Ok(e as u64),
    };
    let Some(fmt) = sized_format(ctx, a[0], a[1])? else {
        return Ok(EINVAL as u64);
    };
    match format(&fmt, &args, MAX_BPRINTF_BUF, ctx) {
        Ok((buf, total)) => {
            emit(ctx, &buf);
            Ok(total as u64)
        }
        Err(e) => Ok(e as u64),
    }
}

/// `bpf_snprintf(str, str_size, fmt, data, data_len)`: formats into `str` (at most
/// `str_size` bytes, NUL-terminated when `str_size > 0`) and returns the size the whole
/// output needs, NUL included. `fmt` is a NUL-terminated constant string (the verifier
/// guarantees it in the kernel; here a format without a NUL in its region is a fault).
fn snprintf(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let size = usize::try_from(a[1]).map_err(|_| ctx.fail("size too large"))?;
    if size > 0 {
        ctx.regions.check(a[0], size, true)?;
    }
    let args = match arg_array(ctx, a[3], a[4])? {
        Ok(v) => v,
        Err(e) => return Ok(e as u64),
    };
    let mut fmt = Vec::new();
    if !ctx.regions.read_cstr(a[2], usize::MAX, &mut fmt)? {
        return Err(ctx.fail("format string is not NUL-terminated"));
    }
    match format(&fmt, &args, size, ctx) {
        Ok((mut buf, total)) => {
            if size > 0 {
                buf.push(0);
                ctx.regions.write_bytes(a[0], &buf)?;
            }
            Ok(total as u64 + 1)
        }
        Err(e) => Ok(e as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory for tests: strings at fixed addresses.
    struct Fake(Vec<(u64, Vec<u8>)>);

    impl Source for Fake {
        fn string(&mut self, addr: u64, max: usize) -> Option<Result<Vec<u8>, Vec<u8>>> {
            let (base, m) = self
                .0
                .iter()
                .find(|(b, m)| addr >= *b && addr < b + m.len() as u64)?;
            let m = &m[(addr - base) as usize..];
            let m = &m[..m.len().min(max)];
            match m.iter().position(|&b| b == 0) {
                Some(n) => Some(Ok(m[..n].to_vec())),
                None if m.len() == max => Some(Err(m.to_vec())),
                None => None,
            }
        }

        fn bytes(&mut self, addr: u64, out: &mut [u8]) -> bool {
            for (base, m) in &self.0 {
                if addr >= *base && addr + out.len() as u64 <= base + m.len() as u64 {
                    let o = (addr - base) as usize;
                    out.copy_from_slice(&m[o..o + out.len()]);
                    return true;
                }
            }
            false
        }
    }

    fn fmt(f: &str, args: &[u64]) -> Result<String, i64> {
        let mut src = Fake(vec![
            (0x1000, b"hello\0".to_vec()),
            (0x2000, vec![192, 168, 1, 20]),
            (0x3000, vec![b'a'; 600]),
        ]);
        format(f.as_bytes(), args, 4097, &mut src).map(|(b, n)| {
            assert_eq!(b.len(), n);
            String::from_utf8_lossy(&b).into_owned()
        })
    }

    #[test]
    fn conversions() {
        assert_eq!(
            fmt("%d|%i|%u", &[u64::MAX, 5, u64::MAX]).as_deref(),
            Ok("-1|5|4294967295")
        );
        assert_eq!(
            fmt("%ld|%lld|%lu", &[u64::MAX, 1 << 40, u64::MAX]).as_deref(),
            Ok("-1|1099511627776|18446744073709551615")
        );
        assert_eq!(
            fmt("%x %X %lx", &[0xabcd_ef12_3456, 0xbeef, 0x1_0000_0000]).as_deref(),
            Ok("ef123456 BEEF 100000000")
        );
        assert_eq!(
            fmt(
                "[%5d][%-5d][%05d][%+d][% d][%-05d]",
                &[(-42i64) as u64, 7, (-42i64) as u64, 3, 3, 9]
            )
            .as_deref(),
            Ok("[  -42][7    ][-0042][+3][ 3][9    ]")
        );
        assert_eq!(
            fmt("[%+u][%08x]", &[3, 0xbeef]).as_deref(),
            Ok("[3][0000beef]")
        );
        assert_eq!(
            fmt(
                "%c%c|%3c|%-3c|",
                &[b'o' as u64, 0x16b, b'x' as u64, b'y' as u64]
            )
            .as_deref(),
            Ok("ok|  x|y  |")
        );
        assert_eq!(
            fmt("<%s> <%8s> <%-8s>", &[0x1000, 0x1000, 0x1000]).as_deref(),
            Ok("<hello> <   hello> <hello   >")
        );
        assert_eq!(fmt("<%s>", &[8]).as_deref(), Ok("<>"));
        assert_eq!(
            fmt("100%% %pI4 %pi4", &[0x2000, 0x2000]).as_deref(),
            Ok("100% 192.168.1.20 192.168.001.020")
        );
        assert_eq!(
            fmt("%px %p %pK,%20px", &[0x1234, 0, 1, 0xff]).as_deref(),
            Ok("0000000000001234 0000000000000000 0000000000000001,                  ff")
        );
        assert_eq!(
            fmt("%pS %ps", &[0x1234, 0x10]).as_deref(),
            Ok("0x1234 0x10")
        );
        assert_eq!(fmt("%pI4x!", &[0x2000]).as_deref(), Ok("192.168.1.20!"));
        assert_eq!(fmt("%pI4", &[8]).as_deref(), Ok("0.0.0.0"));
    }

    #[test]
    fn ipv6() {
        let mut src = Fake(vec![(
            0x10,
            vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        )]);
        let (b, _) = format(b"%pI6 %pi6", &[0x10, 0x10], 100, &mut src).expect("valid");
        assert_eq!(
            b,
            b"2001:0db8:0000:0000:0000:0000:0000:0001 20010db8000000000000000000000001"
        );
    }

    #[test]
    fn rejected_formats() {
        for f in [
            "%o", "%hd", "%hhd", "%5.2d", "%*d", "%#x", "%lc", "%ls", "%q", "%", "%sx", "%pks1",
            "%pz", "%pI5", "%lf", "\x01", "é",
        ] {
            assert_eq!(fmt(f, &[1, 2, 3]), Err(EINVAL), "{f:?}");
        }
        // Too few arguments; extra arguments are fine.
        assert_eq!(fmt("%d %d", &[1]), Err(EINVAL));
        assert_eq!(fmt("%d", &[]), Err(EINVAL));
        assert_eq!(fmt("%d", &[1, 2]).as_deref(), Ok("1"));
        assert_eq!(fmt("tab\there\n", &[]).as_deref(), Ok("tab\there\n"));
    }

    #[test]
    fn strings_share_512_bytes() {
        // A 600-byte run without NUL takes 511 bytes and a NUL; nothing is left after.
        let s = fmt("%s", &[0x3000]).expect("valid");
        assert_eq!(s.len(), 511);
        assert_eq!(fmt("%s%d", &[0x3000, 1]), Err(ENOSPC));
        assert_eq!(fmt("%s%c", &[0x3000, 1]), Err(ENOSPC));
        assert_eq!(fmt("%d%s", &[1, 0x3000]).map(|s| s.len()), Ok(1 + 507));
    }

    #[test]
    fn truncation_counts_everything() {
        let mut src = Fake(vec![]);
        let (b, n) = format(b"%d-%d", &[12345, 678], 5, &mut src).expect("valid");
        assert_eq!((b.as_slice(), n), (&b"1234"[..], 9));
        let (b, n) = format(b"%100d", &[1], 0, &mut src).expect("valid");
        assert_eq!((b.len(), n), (0, 100));
    }
}
