//! Programs in the kernel: `BPF_PROG_LOAD` (with everything libbpf passes), the verifier
//! log, `BPF_PROG_TEST_RUN` and `BPF_OBJ_GET_INFO_BY_FD`.

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use bpfvm_isa::RawInsn;

use crate::error::KernelError;
use crate::log::{LogFields, LogOptions, load_with_log};
use crate::sys::{Attr, Bpf, Cmd, Errno};

/// A program type (`enum bpf_prog_type`). Open-ended: the kernel adds types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProgType(pub u32);

impl ProgType {
    /// `BPF_PROG_TYPE_SOCKET_FILTER`
    pub const SOCKET_FILTER: ProgType = ProgType(1);
    /// `BPF_PROG_TYPE_KPROBE`
    pub const KPROBE: ProgType = ProgType(2);
    /// `BPF_PROG_TYPE_SCHED_CLS`
    pub const SCHED_CLS: ProgType = ProgType(3);
    /// `BPF_PROG_TYPE_SCHED_ACT`
    pub const SCHED_ACT: ProgType = ProgType(4);
    /// `BPF_PROG_TYPE_TRACEPOINT`
    pub const TRACEPOINT: ProgType = ProgType(5);
    /// `BPF_PROG_TYPE_XDP`
    pub const XDP: ProgType = ProgType(6);
    /// `BPF_PROG_TYPE_PERF_EVENT`
    pub const PERF_EVENT: ProgType = ProgType(7);
    /// `BPF_PROG_TYPE_CGROUP_SKB`
    pub const CGROUP_SKB: ProgType = ProgType(8);
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT`
    pub const RAW_TRACEPOINT: ProgType = ProgType(17);
    /// `BPF_PROG_TYPE_TRACING`
    pub const TRACING: ProgType = ProgType(26);
    /// `BPF_PROG_TYPE_SYSCALL`
    pub const SYSCALL: ProgType = ProgType(31);

    /// The libbpf section-style name (`xdp`, `socket`…), or `None` for types without one here.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "socket",
            2 => "kprobe",
            3 => "tc",
            4 => "action",
            5 => "tracepoint",
            6 => "xdp",
            7 => "perf_event",
            8 => "cgroup_skb",
            17 => "raw_tracepoint",
            26 => "tracing",
            31 => "syscall",
            _ => return None,
        })
    }

    /// Parses a [`ProgType::name`] or a number.
    pub fn parse(text: &str) -> Option<ProgType> {
        if let Ok(n) = text.parse() {
            return Some(ProgType(n));
        }
        (0..64).map(ProgType).find(|t| t.name() == Some(text))
    }
}

impl fmt::Display for ProgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "program type {}", self.0),
        }
    }
}

/// An attach type (`enum bpf_attach_type`), for `expected_attach_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AttachType(pub u32);

/// `BPF_F_STRICT_ALIGNMENT`: check alignment as strict-alignment architectures would.
pub const F_STRICT_ALIGNMENT: u32 = 1;
/// `BPF_F_ANY_ALIGNMENT`
pub const F_ANY_ALIGNMENT: u32 = 1 << 1;
/// `BPF_F_TEST_RND_HI32`
pub const F_TEST_RND_HI32: u32 = 1 << 2;
/// `BPF_F_SLEEPABLE`
pub const F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS`
pub const F_XDP_HAS_FRAGS: u32 = 1 << 5;

mod off {
    pub const PROG_TYPE: usize = 0;
    pub const INSN_CNT: usize = 4;
    pub const INSNS: usize = 8;
    pub const LICENSE: usize = 16;
    pub const LOG_LEVEL: usize = 24;
    pub const LOG_SIZE: usize = 28;
    pub const LOG_BUF: usize = 32;
    pub const KERN_VERSION: usize = 40;
    pub const PROG_FLAGS: usize = 44;
    pub const PROG_NAME: usize = 48;
    pub const PROG_IFINDEX: usize = 64;
    pub const EXPECTED_ATTACH_TYPE: usize = 68;
    pub const PROG_BTF_FD: usize = 72;
    pub const FUNC_INFO_REC_SIZE: usize = 76;
    pub const FUNC_INFO: usize = 80;
    pub const FUNC_INFO_CNT: usize = 88;
    pub const LINE_INFO_REC_SIZE: usize = 92;
    pub const LINE_INFO: usize = 96;
    pub const LINE_INFO_CNT: usize = 104;
    pub const ATTACH_BTF_ID: usize = 108;
    pub const ATTACH_PROG_FD: usize = 112;
    pub const FD_ARRAY: usize = 120;
    pub const LOG_TRUE_SIZE: usize = 140;
    pub const PROG_TOKEN_FD: usize = 144;
    pub const FD_ARRAY_CNT: usize = 148;
    pub const LOAD_SIZE: usize = 152;

    pub const TR_PROG_FD: usize = 0;
    pub const TR_RETVAL: usize = 4;
    pub const TR_DATA_SIZE_IN: usize = 8;
    pub const TR_DATA_SIZE_OUT: usize = 12;
    pub const TR_DATA_IN: usize = 16;
    pub const TR_DATA_OUT: usize = 24;
    pub const TR_REPEAT: usize = 32;
    pub const TR_DURATION: usize = 36;
    pub const TR_CTX_SIZE_IN: usize = 40;
    pub const TR_CTX_SIZE_OUT: usize = 44;
    pub const TR_CTX_IN: usize = 48;
    pub const TR_CTX_OUT: usize = 56;
    pub const TR_FLAGS: usize = 64;
    pub const TR_CPU: usize = 68;
    pub const TR_BATCH_SIZE: usize = 72;
    pub const TR_SIZE: usize = 80;

    pub const INFO_BPF_FD: usize = 0;
    pub const INFO_LEN: usize = 4;
    pub const INFO_PTR: usize = 8;
    pub const INFO_ATTR_SIZE: usize = 16;
}

/// Records of `.BTF.ext` func info or line info: `data` holds records of `rec_size` bytes.
#[derive(Debug, Clone, Copy)]
pub struct BtfRecords<'a> {
    /// Size of one record.
    pub rec_size: u32,
    /// The records, back to back.
    pub data: &'a [u8],
}

impl BtfRecords<'_> {
    fn count(&self, what: &str) -> Result<u32, KernelError> {
        let size = self.rec_size as usize;
        if size == 0 || !self.data.len().is_multiple_of(size) {
            return Err(KernelError::Invalid(format!(
                "{what}: {} bytes is not a whole number of {size}-byte records",
                self.data.len()
            )));
        }
        u32::try_from(self.data.len() / size)
            .map_err(|_| KernelError::Invalid(format!("{what}: too many records")))
    }
}

/// What to load: the fields of `BPF_PROG_LOAD`. Build with [`ProgLoad::new`] and the
/// `with_*` methods.
#[derive(Debug, Clone)]
pub struct ProgLoad<'a> {
    /// Program type.
    pub prog_type: ProgType,
    /// Expected attach type (0 for types that do not need one).
    pub expected_attach_type: AttachType,
    /// The instructions.
    pub insns: &'a [RawInsn],
    /// License; GPL-only helpers need a GPL-compatible one. Default `"GPL"`.
    pub license: &'a str,
    /// Name (at most 15 bytes kept; letters, digits, `_` and `.`).
    pub name: &'a str,
    /// `BPF_F_*` program flags.
    pub prog_flags: u32,
    /// Kernel version (only old kprobe loads check it).
    pub kern_version: u32,
    /// Device to offload to (0: none).
    pub ifindex: u32,
    /// BTF object of the program, for func and line info.
    pub btf: Option<BorrowedFd<'a>>,
    /// `.BTF.ext` func info records.
    pub func_info: Option<BtfRecords<'a>>,
    /// `.BTF.ext` line info records.
    pub line_info: Option<BtfRecords<'a>>,
    /// BTF id of the attach target (tracing, LSM, struct_ops, ext).
    pub attach_btf_id: u32,
    /// The program (for ext/freplace) or module BTF object holding the attach target.
    pub attach_target: Option<BorrowedFd<'a>>,
    /// Maps and BTF objects that `lddw` with `src` 5 or 6 and kfunc calls index.
    pub fd_array: &'a [BorrowedFd<'a>],
    /// Also pass `fd_array_cnt`, binding every map of `fd_array` to the program (Linux 6.13+).
    pub bind_fd_array: bool,
    /// BPF token delegating the permission.
    pub token: Option<BorrowedFd<'a>>,
    /// Verifier log policy and sizes.
    pub log: LogOptions,
}

impl<'a> ProgLoad<'a> {
    /// A GPL program of `prog_type` with no name, BTF or flags, logging on failure.
    pub fn new(prog_type: ProgType, insns: &'a [RawInsn]) -> Self {
        ProgLoad {
            prog_type,
            expected_attach_type: AttachType(0),
            insns,
            license: "GPL",
            name: "",
            prog_flags: 0,
            kern_version: 0,
            ifindex: 0,
            btf: None,
            func_info: None,
            line_info: None,
            attach_btf_id: 0,
            attach_target: None,
            fd_array: &[],
            bind_fd_array: false,
            token: None,
            log: LogOptions::default(),
        }
    }

    /// Sets the name.
    pub fn with_name(mut self, name: &'a str) -> Self {
        self.name = name;
        self
    }

    /// Sets the license.
    pub fn with_license(mut self, license: &'a str) -> Self {
        self.license = license;
        self
    }

    /// Sets the log options.
    pub fn with_log(mut self, log: LogOptions) -> Self {
        self.log = log;
        self
    }

    /// Sets the expected attach type.
    pub fn with_expected_attach_type(mut self, t: AttachType) -> Self {
        self.expected_attach_type = t;
        self
    }

    /// Sets the program flags.
    pub fn with_flags(mut self, flags: u32) -> Self {
        self.prog_flags = flags;
        self
    }

    /// Sets the BTF object and its func and line info.
    pub fn with_btf(
        mut self,
        btf: BorrowedFd<'a>,
        func_info: Option<BtfRecords<'a>>,
        line_info: Option<BtfRecords<'a>>,
    ) -> Self {
        self.btf = Some(btf);
        self.func_info = func_info;
        self.line_info = line_info;
        self
    }

    /// Sets the fd array.
    pub fn with_fd_array(mut self, fds: &'a [BorrowedFd<'a>], bind: bool) -> Self {
        self.fd_array = fds;
        self.bind_fd_array = bind;
        self
    }
}

/// Bytes that back the pointers of a `BPF_PROG_LOAD` attribute block.
struct LoadBuffers {
    insns: Vec<u8>,
    license: CString,
    fd_array: Vec<u8>,
}

impl ProgLoad<'_> {
    fn buffers(&self) -> Result<LoadBuffers, KernelError> {
        let license = CString::new(self.license)
            .map_err(|_| KernelError::Invalid("the license contains a NUL byte".into()))?;
        if !self
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err(KernelError::Invalid(format!(
                "program name `{}`: the kernel accepts only letters, digits, `_` and `.`",
                self.name.escape_debug()
            )));
        }
        let insns = bpfvm_isa::slots_to_bytes(self.insns);
        let fd_array = self
            .fd_array
            .iter()
            .flat_map(|fd| fd.as_raw_fd().to_le_bytes())
            .collect();
        Ok(LoadBuffers {
            insns,
            license,
            fd_array,
        })
    }

    /// The attribute block; its pointers point into `buf`, which must outlive every call
    /// made with it.
    fn attr(&self, buf: &LoadBuffers) -> Result<Attr, KernelError> {
        let fd = |f: Option<BorrowedFd<'_>>| f.map_or(0, |f| f.as_raw_fd() as u32);
        let insn_cnt = u32::try_from(self.insns.len())
            .map_err(|_| KernelError::Invalid(format!("{} instructions", self.insns.len())))?;
        let mut a = Attr::new(off::LOAD_SIZE);
        a.set_u32(off::PROG_TYPE, self.prog_type.0);
        a.set_u32(off::INSN_CNT, insn_cnt);
        a.set_ptr(off::INSNS, &buf.insns);
        a.set_ptr(off::LICENSE, buf.license.as_bytes_with_nul());
        a.set_u32(off::KERN_VERSION, self.kern_version);
        a.set_u32(off::PROG_FLAGS, self.prog_flags);
        a.set_name(off::PROG_NAME, self.name);
        a.set_u32(off::PROG_IFINDEX, self.ifindex);
        a.set_u32(off::EXPECTED_ATTACH_TYPE, self.expected_attach_type.0);
        a.set_u32(off::PROG_BTF_FD, fd(self.btf));
        if let Some(fi) = &self.func_info {
            a.set_u32(off::FUNC_INFO_REC_SIZE, fi.rec_size);
            a.set_ptr(off::FUNC_INFO, fi.data);
            a.set_u32(off::FUNC_INFO_CNT, fi.count("func info")?);
        }
        if let Some(li) = &self.line_info {
            a.set_u32(off::LINE_INFO_REC_SIZE, li.rec_size);
            a.set_ptr(off::LINE_INFO, li.data);
            a.set_u32(off::LINE_INFO_CNT, li.count("line info")?);
        }
        a.set_u32(off::ATTACH_BTF_ID, self.attach_btf_id);
        a.set_u32(off::ATTACH_PROG_FD, fd(self.attach_target));
        a.set_ptr(off::FD_ARRAY, &buf.fd_array);
        if self.bind_fd_array {
            a.set_u32(off::FD_ARRAY_CNT, self.fd_array.len() as u32);
        }
        a.set_u32(off::PROG_TOKEN_FD, fd(self.token));
        Ok(a)
    }
}

/// A program loaded in the kernel, closed on drop.
#[derive(Debug)]
pub struct Prog {
    bpf: Bpf,
    fd: OwnedFd,
    prog_type: ProgType,
    log: String,
}

impl Bpf {
    /// Loads a program (`BPF_PROG_LOAD`). On failure the error carries the errno and the
    /// verifier's log ([`KernelError::Load`]).
    pub fn prog_load(&self, req: &ProgLoad<'_>) -> Result<Prog, KernelError> {
        let buffers = req.buffers()?;
        let attr = req.attr(&buffers)?;
        let fields = LogFields {
            level: off::LOG_LEVEL,
            size: off::LOG_SIZE,
            buf: off::LOG_BUF,
            true_size: off::LOG_TRUE_SIZE,
        };
        let (fd, log) = load_with_log(self, Cmd::PROG_LOAD, &attr, fields, &req.log)
            .map_err(|f| KernelError::Load(Box::new(f)))?;
        // `buffers` backed the pointers in `attr` until here.
        drop(buffers);
        Ok(Prog {
            bpf: self.clone(),
            fd,
            prog_type: req.prog_type,
            log,
        })
    }
}

/// One `BPF_PROG_TEST_RUN`: inputs, and buffers for the outputs.
#[derive(Debug, Default)]
pub struct TestRun<'a> {
    /// Packet (or other) data the program sees.
    pub data_in: &'a [u8],
    /// Receives the data after the run (as modified by the program).
    pub data_out: Option<&'a mut [u8]>,
    /// Context the program sees (program-type specific).
    pub ctx_in: Option<&'a [u8]>,
    /// Receives the context after the run.
    pub ctx_out: Option<&'a mut [u8]>,
    /// Runs back to back (0 and 1 both mean once); the duration is their average.
    pub repeat: u32,
    /// `BPF_F_TEST_*` flags.
    pub flags: u32,
    /// CPU to run on, with `BPF_F_TEST_RUN_ON_CPU`.
    pub cpu: u32,
    /// XDP live-frames batch size.
    pub batch_size: u32,
}

/// What a test run returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value (32 bits: the kernel truncates it).
    pub retval: u32,
    /// Average time of one run, as the kernel measured it.
    pub duration: Duration,
    /// Bytes written to `data_out`.
    pub data_size_out: u32,
    /// Bytes written to `ctx_out`.
    pub ctx_size_out: u32,
}

impl Prog {
    /// The file descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The program type.
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    /// The verifier's log of the successful load (empty unless a log was asked for).
    pub fn log(&self) -> &str {
        &self.log
    }

    /// Runs the program once or `repeat` times (`BPF_PROG_TEST_RUN`).
    pub fn test_run(&self, run: &mut TestRun<'_>) -> Result<TestRunResult, KernelError> {
        let len32 = |what: &str, n: usize| {
            u32::try_from(n).map_err(|_| KernelError::Invalid(format!("{what}: {n} bytes")))
        };
        let mut a = Attr::new(off::TR_SIZE);
        a.set_u32(off::TR_PROG_FD, self.fd.as_raw_fd() as u32);
        a.set_u32(off::TR_DATA_SIZE_IN, len32("data_in", run.data_in.len())?);
        a.set_ptr(off::TR_DATA_IN, run.data_in);
        let data_out_len = run.data_out.as_ref().map_or(0, |d| d.len());
        if let Some(out) = run.data_out.as_deref_mut() {
            a.set_u32(off::TR_DATA_SIZE_OUT, len32("data_out", out.len())?);
            a.set_mut_ptr(off::TR_DATA_OUT, out);
        }
        if let Some(ctx) = run.ctx_in {
            a.set_u32(off::TR_CTX_SIZE_IN, len32("ctx_in", ctx.len())?);
            a.set_ptr(off::TR_CTX_IN, ctx);
        }
        let ctx_out_len = run.ctx_out.as_ref().map_or(0, |d| d.len());
        if let Some(out) = run.ctx_out.as_deref_mut() {
            a.set_u32(off::TR_CTX_SIZE_OUT, len32("ctx_out", out.len())?);
            a.set_mut_ptr(off::TR_CTX_OUT, out);
        }
        a.set_u32(off::TR_REPEAT, run.repeat);
        a.set_u32(off::TR_FLAGS, run.flags);
        a.set_u32(off::TR_CPU, run.cpu);
        a.set_u32(off::TR_BATCH_SIZE, run.batch_size);
        match self.bpf.call(Cmd::PROG_TEST_RUN, &mut a) {
            Ok(_) => Ok(TestRunResult {
                retval: a.u32(off::TR_RETVAL),
                duration: Duration::from_nanos(u64::from(a.u32(off::TR_DURATION))),
                data_size_out: a.u32(off::TR_DATA_SIZE_OUT),
                ctx_size_out: a.u32(off::TR_CTX_SIZE_OUT),
            }),
            Err(Errno::ENOSPC) if a.u32(off::TR_DATA_SIZE_OUT) as usize > data_out_len => {
                Err(KernelError::OutputTooSmall {
                    what: "data",
                    needed: a.u32(off::TR_DATA_SIZE_OUT),
                    given: data_out_len,
                })
            }
            Err(Errno::ENOSPC) if a.u32(off::TR_CTX_SIZE_OUT) as usize > ctx_out_len => {
                Err(KernelError::OutputTooSmall {
                    what: "context",
                    needed: a.u32(off::TR_CTX_SIZE_OUT),
                    given: ctx_out_len,
                })
            }
            Err(errno) => Err(KernelError::Syscall {
                cmd: Cmd::PROG_TEST_RUN,
                errno,
            }),
        }
    }

    /// What the kernel reports about the program (`BPF_OBJ_GET_INFO_BY_FD`).
    pub fn info(&self) -> Result<ProgInfo, KernelError> {
        let mut info = vec![0u8; PROG_INFO_SIZE];
        let mut a = Attr::new(off::INFO_ATTR_SIZE);
        a.set_u32(off::INFO_BPF_FD, self.fd.as_raw_fd() as u32);
        a.set_u32(off::INFO_LEN, PROG_INFO_SIZE as u32);
        a.set_mut_ptr(off::INFO_PTR, &mut info);
        self.bpf
            .call(Cmd::OBJ_GET_INFO_BY_FD, &mut a)
            .map_err(KernelError::syscall(Cmd::OBJ_GET_INFO_BY_FD))?;
        Ok(ProgInfo::parse(&info))
    }
}

impl AsFd for Prog {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Bytes of `struct bpf_prog_info` this crate reads (up to `attach_btf_id`).
const PROG_INFO_SIZE: usize = 232;

/// The parts of `struct bpf_prog_info` bpfvm uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    /// Program type.
    pub prog_type: ProgType,
    /// Kernel-wide program id.
    pub id: u32,
    /// The program's tag (a hash of its instructions).
    pub tag: [u8; 8],
    /// Bytes of JIT-compiled code (0 without the JIT).
    pub jited_len: u32,
    /// Bytes of the instructions after the verifier's rewrites.
    pub xlated_len: u32,
    /// Name as loaded.
    pub name: String,
    /// Instructions the verifier processed (Linux 5.16+).
    pub verified_insns: u32,
    /// Total run time while `kernel.bpf_stats_enabled` was on.
    pub run_time_ns: u64,
    /// Runs while `kernel.bpf_stats_enabled` was on.
    pub run_cnt: u64,
}

impl ProgInfo {
    fn parse(b: &[u8]) -> ProgInfo {
        let u32_at = |o: usize| {
            b.get(o..o + 4)
                .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        };
        let u64_at = |o: usize| u64::from(u32_at(o)) | (u64::from(u32_at(o + 4)) << 32);
        let mut tag = [0; 8];
        tag.copy_from_slice(&b[8..16]);
        let name = &b[64..80];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        ProgInfo {
            prog_type: ProgType(u32_at(0)),
            id: u32_at(4),
            tag,
            jited_len: u32_at(16),
            xlated_len: u32_at(20),
            name: String::from_utf8_lossy(&name[..end]).into_owned(),
            run_time_ns: u64_at(192),
            run_cnt: u64_at(200),
            verified_insns: u32_at(216),
        }
    }
}
