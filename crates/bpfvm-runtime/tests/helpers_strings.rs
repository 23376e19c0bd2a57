//! The formatting, string and memory-probing helpers called directly, with hand-computed
//! expectations from the kernel's rules (kernel/bpf/helpers.c `bpf_bprintf_prepare`,
//! lib/vsprintf.c `bstr_printf`, kernel/trace/bpf_trace.c, mm/maccess.c).

use bpfvm_abi::ProgramType as KernelType;
use bpfvm_isa::{Insn, Program};
use bpfvm_runtime::{
    FaultKind, FixedEnvironment, HelperContext, HelperRegistry, LoadedProgram, ProgramType,
    RegionKind, Regions, RunState, Task,
};

const EFAULT: u64 = -14i64 as u64;
const EINVAL: u64 = -22i64 as u64;
const ENOSPC: u64 = -28i64 as u64;

const TRACE_PRINTK: u32 = 6;
const PROBE_READ: u32 = 4;
const PROBE_READ_STR: u32 = 45;
const STRTOL: u32 = 105;
const STRTOUL: u32 = 106;
const PROBE_READ_USER: u32 = 112;
const PROBE_READ_KERNEL: u32 = 113;
const PROBE_READ_USER_STR: u32 = 114;
const PROBE_READ_KERNEL_STR: u32 = 115;
const SNPRINTF: u32 = 165;
const TRACE_VPRINTK: u32 = 177;
const STRNCMP: u32 = 182;

/// A kprobe program (so every helper of this area is offered) and an environment that
/// collects trace lines.
struct Harness {
    prog: LoadedProgram,
    env: FixedEnvironment,
    helpers: HelperRegistry,
}

impl Harness {
    fn new() -> Harness {
        let t = ProgramType::Kernel(KernelType::Kprobe);
        Harness {
            prog: LoadedProgram::new(Program::from_insns(&[Insn::Exit]).expect("valid"), t)
                .expect("loads"),
            env: FixedEnvironment::new(0, 1, 1, Task::with_comm(1, 1, 0, 0, "test")),
            helpers: HelperRegistry::for_program_type(t),
        }
    }

    /// Calls helper `id` with `out` writable and `input` read-only in the run's regions;
    /// `args` gets their addresses.
    fn call(
        &self,
        id: u32,
        out: &mut [u8],
        input: &[u8],
        args: impl FnOnce(u64, u64) -> [u64; 5],
    ) -> Result<u64, FaultKind> {
        let a = args(out.as_ptr() as u64, input.as_ptr() as u64);
        let mut run = RunState::new(&self.prog, 0, &self.env);
        let mut regions = Regions::new();
        regions.add_mut(RegionKind::Host, out).expect("region");
        regions
            .add_read_only(RegionKind::Host, input)
            .expect("region");
        let mut ctx = HelperContext {
            regions: &mut regions,
            run: &mut run,
            id,
        };
        let h = self.helpers.get(i64::from(id)).expect("helper offered");
        h.call(&mut ctx, a)
    }

    /// `bpf_snprintf` of `fmt` (NUL added) with `args` into `size` bytes: the return
    /// value and the bytes written.
    fn snprintf(&self, fmt: &str, args: &[u64], size: usize) -> (u64, Vec<u8>) {
        // input: fmt\0 | args
        let mut input = fmt.as_bytes().to_vec();
        input.push(0);
        let args_at = input.len();
        for a in args {
            input.extend_from_slice(&a.to_le_bytes());
        }
        let mut out = vec![0xeeu8; size.max(1)];
        let r = self
            .call(SNPRINTF, &mut out, &input, |o, i| {
                [
                    if size == 0 { 0 } else { o },
                    size as u64,
                    i,
                    if args.is_empty() {
                        0
                    } else {
                        i + args_at as u64
                    },
                    (args.len() * 8) as u64,
                ]
            })
            .expect("no fault");
        out.truncate(size);
        (r, out)
    }
}

