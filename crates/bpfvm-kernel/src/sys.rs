//! The one door to the kernel: `bpf(2)` behind the [`Syscall`] trait.
//!
//! Every command this crate issues goes through [`Bpf::call`], which hands an [`Attr`] (the
//! bytes of `union bpf_attr`) to a [`Syscall`]. The real implementation is private and is
//! what [`Bpf::new`] uses; tests pass their own through [`Bpf::with_syscall`] to fake
//! errors and results without a kernel.

use std::fmt;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

/// A `bpf(2)` command number (`enum bpf_cmd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cmd(pub u32);

impl Cmd {
    /// `BPF_MAP_CREATE`
    pub const MAP_CREATE: Cmd = Cmd(0);
    /// `BPF_MAP_LOOKUP_ELEM`
    pub const MAP_LOOKUP_ELEM: Cmd = Cmd(1);
    /// `BPF_MAP_UPDATE_ELEM`
    pub const MAP_UPDATE_ELEM: Cmd = Cmd(2);
    /// `BPF_MAP_DELETE_ELEM`
    pub const MAP_DELETE_ELEM: Cmd = Cmd(3);
    /// `BPF_MAP_GET_NEXT_KEY`
    pub const MAP_GET_NEXT_KEY: Cmd = Cmd(4);
    /// `BPF_PROG_LOAD`
    pub const PROG_LOAD: Cmd = Cmd(5);
    /// `BPF_OBJ_PIN`
    pub const OBJ_PIN: Cmd = Cmd(6);
    /// `BPF_OBJ_GET`
    pub const OBJ_GET: Cmd = Cmd(7);
    /// `BPF_PROG_TEST_RUN`
    pub const PROG_TEST_RUN: Cmd = Cmd(10);
    /// `BPF_OBJ_GET_INFO_BY_FD`
    pub const OBJ_GET_INFO_BY_FD: Cmd = Cmd(15);
    /// `BPF_BTF_LOAD`
    pub const BTF_LOAD: Cmd = Cmd(18);
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`
    pub const MAP_LOOKUP_AND_DELETE_ELEM: Cmd = Cmd(21);
    /// `BPF_MAP_FREEZE`
    pub const MAP_FREEZE: Cmd = Cmd(22);
    /// `BPF_MAP_LOOKUP_BATCH`
    pub const MAP_LOOKUP_BATCH: Cmd = Cmd(24);
    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`
    pub const MAP_LOOKUP_AND_DELETE_BATCH: Cmd = Cmd(25);
    /// `BPF_MAP_UPDATE_BATCH`
    pub const MAP_UPDATE_BATCH: Cmd = Cmd(26);
    /// `BPF_MAP_DELETE_BATCH`
    pub const MAP_DELETE_BATCH: Cmd = Cmd(27);

    /// Whether a successful call returns a new file descriptor.
    pub const fn returns_fd(self) -> bool {
        matches!(self.0, 0 | 5 | 7 | 18)
    }

    /// The kernel's name without the `BPF_` prefix, or `CMD_<n>`.
    pub fn name(self) -> String {
        let known = match self.0 {
            0 => "MAP_CREATE",
            1 => "MAP_LOOKUP_ELEM",
            2 => "MAP_UPDATE_ELEM",
            3 => "MAP_DELETE_ELEM",
            4 => "MAP_GET_NEXT_KEY",
            5 => "PROG_LOAD",
            6 => "OBJ_PIN",
            7 => "OBJ_GET",
            10 => "PROG_TEST_RUN",
            15 => "OBJ_GET_INFO_BY_FD",
            18 => "BTF_LOAD",
            21 => "MAP_LOOKUP_AND_DELETE_ELEM",
            22 => "MAP_FREEZE",
            24 => "MAP_LOOKUP_BATCH",
            25 => "MAP_LOOKUP_AND_DELETE_BATCH",
            26 => "MAP_UPDATE_BATCH",
            27 => "MAP_DELETE_BATCH",
            n => return format!("CMD_{n}"),
        };
        known.to_string()
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BPF_{}", self.name())
    }
}

