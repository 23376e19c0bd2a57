//! BTF objects in the kernel: `BPF_BTF_LOAD`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::KernelError;
use crate::log::{LogFields, LogOptions, load_with_log};
use crate::sys::{Attr, Bpf, Cmd};

mod off {
    pub const BTF: usize = 0;
    pub const LOG_BUF: usize = 8;
    pub const BTF_SIZE: usize = 16;
    pub const LOG_SIZE: usize = 20;
    pub const LOG_LEVEL: usize = 24;
    pub const LOG_TRUE_SIZE: usize = 28;
    pub const SIZE: usize = 40;
}

/// A BTF object loaded in the kernel, closed on drop.
#[derive(Debug)]
pub struct Btf {
    fd: OwnedFd,
    log: String,
}

impl Btf {
    /// The file descriptor (for [`crate::MapCreate::with_btf`] and [`crate::ProgLoad::with_btf`]).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The kernel's log of the load (empty unless a log was asked for).
    pub fn log(&self) -> &str {
        &self.log
    }
}

impl AsFd for Btf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Bpf {
    /// Loads raw BTF (the bytes of a `.BTF` section: header, types, strings). On failure
    /// the error carries the errno and the kernel's BTF log.
    pub fn btf_load(&self, data: &[u8], log: &LogOptions) -> Result<Btf, KernelError> {
        let size = u32::try_from(data.len())
            .map_err(|_| KernelError::Invalid(format!("BTF of {} bytes", data.len())))?;
        let mut attr = Attr::new(off::SIZE);
        attr.set_ptr(off::BTF, data);
        attr.set_u32(off::BTF_SIZE, size);
        let fields = LogFields {
            level: off::LOG_LEVEL,
            size: off::LOG_SIZE,
            buf: off::LOG_BUF,
            true_size: off::LOG_TRUE_SIZE,
        };
        let (fd, log) = load_with_log(self, Cmd::BTF_LOAD, &attr, fields, log)
            .map_err(|f| KernelError::Load(Box::new(f)))?;
        Ok(Btf { fd, log })
    }
}