/// `bpf_snprintf` into a large buffer: the string before the NUL, and the return value.
fn sn(h: &Harness, fmt: &str, args: &[u64]) -> (String, u64) {
    let (r, out) = h.snprintf(fmt, args, 256);
    let n = out.iter().position(|&b| b == 0).expect("NUL-terminated");
    (String::from_utf8_lossy(&out[..n]).into_owned(), r)
}

#[test]
fn snprintf_conversions() {
    let h = Harness::new();
    let neg = |v: i64| v as u64;
    let cases: &[(&str, &[u64], &str)] = &[
        ("%d", &[neg(-17)], "-17"),
        // A 32-bit conversion sees the low half only.
        ("%d", &[0x1_0000_0005], "5"),
        ("%i", &[0xffff_ffff], "-1"),
        ("%u", &[neg(-1)], "4294967295"),
        ("%lu", &[neg(-1)], "18446744073709551615"),
        ("%lld", &[neg(-9_000_000_000)], "-9000000000"),
        ("%llu", &[1 << 63], "9223372036854775808"),
        (
            "%x|%X|%llx",
            &[0xdead_beef, 0xbeef, 0x1234_5678_9abc],
            "deadbeef|BEEF|123456789abc",
        ),
        (
            "[%6d][%-6d][%06d][%+d][% d]",
            &[neg(-12), 34, neg(-12), 5, 5],
            "[   -12][34    ][-00012][+5][ 5]",
        ),
        ("[%+u][% x][%-06x]", &[7, 0xa, 0xb], "[7][a][b     ]"),
        ("%c%c%c", &[u64::from(b'a'), 0x162, u64::from(b'c')], "abc"),
        (
            "[%4c][%-4c]",
            &[u64::from(b'x'), u64::from(b'y')],
            "[   x][y   ]",
        ),
        ("100%%", &[], "100%"),
        ("%px", &[0xffff_8880_1234_5678], "ffff888012345678"),
        ("%px %p", &[0x42, 0], "0000000000000042 0000000000000000"),
        ("%10px|%-10px|", &[0x42, 0x42], "        42|42        |"),
        ("%pS", &[0x1000], "0x1000"),
    ];
    for (fmt, args, want) in cases {
        let (got, r) = sn(&h, fmt, args);
        assert_eq!(got, *want, "{fmt}");
        assert_eq!(r, want.len() as u64 + 1, "{fmt}: length with the NUL");
    }
}

#[test]
fn snprintf_reads_strings_and_addresses() {
    let h = Harness::new();
    let extra = b"world\0\x0a\x00\x00\x01\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01";
    let fmt = "[%s][%7s][%-7s][%pI4][%pi4][%pI6][%pi6][%s]";
    let mut input = fmt.as_bytes().to_vec();
    input.push(0);
    let nargs = 8;
    let args_at = input.len();
    input.extend(std::iter::repeat_n(0u8, nargs * 8));
    let extra_at = input.len();
    input.extend_from_slice(extra);
    let mut out = vec![0u8; 200];
    let r = h
        .call(SNPRINTF, &mut out, &input, |o, i| {
            [o, 200, i, i + args_at as u64, (nargs * 8) as u64]
        })
        .expect("no fault");
    // That call read zeros as pointers: every %s is empty, every address 0.
    let n = out.iter().position(|&b| b == 0).expect("NUL");
    assert_eq!(
        String::from_utf8_lossy(&out[..n]),
        "[][       ][       ][0.0.0.0][000.000.000.000][0000:0000:0000:0000:0000:0000:0000:0000][00000000000000000000000000000000][]"
    );
    assert_eq!(r, n as u64 + 1);

    // Now with the pointers filled in: they point into the same input buffer.
    let mut input2 = input.clone();
    let base = input2.as_ptr() as u64;
    let s = base + extra_at as u64;
    let ip4 = s + 6;
    let ip6 = s + 10;
    let ptrs = [s, s, s, ip4, ip4, ip6, ip6, 8];
    for (k, p) in ptrs.iter().enumerate() {
        input2[args_at + k * 8..args_at + k * 8 + 8].copy_from_slice(&p.to_le_bytes());
    }
    let mut out = vec![0u8; 200];
    let r = h
        .call(SNPRINTF, &mut out, &input2, |o, i| {
            assert_eq!(i, base);
            [o, 200, i, i + args_at as u64, (nargs * 8) as u64]
        })
        .expect("no fault");
    let want = "[world][  world][world  ][10.0.0.1][010.000.000.001][2001:0db8:0000:0000:0000:0000:0000:0001][20010db8000000000000000000000001][]";
    let n = out.iter().position(|&b| b == 0).expect("NUL");
    assert_eq!(String::from_utf8_lossy(&out[..n]), want);
    assert_eq!(r, want.len() as u64 + 1);
}