/// An errno value returned by the kernel.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// `EPERM`
    pub const EPERM: Errno = Errno(1);
    /// `ENOENT`
    pub const ENOENT: Errno = Errno(2);
    /// `E2BIG`
    pub const E2BIG: Errno = Errno(7);
    /// `EBADF`
    pub const EBADF: Errno = Errno(9);
    /// `EAGAIN`
    pub const EAGAIN: Errno = Errno(11);
    /// `ENOMEM`
    pub const ENOMEM: Errno = Errno(12);
    /// `EACCES`
    pub const EACCES: Errno = Errno(13);
    /// `EFAULT`
    pub const EFAULT: Errno = Errno(14);
    /// `EEXIST`
    pub const EEXIST: Errno = Errno(17);
    /// `EINVAL`
    pub const EINVAL: Errno = Errno(22);
    /// `ENOSPC`
    pub const ENOSPC: Errno = Errno(28);
    /// `ENOSYS`
    pub const ENOSYS: Errno = Errno(38);
    /// `EOPNOTSUPP`
    pub const EOPNOTSUPP: Errno = Errno(95);
    /// `ENOTSUPP`, the kernel-internal value some BPF paths leak to user space.
    pub const ENOTSUPP: Errno = Errno(524);

    /// The symbolic name (`EINVAL`), or `errno <n>`.
    pub fn name(self) -> String {
        let known = match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            4 => "EINTR",
            7 => "E2BIG",
            9 => "EBADF",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            14 => "EFAULT",
            16 => "EBUSY",
            17 => "EEXIST",
            22 => "EINVAL",
            24 => "EMFILE",
            28 => "ENOSPC",
            34 => "ERANGE",
            38 => "ENOSYS",
            75 => "EOVERFLOW",
            95 => "EOPNOTSUPP",
            524 => "ENOTSUPP",
            n => return format!("errno {n}"),
        };
        known.to_string()
    }

    /// The C library's description (`Invalid argument`).
    pub fn description(self) -> String {
        if self.0 == 524 {
            return "Operation is not supported".into();
        }
        let text = std::io::Error::from_raw_os_error(self.0).to_string();
        // std appends " (os error N)"; the name already says which errno it is.
        match text.rfind(" (os error") {
            Some(i) => text[..i].to_string(),
            None => text,
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.description())
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}: {})", self.0, self.name())
    }
}

/// Bytes of `union bpf_attr`: the largest layout this crate writes (`BPF_PROG_LOAD` up to
/// `fd_array_cnt`, Linux 6.13).
pub const ATTR_SIZE: usize = 152;

/// The attribute block of one `bpf(2)` call: `len` bytes of `union bpf_attr`, zeroed
/// except for the fields the command sets.
///
/// Fields are written by this crate only (the pointer fields it writes point at buffers
/// that outlive the call); a [`Syscall`] may read any field and write output fields, as
/// the kernel does.
#[derive(Clone, PartialEq, Eq)]
pub struct Attr {
    bytes: [u8; ATTR_SIZE],
    len: usize,
}

impl Attr {
    /// An all-zero attribute block of `len` bytes (at most [`ATTR_SIZE`]).
    pub(crate) fn new(len: usize) -> Attr {
        Attr {
            bytes: [0; ATTR_SIZE],
            len: len.min(ATTR_SIZE),
        }
    }

    /// The size passed to the kernel.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block is empty (never, for a real command).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes passed to the kernel.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The `u32` at byte offset `off` (0 beyond the block).
    pub fn u32(&self, off: usize) -> u32 {
        let mut b = [0; 4];
        if let Some(src) = self.as_bytes().get(off..off + 4) {
            b.copy_from_slice(src);
        }
        u32::from_le_bytes(b)
    }

    /// The `u64` at byte offset `off` (0 beyond the block).
    pub fn u64(&self, off: usize) -> u64 {
        let mut b = [0; 8];
        if let Some(src) = self.as_bytes().get(off..off + 8) {
            b.copy_from_slice(src);
        }
        u64::from_le_bytes(b)
    }

    /// Writes an output `u32` at `off`, as the kernel does for `retval`, `duration`,
    /// `log_true_size`… (for fakes; ignored beyond the block).
    pub fn set_output_u32(&mut self, off: usize, v: u32) {
        self.set_u32(off, v);
    }

    pub(crate) fn set_u32(&mut self, off: usize, v: u32) {
        if let Some(dst) = self.bytes[..self.len].get_mut(off..off + 4) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    }

    pub(crate) fn set_u64(&mut self, off: usize, v: u64) {
        if let Some(dst) = self.bytes[..self.len].get_mut(off..off + 8) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Stores the address of `buf`, which the kernel will only read (0 when empty, as the
    /// kernel expects for "none"). The address is exposed: the kernel reaches the buffer
    /// through the integer.
    pub(crate) fn set_ptr(&mut self, off: usize, buf: &[u8]) {
        let addr = if buf.is_empty() {
            0
        } else {
            buf.as_ptr().expose_provenance() as u64
        };
        self.set_u64(off, addr);
    }

    /// Stores the address of `buf`, which the kernel may write (0 when empty).
    pub(crate) fn set_mut_ptr(&mut self, off: usize, buf: &mut [u8]) {
        let addr = if buf.is_empty() {
            0
        } else {
            buf.as_mut_ptr().expose_provenance() as u64
        };
        self.set_u64(off, addr);
    }

    /// Copies `name` into the fixed 16-byte name field at `off`, truncated to 15 bytes so
    /// it stays NUL-terminated (the kernel's `BPF_OBJ_NAME_LEN`).
    pub(crate) fn set_name(&mut self, off: usize, name: &str) {
        let n = name.len().min(15);
        if let Some(dst) = self.bytes[..self.len].get_mut(off..off + n) {
            dst.copy_from_slice(&name.as_bytes()[..n]);
        }
    }
}

impl fmt::Debug for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Attr[{}]", self.len)
    }
}