#[test]
fn snprintf_truncates_and_counts() {
    let h = Harness::new();
    let (r, out) = h.snprintf("abc%d", &[12345], 5);
    assert_eq!((r, out.as_slice()), (9, &b"abc1\0"[..]));
    let (r, out) = h.snprintf("abc", &[], 1);
    assert_eq!((r, out.as_slice()), (4, &b"\0"[..]));
    // str NULL with size 0: nothing written, the size needed returned.
    let (r, _) = h.snprintf("%d", &[1000], 0);
    assert_eq!(r, 5);
    // Only str_size bytes are touched.
    let input = b"hello\0";
    let mut out = [0xeeu8; 8];
    let r = h
        .call(SNPRINTF, &mut out, input, |o, i| [o, 3, i, 0, 0])
        .expect("no fault");
    assert_eq!((r, out), (6, *b"he\0\xee\xee\xee\xee\xee"));
}

#[test]
fn snprintf_rejects_what_the_kernel_rejects() {
    let h = Harness::new();
    for fmt in [
        "%o", "%hd", "%hhu", "%.2d", "%*d", "%#x", "%zu", "%lc", "%ls", "%e", "%sX", "%pz", "%pI5",
        "%n", "%",
    ] {
        let (r, out) = h.snprintf(fmt, &[1, 2], 16);
        assert_eq!(r, EINVAL, "{fmt}");
        assert_eq!(out[0], 0xee, "{fmt}: nothing written");
    }
    // More conversions than arguments.
    assert_eq!(h.snprintf("%d %d", &[1], 16).0, EINVAL);
    // Non-printable bytes in the format.
    assert_eq!(h.snprintf("a\x07b", &[], 16).0, EINVAL);
    // data_len not a multiple of 8, or more than 12 arguments.
    let input = b"%d\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    let mut out = [0u8; 16];
    for len in [4u64, 104] {
        let r = h
            .call(SNPRINTF, &mut out, input, |o, i| [o, 16, i, i + 3, len])
            .expect("no fault");
        assert_eq!(r, EINVAL, "data_len {len}");
    }
    // Data length without data.
    let r = h
        .call(SNPRINTF, &mut out, input, |o, i| [o, 16, i, 0, 8])
        .expect("no fault");
    assert_eq!(r, EINVAL);
    // Twelve arguments are accepted.
    let fmt = "%d".repeat(12);
    let args: Vec<u64> = (1..=12).collect();
    assert_eq!(sn(&h, &fmt, &args).0, "123456789101112");
}

#[test]
fn snprintf_strings_share_the_512_byte_argument_buffer() {
    let h = Harness::new();
    let long = vec![b'z'; 700];
    let fmt = "%s|%d";
    let mut input = fmt.as_bytes().to_vec();
    input.push(0);
    let args_at = input.len();
    input.extend([0u8; 16]);
    let s_at = input.len();
    input.extend_from_slice(&long);
    let base = input.as_ptr() as u64;
    input[args_at..args_at + 8].copy_from_slice(&(base + s_at as u64).to_le_bytes());
    let mut out = vec![0u8; 1024];
    // The string takes all 512 bytes (511 and a NUL): no room for the integer.
    let r = h
        .call(SNPRINTF, &mut out, &input, |o, i| {
            [o, 1024, i, i + args_at as u64, 16]
        })
        .expect("no fault");
    assert_eq!(r, ENOSPC);
    // Alone, it prints 511 bytes.
    input[..3].copy_from_slice(b"%s\0");
    let r = h
        .call(SNPRINTF, &mut out, &input, |o, i| {
            [o, 1024, i, i + args_at as u64, 8]
        })
        .expect("no fault");
    assert_eq!(r, 512);
    assert!(out[..511].iter().all(|&b| b == b'z') && out[511] == 0);
}