/// Performs `bpf(2)`.
///
/// # Safety
/// Implementations promise that when [`Cmd::returns_fd`] holds for `cmd` and they return
/// `Ok(fd)`, `fd` is a newly opened file descriptor that the caller now owns: it is wrapped
/// in an [`OwnedFd`] and closed when that is dropped. A fake that has no kernel object to
/// return must open something (say `/dev/null`) and hand over that descriptor.
pub unsafe trait Syscall: Send + Sync + fmt::Debug {
    /// Runs `cmd` with `attr`; returns the kernel's non-negative result or its errno.
    fn bpf(&self, cmd: Cmd, attr: &mut Attr) -> Result<i32, Errno>;
}

/// The real system call.
#[derive(Debug, Clone, Copy, Default)]
struct RealSyscall;

// SAFETY: the kernel returns a fresh descriptor for the fd-returning commands, and nothing
// else in this process knows its number yet.
unsafe impl Syscall for RealSyscall {
    fn bpf(&self, cmd: Cmd, attr: &mut Attr) -> Result<i32, Errno> {
        let len = attr.len() as libc::c_long;
        // SAFETY: `attr` points at `len` initialized bytes that live across the call and
        // that the kernel may write (output fields). The pointer fields inside were written
        // by this crate from borrows that outlive this call, with the sizes the kernel will
        // use to access them (see the `Attr` writers' callers).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                libc::c_long::from(cmd.0 as i32),
                attr.bytes.as_mut_ptr(),
                len,
            )
        };
        if ret < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            Err(Errno(errno))
        } else {
            Ok(i32::try_from(ret).unwrap_or(i32::MAX))
        }
    }
}

/// A handle on `bpf(2)`: the real kernel ([`Bpf::new`]) or a fake ([`Bpf::with_syscall`]).
/// Cheap to clone; every object made through it keeps a clone.
#[derive(Clone, Debug)]
pub struct Bpf {
    sys: Arc<dyn Syscall>,
}

impl Default for Bpf {
    fn default() -> Self {
        Bpf::new()
    }
}

impl Bpf {
    /// The real `bpf(2)` of this process.
    pub fn new() -> Bpf {
        Bpf {
            sys: Arc::new(RealSyscall),
        }
    }

    /// A handle whose every call goes to `sys` instead.
    pub fn with_syscall(sys: Arc<dyn Syscall>) -> Bpf {
        Bpf { sys }
    }

    /// The one function every command of this crate goes through.
    pub(crate) fn call(&self, cmd: Cmd, attr: &mut Attr) -> Result<i32, Errno> {
        self.sys.bpf(cmd, attr)
    }

    /// [`Bpf::call`] for the commands that create an object.
    pub(crate) fn call_fd(&self, cmd: Cmd, attr: &mut Attr) -> Result<OwnedFd, Errno> {
        debug_assert!(cmd.returns_fd());
        let fd = self.call(cmd, attr)?;
        // SAFETY: `Syscall`'s contract: for an fd-returning command, `Ok(fd)` is a new
        // descriptor owned by the caller, so exactly one `OwnedFd` will close it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_fields_are_little_endian_and_bounded() {
        let mut a = Attr::new(16);
        a.set_u32(4, 0x0102_0304);
        a.set_u64(8, 0x1122_3344_5566_7788);
        a.set_u32(14, 7); // crosses the end: ignored
        assert_eq!(a.as_bytes()[4..8], [4, 3, 2, 1]);
        assert_eq!(
            (a.u32(4), a.u64(8), a.u32(200)),
            (0x0102_0304, 0x1122_3344_5566_7788, 0)
        );
        let mut n = Attr::new(40);
        n.set_name(8, "a_name_longer_than_fifteen");
        assert_eq!(&n.as_bytes()[8..23], b"a_name_longer_t");
        assert_eq!(n.as_bytes()[23], 0);
    }

    #[test]
    fn errno_names_and_texts() {
        assert_eq!(Errno::EACCES.to_string(), "EACCES (Permission denied)");
        assert_eq!(Errno::ENOTSUPP.name(), "ENOTSUPP");
        assert_eq!(Errno(4000).name(), "errno 4000");
        assert_eq!(Cmd::PROG_LOAD.to_string(), "BPF_PROG_LOAD");
        assert_eq!(Cmd(99).name(), "CMD_99");
    }
}