#[test]
fn trace_printk_emits_a_line_and_returns_its_length() {
    let h = Harness::new();
    let fmt = b"pid %d comm %c%c\n\0";
    let mut out = [0u8; 1];
    let r = h
        .call(TRACE_PRINTK, &mut out, fmt, |_, i| {
            [i, fmt.len() as u64, 42, u64::from(b'o'), u64::from(b'k')]
        })
        .expect("no fault");
    assert_eq!(r, "pid 42 comm ok\n".len() as u64);
    assert_eq!(h.env.take_trace(), vec!["pid 42 comm ok".to_string()]);
    // The NUL must lie within fmt_size.
    let r = h
        .call(TRACE_PRINTK, &mut out, fmt, |_, i| [i, 5, 0, 0, 0])
        .expect("no fault");
    assert_eq!(r, EINVAL);
    // Three arguments at most.
    let fmt4 = b"%d%d%d%d\0";
    let r = h
        .call(TRACE_PRINTK, &mut out, fmt4, |_, i| [i, 9, 1, 2, 3])
        .expect("no fault");
    assert_eq!(r, EINVAL);
    assert!(h.env.take_trace().is_empty());
    // A line longer than the 1024-byte buffer is cut at 1023 bytes; the return value is
    // the whole length.
    let wide = b"%2000d\0";
    let r = h
        .call(TRACE_PRINTK, &mut out, wide, |_, i| [i, 7, 7, 0, 0])
        .expect("no fault");
    assert_eq!(r, 2000);
    let lines = h.env.take_trace();
    assert_eq!(lines[0].len(), 1023);
    // A format larger than its region is a fault, not a read past it.
    let r = h.call(TRACE_PRINTK, &mut out, fmt, |_, i| [i, 4096, 0, 0, 0]);
    assert!(matches!(r, Err(FaultKind::OutOfBounds { .. })), "{r:?}");
}

#[test]
fn trace_vprintk_takes_twelve_arguments() {
    let h = Harness::new();
    let fmt = "%d %d %d %d %d %d %d %d %d %d %d %x";
    let mut input = fmt.as_bytes().to_vec();
    input.push(0);
    let args_at = input.len();
    for k in 1..=12u64 {
        input.extend_from_slice(&(k * 10).to_le_bytes());
    }
    let mut out = [0u8; 1];
    let r = h
        .call(TRACE_VPRINTK, &mut out, &input, |_, i| {
            [i, args_at as u64, i + args_at as u64, 96, 0]
        })
        .expect("no fault");
    let want = "10 20 30 40 50 60 70 80 90 100 110 78";
    assert_eq!(r, want.len() as u64);
    assert_eq!(h.env.take_trace(), vec![want.to_string()]);
}

/// A page that is mapped, followed by one that is not.
#[cfg(target_os = "linux")]
struct Guarded {
    base: *mut u8,
}

#[cfg(target_os = "linux")]
impl Guarded {
    fn new() -> Guarded {
        // SAFETY: an anonymous private mapping of two pages; we own it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: the second page of our own mapping; nothing refers to it.
        let rc = unsafe { libc::munmap(p.cast::<u8>().add(4096).cast(), 4096) };
        assert_eq!(rc, 0);
        Guarded { base: p.cast() }
    }

    /// The address `back` bytes before the unmapped page, after writing `bytes` there.
    fn tail(&self, bytes: &[u8]) -> u64 {
        let at = 4096 - bytes.len();
        // SAFETY: `at..4096` lies in the mapped first page, which only we use.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(at), bytes.len()) };
        self.base as u64 + at as u64
    }

    fn unmapped(&self) -> u64 {
        self.base as u64 + 4096
    }
}

#[cfg(target_os = "linux")]
impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: the first page of the mapping `new` made.
        unsafe { libc::munmap(self.base.cast(), 4096) };
    }
}

#[cfg(target_os = "linux")]
#[test]
fn probe_read_copies_host_memory_and_faults_cleanly() {
    let h = Harness::new();
    // Host memory outside every region of the run.
    let host = Box::new(*b"host bytes!");
    let src = host.as_ptr() as u64;
    for id in [PROBE_READ, PROBE_READ_USER, PROBE_READ_KERNEL] {
        let mut out = [0u8; 11];
        let r = h.call(id, &mut out, &[], |o, _| [o, 11, src, 0, 0]);
        assert_eq!(r, Ok(0));
        assert_eq!(&out, b"host bytes!");
        // Address 8, a freshly unmapped page, and a range running into one: -EFAULT,
        // destination zeroed.
        let g = Guarded::new();
        for bad in [8, g.unmapped(), g.tail(b"abc")] {
            let mut out = [0xffu8; 8];
            let r = h.call(id, &mut out, &[], |o, _| [o, 8, bad, 0, 0]);
            assert_eq!(r, Ok(EFAULT), "id {id} at {bad:#x}");
            assert_eq!(out, [0; 8]);
        }
        // The tail itself is readable.
        let tail = g.tail(b"abc");
        let mut out = [0u8; 3];
        assert_eq!(h.call(id, &mut out, &[], |o, _| [o, 3, tail, 0, 0]), Ok(0));
        assert_eq!(&out, b"abc");
        // Size 0 reads nothing and succeeds, even at a bad address.
        let mut out = [0u8; 1];
        assert_eq!(h.call(id, &mut out, &[], |o, _| [o, 0, 8, 0, 0]), Ok(0));
    }
    // The destination must be the run's writable memory.
    let r = h.call(PROBE_READ, &mut [0u8; 4], &[], |_, _| [src, 4, src, 0, 0]);
    assert!(matches!(r, Err(FaultKind::OutOfBounds { .. })), "{r:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn probe_read_str_follows_strncpy_from_user() {
    let h = Harness::new();
    let host = Box::new(*b"hello\0junk");
    let src = host.as_ptr() as u64;
    let g = Guarded::new();
    for id in [PROBE_READ_STR, PROBE_READ_USER_STR, PROBE_READ_KERNEL_STR] {
        // Fits: length with the NUL; bytes past it untouched.
        let mut out = [0xeeu8; 10];
        assert_eq!(h.call(id, &mut out, &[], |o, _| [o, 10, src, 0, 0]), Ok(6));
        assert_eq!(&out, b"hello\0\xee\xee\xee\xee");
        // Truncated: size - 1 bytes and a NUL; returns size.
        let mut out = [0xeeu8; 4];
        assert_eq!(h.call(id, &mut out, &[], |o, _| [o, 4, src, 0, 0]), Ok(4));
        assert_eq!(&out, b"hel\0");
        // Size 0: 0.
        assert_eq!(
            h.call(id, &mut [0u8; 1], &[], |o, _| [o, 0, src, 0, 0]),
            Ok(0)
        );
        // A string whose NUL is the last mapped byte: read without touching the next page.
        let s = g.tail(b"edge\0");
        let mut out = [0xeeu8; 64];
        assert_eq!(h.call(id, &mut out, &[], |o, _| [o, 64, s, 0, 0]), Ok(5));
        assert_eq!(&out[..5], b"edge\0");
        // Running into the unmapped page, or starting there, or at 8: -EFAULT, zeroed.
        for bad in [g.tail(b"no-nul"), g.unmapped(), 8] {
            let mut out = [0xeeu8; 64];
            assert_eq!(
                h.call(id, &mut out, &[], |o, _| [o, 64, bad, 0, 0]),
                Ok(EFAULT)
            );
            assert_eq!(out, [0u8; 64]);
        }
        // ...but a size that stops before the unmapped page succeeds.
        let s = g.tail(b"no-nul");
        let mut out = [0xeeu8; 6];
        assert_eq!(h.call(id, &mut out, &[], |o, _| [o, 6, s, 0, 0]), Ok(6));
        assert_eq!(&out, b"no-nu\0");
    }
}

#[test]
fn strncmp_compares_like_the_kernel() {
    let h = Harness::new();
    // input: s2 strings, NUL-terminated.
    let input = b"abc\0abd\0ab\0\0";
    let cases: &[(&[u8], u64, u64, i64)] = &[
        (b"abc", 3, 0, 0),
        (b"abc", 3, 4, -1),
        (b"abd", 3, 0, 1),
        (b"abx", 2, 4, 0),
        // s1 "abc" vs s2 "ab": s2's NUL is smaller.
        (b"abc", 3, 8, 1),
        (b"ab\0", 3, 8, 0),
        (b"\xff", 1, 0, 1),
        (b"", 0, 0, 0),
        (b"a", 1, 11, 1),
    ];
    for (s1, n, s2_off, want) in cases {
        let mut s1buf = s1.to_vec();
        s1buf.push(0);
        let r = h
            .call(STRNCMP, &mut s1buf, input, |o, i| [o, *n, i + s2_off, 0, 0])
            .expect("no fault");
        assert_eq!(r as i64, *want, "{s1:?} {n} {s2_off}");
    }
    // s2 without a NUL in its region is a fault.
    let r = h.call(STRNCMP, &mut [0u8; 4], b"abc", |o, i| [o, 3, i, 0, 0]);
    assert!(
        matches!(r, Err(FaultKind::HelperFailed { id: 182, .. })),
        "{r:?}"
    );
}

#[test]
fn strtol_and_strtoul() {
    let h = Harness::new();
    let cases: &[(&[u8], u64, u32, i64, i64)] = &[
        // (buf, flags, helper, return, *res)
        (b" -42x", 0, STRTOL, 4, -42),
        (b"0x1f", 0, STRTOL, 4, 31),
        (b"0777", 0, STRTOUL, 4, 511),
        (b"ff", 16, STRTOUL, 2, 255),
        (b"9223372036854775807", 10, STRTOL, 19, i64::MAX),
        (b"-9223372036854775808", 10, STRTOL, 20, i64::MIN),
        (b"9223372036854775808", 10, STRTOL, -34, 0),
        (b"18446744073709551615", 10, STRTOUL, 20, -1),
        (b"18446744073709551616", 10, STRTOUL, -34, 0),
        (b"-1", 10, STRTOUL, -22, 0),
        (b"abc", 10, STRTOL, -22, 0),
        (b"12", 7, STRTOL, -22, 0),
    ];
    for (buf, flags, id, ret, res) in cases {
        // out: res (8 bytes)
        let mut out = [0xeeu8; 8];
        let r = h
            .call(*id, &mut out, buf, |o, i| {
                [i, buf.len() as u64, *flags, o, 0]
            })
            .expect("no fault");
        assert_eq!(r as i64, *ret, "{:?}", String::from_utf8_lossy(buf));
        assert_eq!(
            i64::from_le_bytes(out),
            *res,
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
}

#[test]
fn availability_follows_the_kernel() {
    let xdp = HelperRegistry::for_program_type(ProgramType::Kernel(KernelType::Xdp));
    let kprobe = HelperRegistry::for_program_type(ProgramType::Kernel(KernelType::Kprobe));
    for id in [
        TRACE_PRINTK,
        SNPRINTF,
        TRACE_VPRINTK,
        STRNCMP,
        STRTOL,
        STRTOUL,
    ] {
        assert!(xdp.get(i64::from(id)).is_some(), "{id} for XDP");
        assert!(kprobe.get(i64::from(id)).is_some(), "{id} for kprobe");
    }
    for id in [
        PROBE_READ,
        PROBE_READ_STR,
        PROBE_READ_USER,
        PROBE_READ_KERNEL,
        PROBE_READ_USER_STR,
        PROBE_READ_KERNEL_STR,
    ] {
        assert!(xdp.get(i64::from(id)).is_none(), "{id} not for XDP");
        assert!(kprobe.get(i64::from(id)).is_some(), "{id} for kprobe");
    }
}
