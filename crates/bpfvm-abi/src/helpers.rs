//! BPF helper functions: the kernel's ids and names, and the prototypes its verifier checks
//! calls against.
//!
//! Ids and names follow `enum bpf_func_id` (`___BPF_FUNC_MAPPER` in
//! `include/uapi/linux/bpf.h`) as of Linux 6.18: every helper from `map_lookup_elem` (1) to
//! `cgrp_storage_delete` (211) is in [`HELPERS`], in id order, with no gaps.
//!
//! Prototypes are transcribed from the kernel's `struct bpf_func_proto` definitions
//! (`kernel/bpf/helpers.c`, `kernel/bpf/ringbuf.c`, `kernel/bpf/bpf_iter.c`, `kernel/bpf/core.c`,
//! `kernel/trace/bpf_trace.c`, `net/core/filter.c`). Where a prototype has not been
//! transcribed, or where the kernel changed it recently enough that the copy read may be
//! stale (e.g. `xdp_store_bytes`, `d_path`, `snprintf_btf`), [`HelperProto::known`] is `false` and the prototype fields carry no meaning: a
//! verifier must refuse calls to such helpers rather than guess.
//!
//! One helper id can have several kernel prototypes, chosen per program type (for example
//! `perf_event_output` is `bpf_perf_event_output_proto` for tracing and
//! `bpf_skb_event_output_proto` for socket programs). This table holds one prototype per id:
//! the generic one from `bpf_base_func_proto`, or the tracing one for tracing helpers. The
//! shapes agree for the helpers listed here; which program types may call which helper is
//! not described by this table.

/// A helper's number: the immediate of a `call` instruction with `src_reg == 0`
/// (`enum bpf_func_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HelperId(pub u32);

/// Modifiers of an argument or return kind, with the bit values of the kernel's
/// `enum bpf_type_flag` (Linux 6.18; these are kernel-internal and not a stable ABI, but
/// keeping them lets [`ArgKind::kernel_code`] reproduce the kernel's `enum bpf_arg_type`
/// values exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TypeFlags(u32);

impl TypeFlags {
    /// No modifier.
    pub const NONE: Self = Self(0);
    /// `PTR_MAYBE_NULL`: the pointer may be NULL (an argument may be passed as 0; a
    /// returned pointer must be checked against NULL before use).
    pub const MAYBE_NULL: Self = Self(1 << 8);
    /// `MEM_RDONLY`: the helper only reads the memory.
    pub const RDONLY: Self = Self(1 << 9);
    /// `MEM_RINGBUF`: memory reserved in a ring buffer (returned by `ringbuf_reserve`).
    pub const RINGBUF: Self = Self(1 << 10);
    /// `MEM_USER`: user-space memory.
    pub const USER: Self = Self(1 << 11);
    /// `MEM_PERCPU`: per-CPU memory.
    pub const PERCPU: Self = Self(1 << 12);
    /// `OBJ_RELEASE`: the helper releases the reference the argument holds (e.g.
    /// `ringbuf_submit`); the program must not use it afterwards.
    pub const RELEASE: Self = Self(1 << 13);
    /// `PTR_UNTRUSTED`.
    pub const UNTRUSTED: Self = Self(1 << 14);
    /// `MEM_UNINIT`: the memory need not be initialised; the helper fills it.
    pub const UNINIT: Self = Self(1 << 15);
    /// `DYNPTR_TYPE_LOCAL`: a dynptr over program memory.
    pub const DYNPTR_LOCAL: Self = Self(1 << 16);
    /// `DYNPTR_TYPE_RINGBUF`: a dynptr over a ring-buffer record.
    pub const DYNPTR_RINGBUF: Self = Self(1 << 17);
    /// `MEM_FIXED_SIZE`: the memory's size is fixed by the prototype, not by the next
    /// argument (see [`ArgKind::PtrToFixedSizeMem`]).
    pub const FIXED_SIZE: Self = Self(1 << 18);
    /// `MEM_ALLOC`.
    pub const ALLOC: Self = Self(1 << 19);
    /// `PTR_TRUSTED`.
    pub const TRUSTED: Self = Self(1 << 20);
    /// `MEM_RCU`.
    pub const RCU: Self = Self(1 << 21);
    /// `MEM_ALIGNED`: the memory must be aligned to its size.
    pub const ALIGNED: Self = Self(1 << 25);
    /// `MEM_WRITE`: the helper writes the memory.
    pub const WRITE: Self = Self(1 << 26);

    /// The raw bits (the kernel's values).
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Both sets of modifiers.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
    /// Whether every modifier of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
    /// `PTR_MAYBE_NULL` is set.
    pub const fn maybe_null(self) -> bool {
        self.contains(Self::MAYBE_NULL)
    }
    /// `MEM_RDONLY` is set.
    pub const fn rdonly(self) -> bool {
        self.contains(Self::RDONLY)
    }
    /// `MEM_UNINIT` is set.
    pub const fn uninit(self) -> bool {
        self.contains(Self::UNINIT)
    }
    /// `MEM_WRITE` is set.
    pub const fn write(self) -> bool {
        self.contains(Self::WRITE)
    }
    /// `OBJ_RELEASE` is set.
    pub const fn release(self) -> bool {
        self.contains(Self::RELEASE)
    }
}

/// What a helper argument must be (`enum bpf_arg_type`), with its modifiers.
///
/// Variants that carry [`TypeFlags`] are the kernel's base kinds that take modifiers in the
/// prototypes; the others never do. A size argument (`ConstSize`, `ConstSizeOrZero`) bounds the
/// memory argument just before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// `ARG_DONTCARE`: the argument is unused.
    DontCare,
    /// `ARG_CONST_MAP_PTR`: a map (a `ld_imm64` map reference).
    ConstMapPtr,
    /// `ARG_PTR_TO_MAP_KEY`: memory of the map's key size (stack, map value or packet).
    PtrToMapKey(TypeFlags),
    /// `ARG_PTR_TO_MAP_VALUE`: memory of the map's value size.
    PtrToMapValue(TypeFlags),
    /// `ARG_PTR_TO_MEM`: memory whose size is the next argument.
    PtrToMem(TypeFlags),
    /// `ARG_PTR_TO_MEM | MEM_FIXED_SIZE`: memory of `size` bytes (the prototype's `argN_size`).
    /// The kernel's former `ARG_PTR_TO_LONG` is this with `size: 8` and
    /// `UNINIT | WRITE | ALIGNED`.
    PtrToFixedSizeMem {
        /// Size of the memory in bytes.
        size: u32,
        /// Modifiers besides `MEM_FIXED_SIZE`.
        flags: TypeFlags,
    },
    /// `ARG_PTR_TO_ARENA`.
    PtrToArena,
    /// `ARG_CONST_SIZE`: a known, non-zero size for the previous memory argument.
    ConstSize,
    /// `ARG_CONST_SIZE_OR_ZERO`: a known size, possibly zero.
    ConstSizeOrZero,
    /// `ARG_CONST_ALLOC_SIZE_OR_ZERO`: a known size of memory the helper returns.
    ConstAllocSizeOrZero,
    /// `ARG_PTR_TO_CTX`: the program's context pointer.
    PtrToCtx(TypeFlags),
    /// `ARG_ANYTHING`: any initialised scalar or pointer.
    Anything,
    /// `ARG_PTR_TO_SPIN_LOCK`: the `struct bpf_spin_lock` inside a map value.
    PtrToSpinLock,
    /// `ARG_PTR_TO_SOCK_COMMON`.
    PtrToSockCommon,
    /// `ARG_PTR_TO_SOCKET`.
    PtrToSocket(TypeFlags),
    /// `ARG_PTR_TO_BTF_ID`: a pointer to a kernel object of a BTF type.
    PtrToBtfId(TypeFlags),
    /// `ARG_PTR_TO_RINGBUF_MEM`: a record returned by `ringbuf_reserve`.
    PtrToRingbufMem(TypeFlags),
    /// `ARG_PTR_TO_BTF_ID_SOCK_COMMON`.
    PtrToBtfIdSockCommon,
    /// `ARG_PTR_TO_PERCPU_BTF_ID`.
    PtrToPercpuBtfId,
    /// `ARG_PTR_TO_FUNC`: a callback (a `ld_imm64` of a subprogram).
    PtrToFunc,
    /// `ARG_PTR_TO_STACK`: a pointer into the program's stack (callback context).
    PtrToStack(TypeFlags),
    /// `ARG_PTR_TO_CONST_STR`: a NUL-terminated string in a read-only map.
    PtrToConstStr,
    /// `ARG_PTR_TO_TIMER`: the `struct bpf_timer` inside a map value.
    PtrToTimer,
    /// `ARG_KPTR_XCHG_DEST`.
    KptrXchgDest,
    /// `ARG_PTR_TO_DYNPTR`: a `struct bpf_dynptr` on the stack.
    PtrToDynptr(TypeFlags),
}

impl ArgKind {
    /// `ARG_PTR_TO_UNINIT_MEM`: `ARG_PTR_TO_MEM | MEM_UNINIT | MEM_WRITE`, memory the helper
    /// fills (size in the next argument).
    pub const PTR_TO_UNINIT_MEM: Self = Self::PtrToMem(TypeFlags::UNINIT.union(TypeFlags::WRITE));
    /// `ARG_PTR_TO_MEM | MEM_RDONLY`: memory the helper only reads.
    pub const PTR_TO_MEM_RDONLY: Self = Self::PtrToMem(TypeFlags::RDONLY);
    /// `ARG_PTR_TO_STACK_OR_NULL`.
    pub const PTR_TO_STACK_OR_NULL: Self = Self::PtrToStack(TypeFlags::MAYBE_NULL);

    /// The modifiers (empty for kinds that take none).
    pub const fn flags(self) -> TypeFlags {
        match self {
            Self::PtrToMapKey(f)
            | Self::PtrToMapValue(f)
            | Self::PtrToMem(f)
            | Self::PtrToCtx(f)
            | Self::PtrToSocket(f)
            | Self::PtrToBtfId(f)
            | Self::PtrToRingbufMem(f)
            | Self::PtrToStack(f)
            | Self::PtrToDynptr(f) => f,
            Self::PtrToFixedSizeMem { flags, .. } => flags.union(TypeFlags::FIXED_SIZE),
            _ => TypeFlags::NONE,
        }
    }

    /// The base kind's number in the kernel's `enum bpf_arg_type` (without modifiers).
    pub const fn base_code(self) -> u32 {
        match self {
            Self::DontCare => 0,
            Self::ConstMapPtr => 1,
            Self::PtrToMapKey(_) => 2,
            Self::PtrToMapValue(_) => 3,
            Self::PtrToMem(_) | Self::PtrToFixedSizeMem { .. } => 4,
            Self::PtrToArena => 5,
            Self::ConstSize => 6,
            Self::ConstSizeOrZero => 7,
            Self::PtrToCtx(_) => 8,
            Self::Anything => 9,
            Self::PtrToSpinLock => 10,
            Self::PtrToSockCommon => 11,
            Self::PtrToSocket(_) => 12,
            Self::PtrToBtfId(_) => 13,
            Self::PtrToRingbufMem(_) => 14,
            Self::ConstAllocSizeOrZero => 15,
            Self::PtrToBtfIdSockCommon => 16,
            Self::PtrToPercpuBtfId => 17,
            Self::PtrToFunc => 18,
            Self::PtrToStack(_) => 19,
            Self::PtrToConstStr => 20,
            Self::PtrToTimer => 21,
            Self::KptrXchgDest => 22,
            Self::PtrToDynptr(_) => 23,
        }
    }

    /// The value the kernel (6.18) gives this argument type: base kind | modifiers.
    pub const fn kernel_code(self) -> u32 {
        self.base_code() | self.flags().bits()
    }

    /// Whether the argument is a pointer (the register must hold a pointer of the right
    /// kind, or NULL where [`TypeFlags::maybe_null`] says so). `Anything` and `DontCare` are
    /// not pointers, though `Anything` accepts one.
    pub const fn is_pointer(self) -> bool {
        !matches!(
            self,
            Self::DontCare
                | Self::Anything
                | Self::ConstSize
                | Self::ConstSizeOrZero
                | Self::ConstAllocSizeOrZero
        )
    }

    /// Whether the argument is used at all.
    pub const fn is_used(self) -> bool {
        !matches!(self, Self::DontCare)
    }
}

/// What a helper returns in `r0` (`enum bpf_return_type`), with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetKind {
    /// `RET_INTEGER`: a scalar.
    Integer,
    /// `RET_VOID`: nothing; `r0` is unreadable after the call.
    Void,
    /// `RET_PTR_TO_MAP_VALUE`: a value of the map passed as the first `ConstMapPtr` argument.
    PtrToMapValue(TypeFlags),
    /// `RET_PTR_TO_SOCKET`.
    PtrToSocket(TypeFlags),
    /// `RET_PTR_TO_TCP_SOCK`.
    PtrToTcpSock(TypeFlags),
    /// `RET_PTR_TO_SOCK_COMMON`.
    PtrToSockCommon(TypeFlags),
    /// `RET_PTR_TO_MEM`: memory whose size is the `ConstAllocSizeOrZero` argument; with
    /// [`TypeFlags::RINGBUF`] a ring-buffer record that must be submitted or discarded.
    PtrToMem(TypeFlags),
    /// `RET_PTR_TO_MEM_OR_BTF_ID`.
    PtrToMemOrBtfId(TypeFlags),
    /// `RET_PTR_TO_BTF_ID`.
    PtrToBtfId(TypeFlags),
}

impl RetKind {
    /// The modifiers (empty for `Integer` and `Void`).
    pub const fn flags(self) -> TypeFlags {
        match self {
            Self::Integer | Self::Void => TypeFlags::NONE,
            Self::PtrToMapValue(f)
            | Self::PtrToSocket(f)
            | Self::PtrToTcpSock(f)
            | Self::PtrToSockCommon(f)
            | Self::PtrToMem(f)
            | Self::PtrToMemOrBtfId(f)
            | Self::PtrToBtfId(f) => f,
        }
    }

    /// The value the kernel (6.18) gives this return type: base kind | modifiers.
    pub const fn kernel_code(self) -> u32 {
        let base = match self {
            Self::Integer => 0,
            Self::Void => 1,
            Self::PtrToMapValue(_) => 2,
            Self::PtrToSocket(_) => 3,
            Self::PtrToTcpSock(_) => 4,
            Self::PtrToSockCommon(_) => 5,
            Self::PtrToMem(_) => 6,
            Self::PtrToMemOrBtfId(_) => 7,
            Self::PtrToBtfId(_) => 8,
        };
        base | self.flags().bits()
    }

    /// Whether `r0` holds a pointer after the call.
    pub const fn is_pointer(self) -> bool {
        !matches!(self, Self::Integer | Self::Void)
    }
}

/// One helper: its id, name and (when [`known`](Self::known)) the prototype the verifier
/// checks calls against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelperProto {
    /// The helper's id.
    pub id: HelperId,
    /// The name without the `bpf_` prefix, as in `BPF_FUNC_<name>`.
    pub name: &'static str,
    /// Whether `ret`, `args` and `gpl_only` were transcribed from the kernel. When `false`
    /// they are placeholders (`Integer`, all `DontCare`, `false`, `false`) and must not be used.
    pub known: bool,
    /// What the helper returns.
    pub ret: RetKind,
    /// The five argument slots (`r1`..`r5`); unused ones are [`ArgKind::DontCare`].
    pub args: [ArgKind; 5],
    /// Whether only GPL-compatible programs may call it.
    pub gpl_only: bool,
    /// The kernel's `pkt_access`: whether memory arguments (map key/value, `PtrToMem`) may be
    /// packet pointers. When `false`, a verifier must reject packet pointers in those slots.
    pub pkt_access: bool,
}

impl HelperProto {
    /// The number of used arguments (leading non-`DontCare` slots).
    pub fn arg_count(&self) -> usize {
        self.args.iter().take_while(|a| a.is_used()).count()
    }
}

const fn known(
    id: u32,
    name: &'static str,
    ret: RetKind,
    args: [ArgKind; 5],
    gpl_only: bool,
    pkt_access: bool,
) -> HelperProto {
    HelperProto {
        id: HelperId(id),
        name,
        known: true,
        ret,
        args,
        gpl_only,
        pkt_access,
    }
}

const fn unknown(id: u32, name: &'static str) -> HelperProto {
    HelperProto {
        id: HelperId(id),
        name,
        known: false,
        ret: RetKind::Integer,
        args: [ArgKind::DontCare; 5],
        gpl_only: false,
        pkt_access: false,
    }
}

/// The helper with this id, if the kernel defines one.
pub fn helper_by_id(id: HelperId) -> Option<&'static HelperProto> {
    // HELPERS is dense and in id order, starting at 1 (checked by the tests).
    let index = usize::try_from(id.0).ok()?.checked_sub(1)?;
    HELPERS.get(index).filter(|h| h.id == id)
}

/// The helper with this name (without the `bpf_` prefix), if the kernel defines one.
pub fn helper_by_name(name: &str) -> Option<&'static HelperProto> {
    HELPERS.iter().find(|h| h.name == name)
}

/// Every helper of Linux 6.18, in id order: `HELPERS[i].id == HelperId(i + 1)`.
pub static HELPERS: &[HelperProto] = &[
    known(
        1,
        "map_lookup_elem",
        RetKind::PtrToMapValue(TypeFlags::MAYBE_NULL),
        [
            ArgKind::ConstMapPtr,
            ArgKind::PtrToMapKey(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        true,
    ),
    known(
        2,
        "map_update_elem",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::PtrToMapKey(TypeFlags::NONE),
            ArgKind::PtrToMapValue(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        true,
    ),
    known(
        3,
        "map_delete_elem",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::PtrToMapKey(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        true,
    ),
    known(
        4,
        "probe_read",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        5,
        "ktime_get_ns",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        6,
        "trace_printk",
        RetKind::Integer,
        [
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        7,
        "get_prandom_u32",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        8,
        "get_smp_processor_id",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        9,
        "skb_store_bytes",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::Anything,
        ],
        false,
        false,
    ),
    known(
        10,
        "l3_csum_replace",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::Anything,
        ],
        false,
        false,
    ),
    known(
        11,
        "l4_csum_replace",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::Anything,
        ],
        false,
        false,
    ),
    known(
        12,
        "tail_call",
        RetKind::Void,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::ConstMapPtr,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        13,
        "clone_redirect",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        14,
        "get_current_pid_tgid",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        15,
        "get_current_uid_gid",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        16,
        "get_current_comm",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSize,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        17,
        "get_cgroup_classid",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        18,
        "skb_vlan_push",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        19,
        "skb_vlan_pop",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        20,
        "skb_get_tunnel_key",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSize,
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        21,
        "skb_set_tunnel_key",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        22,
        "perf_event_read",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        23,
        "redirect",
        RetKind::Integer,
        [
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        24,
        "get_route_realm",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        25,
        "perf_event_output",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::ConstMapPtr,
            ArgKind::Anything,
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSizeOrZero,
        ],
        true,
        false,
    ),
    known(
        26,
        "skb_load_bytes",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSize,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(27, "get_stackid"),
    known(
        28,
        "csum_diff",
        RetKind::Integer,
        [
            ArgKind::PtrToMem(TypeFlags::MAYBE_NULL.union(TypeFlags::RDONLY)),
            ArgKind::ConstSizeOrZero,
            ArgKind::PtrToMem(TypeFlags::MAYBE_NULL.union(TypeFlags::RDONLY)),
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
        ],
        false,
        true,
    ),
    known(
        29,
        "skb_get_tunnel_opt",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSize,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        30,
        "skb_set_tunnel_opt",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        31,
        "skb_change_proto",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        32,
        "skb_change_type",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        33,
        "skb_under_cgroup",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::ConstMapPtr,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        34,
        "get_hash_recalc",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        35,
        "get_current_task",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        36,
        "probe_write_user",
        RetKind::Integer,
        [
            ArgKind::Anything,
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        37,
        "current_task_under_cgroup",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        38,
        "skb_change_tail",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        39,
        "skb_pull_data",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        40,
        "csum_update",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        41,
        "set_hash_invalid",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        42,
        "get_numa_node_id",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        43,
        "skb_change_head",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        44,
        "xdp_adjust_head",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        45,
        "probe_read_str",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        46,
        "get_socket_cookie",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        47,
        "get_socket_uid",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        48,
        "set_hash",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        49,
        "setsockopt",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
        ],
        false,
        false,
    ),
    known(
        50,
        "skb_adjust_room",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        51,
        "redirect_map",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(52, "sk_redirect_map"),
    unknown(53, "sock_map_update"),
    known(
        54,
        "xdp_adjust_meta",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        55,
        "perf_event_read_value",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::Anything,
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSize,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    unknown(56, "perf_prog_read_value"),
    known(
        57,
        "getsockopt",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSize,
        ],
        false,
        false,
    ),
    known(
        58,
        "override_return",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        59,
        "sock_ops_cb_flags_set",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(60, "msg_redirect_map"),
    known(
        61,
        "msg_apply_bytes",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        62,
        "msg_cork_bytes",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        63,
        "msg_pull_data",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        64,
        "bind",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        65,
        "xdp_adjust_tail",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        66,
        "skb_get_xfrm_state",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSize,
            ArgKind::Anything,
        ],
        false,
        false,
    ),
    unknown(67, "get_stack"),
    known(
        68,
        "skb_load_bytes_relative",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSize,
            ArgKind::Anything,
        ],
        false,
        false,
    ),
    unknown(69, "fib_lookup"),
    unknown(70, "sock_hash_update"),
    unknown(71, "msg_redirect_hash"),
    unknown(72, "sk_redirect_hash"),
    unknown(73, "lwt_push_encap"),
    unknown(74, "lwt_seg6_store_bytes"),
    unknown(75, "lwt_seg6_adjust_srh"),
    unknown(76, "lwt_seg6_action"),
    unknown(77, "rc_repeat"),
    unknown(78, "rc_keydown"),
    known(
        79,
        "skb_cgroup_id",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        80,
        "get_current_cgroup_id",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(81, "get_local_storage"),
    unknown(82, "sk_select_reuseport"),
    known(
        83,
        "skb_ancestor_cgroup_id",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(84, "sk_lookup_tcp"),
    unknown(85, "sk_lookup_udp"),
    unknown(86, "sk_release"),
    known(
        87,
        "map_push_elem",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::PtrToMapValue(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        true,
    ),
    known(
        88,
        "map_pop_elem",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::PtrToMapValue(TypeFlags::UNINIT.union(TypeFlags::WRITE)),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        89,
        "map_peek_elem",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::PtrToMapValue(TypeFlags::UNINIT.union(TypeFlags::WRITE)),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        90,
        "msg_push_data",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        91,
        "msg_pop_data",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(92, "rc_pointer_rel"),
    known(
        93,
        "spin_lock",
        RetKind::Void,
        [
            ArgKind::PtrToSpinLock,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        94,
        "spin_unlock",
        RetKind::Void,
        [
            ArgKind::PtrToSpinLock,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        95,
        "sk_fullsock",
        RetKind::PtrToSocket(TypeFlags::MAYBE_NULL),
        [
            ArgKind::PtrToSockCommon,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(96, "tcp_sock"),
    unknown(97, "skb_ecn_set_ce"),
    unknown(98, "get_listener_sock"),
    unknown(99, "skc_lookup_tcp"),
    unknown(100, "tcp_check_syncookie"),
    unknown(101, "sysctl_get_name"),
    unknown(102, "sysctl_get_current_value"),
    unknown(103, "sysctl_get_new_value"),
    unknown(104, "sysctl_set_new_value"),
    known(
        105,
        "strtol",
        RetKind::Integer,
        [
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::Anything,
            ArgKind::PtrToFixedSizeMem {
                size: 8,
                flags: TypeFlags::UNINIT
                    .union(TypeFlags::WRITE)
                    .union(TypeFlags::ALIGNED),
            },
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        106,
        "strtoul",
        RetKind::Integer,
        [
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::Anything,
            ArgKind::PtrToFixedSizeMem {
                size: 8,
                flags: TypeFlags::UNINIT
                    .union(TypeFlags::WRITE)
                    .union(TypeFlags::ALIGNED),
            },
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(107, "sk_storage_get"),
    unknown(108, "sk_storage_delete"),
    known(
        109,
        "send_signal",
        RetKind::Integer,
        [
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(110, "tcp_gen_syncookie"),
    unknown(111, "skb_output"),
    known(
        112,
        "probe_read_user",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        113,
        "probe_read_kernel",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        114,
        "probe_read_user_str",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        115,
        "probe_read_kernel_str",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    unknown(116, "tcp_send_ack"),
    known(
        117,
        "send_signal_thread",
        RetKind::Integer,
        [
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        118,
        "jiffies64",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(119, "read_branch_records"),
    known(
        120,
        "get_ns_current_pid_tgid",
        RetKind::Integer,
        [
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSize,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(121, "xdp_output"),
    known(
        122,
        "get_netns_cookie",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::MAYBE_NULL),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        123,
        "get_current_ancestor_cgroup_id",
        RetKind::Integer,
        [
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(124, "sk_assign"),
    known(
        125,
        "ktime_get_boot_ns",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        126,
        "seq_printf",
        RetKind::Integer,
        [
            ArgKind::PtrToBtfId(TypeFlags::NONE),
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::PtrToMem(TypeFlags::MAYBE_NULL.union(TypeFlags::RDONLY)),
            ArgKind::ConstSizeOrZero,
        ],
        true,
        false,
    ),
    known(
        127,
        "seq_write",
        RetKind::Integer,
        [
            ArgKind::PtrToBtfId(TypeFlags::NONE),
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSizeOrZero,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        128,
        "sk_cgroup_id",
        RetKind::Integer,
        [
            ArgKind::PtrToBtfIdSockCommon,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        129,
        "sk_ancestor_cgroup_id",
        RetKind::Integer,
        [
            ArgKind::PtrToBtfIdSockCommon,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        130,
        "ringbuf_output",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        131,
        "ringbuf_reserve",
        RetKind::PtrToMem(TypeFlags::RINGBUF.union(TypeFlags::MAYBE_NULL)),
        [
            ArgKind::ConstMapPtr,
            ArgKind::ConstAllocSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        132,
        "ringbuf_submit",
        RetKind::Void,
        [
            ArgKind::PtrToRingbufMem(TypeFlags::RELEASE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        133,
        "ringbuf_discard",
        RetKind::Void,
        [
            ArgKind::PtrToRingbufMem(TypeFlags::RELEASE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        134,
        "ringbuf_query",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        135,
        "csum_level",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(136, "skc_to_tcp6_sock"),
    unknown(137, "skc_to_tcp_sock"),
    unknown(138, "skc_to_tcp_timewait_sock"),
    unknown(139, "skc_to_tcp_request_sock"),
    unknown(140, "skc_to_udp6_sock"),
    unknown(141, "get_task_stack"),
    unknown(142, "load_hdr_opt"),
    unknown(143, "store_hdr_opt"),
    unknown(144, "reserve_hdr_opt"),
    unknown(145, "inode_storage_get"),
    unknown(146, "inode_storage_delete"),
    unknown(147, "d_path"),
    known(
        148,
        "copy_from_user",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(149, "snprintf_btf"),
    known(
        150,
        "seq_printf_btf",
        RetKind::Integer,
        [
            ArgKind::PtrToBtfId(TypeFlags::NONE),
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        151,
        "skb_cgroup_classid",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        152,
        "redirect_neigh",
        RetKind::Integer,
        [
            ArgKind::Anything,
            ArgKind::PtrToMem(TypeFlags::MAYBE_NULL.union(TypeFlags::RDONLY)),
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        153,
        "per_cpu_ptr",
        RetKind::PtrToMemOrBtfId(TypeFlags::MAYBE_NULL.union(TypeFlags::RDONLY)),
        [
            ArgKind::PtrToPercpuBtfId,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        154,
        "this_cpu_ptr",
        RetKind::PtrToMemOrBtfId(TypeFlags::RDONLY),
        [
            ArgKind::PtrToPercpuBtfId,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        155,
        "redirect_peer",
        RetKind::Integer,
        [
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(156, "task_storage_get"),
    unknown(157, "task_storage_delete"),
    known(
        158,
        "get_current_task_btf",
        RetKind::PtrToBtfId(TypeFlags::TRUSTED),
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    unknown(159, "bprm_opts_set"),
    known(
        160,
        "ktime_get_coarse_ns",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(161, "ima_inode_hash"),
    unknown(162, "sock_from_file"),
    unknown(163, "check_mtu"),
    known(
        164,
        "for_each_map_elem",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::PtrToFunc,
            ArgKind::PtrToStack(TypeFlags::MAYBE_NULL),
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        165,
        "snprintf",
        RetKind::Integer,
        [
            ArgKind::PtrToMem(TypeFlags::MAYBE_NULL),
            ArgKind::ConstSizeOrZero,
            ArgKind::PtrToConstStr,
            ArgKind::PtrToMem(TypeFlags::MAYBE_NULL.union(TypeFlags::RDONLY)),
            ArgKind::ConstSizeOrZero,
        ],
        true,
        false,
    ),
    unknown(166, "sys_bpf"),
    unknown(167, "btf_find_by_name_kind"),
    unknown(168, "sys_close"),
    known(
        169,
        "timer_init",
        RetKind::Integer,
        [
            ArgKind::PtrToTimer,
            ArgKind::ConstMapPtr,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        170,
        "timer_set_callback",
        RetKind::Integer,
        [
            ArgKind::PtrToTimer,
            ArgKind::PtrToFunc,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        171,
        "timer_start",
        RetKind::Integer,
        [
            ArgKind::PtrToTimer,
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        172,
        "timer_cancel",
        RetKind::Integer,
        [
            ArgKind::PtrToTimer,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    unknown(173, "get_func_ip"),
    known(
        174,
        "get_attach_cookie",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        175,
        "task_pt_regs",
        RetKind::PtrToBtfId(TypeFlags::NONE),
        [
            ArgKind::PtrToBtfId(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        176,
        "get_branch_snapshot",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    known(
        177,
        "trace_vprintk",
        RetKind::Integer,
        [
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::PtrToMem(TypeFlags::MAYBE_NULL.union(TypeFlags::RDONLY)),
            ArgKind::ConstSizeOrZero,
            ArgKind::DontCare,
        ],
        true,
        false,
    ),
    unknown(178, "skc_to_unix_sock"),
    unknown(179, "kallsyms_lookup_name"),
    unknown(180, "find_vma"),
    known(
        181,
        "loop",
        RetKind::Integer,
        [
            ArgKind::Anything,
            ArgKind::PtrToFunc,
            ArgKind::PtrToStack(TypeFlags::MAYBE_NULL),
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        182,
        "strncmp",
        RetKind::Integer,
        [
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSize,
            ArgKind::PtrToConstStr,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(183, "get_func_arg"),
    unknown(184, "get_func_ret"),
    known(
        185,
        "get_func_arg_cnt",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(186, "get_retval"),
    unknown(187, "set_retval"),
    known(
        188,
        "xdp_get_buff_len",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        189,
        "xdp_load_bytes",
        RetKind::Integer,
        [
            ArgKind::PtrToCtx(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSize,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(190, "xdp_store_bytes"),
    known(
        191,
        "copy_from_user_task",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::PtrToBtfId(TypeFlags::NONE),
            ArgKind::Anything,
        ],
        true,
        false,
    ),
    unknown(192, "skb_set_tstamp"),
    unknown(193, "ima_file_hash"),
    known(
        194,
        "kptr_xchg",
        RetKind::PtrToBtfId(TypeFlags::MAYBE_NULL),
        [
            ArgKind::KptrXchgDest,
            ArgKind::PtrToBtfId(TypeFlags::MAYBE_NULL.union(TypeFlags::RELEASE)),
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        195,
        "map_lookup_percpu_elem",
        RetKind::PtrToMapValue(TypeFlags::MAYBE_NULL),
        [
            ArgKind::ConstMapPtr,
            ArgKind::PtrToMapKey(TypeFlags::NONE),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        true,
    ),
    unknown(196, "skc_to_mptcp_sock"),
    known(
        197,
        "dynptr_from_mem",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
            ArgKind::PtrToDynptr(
                TypeFlags::DYNPTR_LOCAL
                    .union(TypeFlags::UNINIT)
                    .union(TypeFlags::WRITE),
            ),
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        198,
        "ringbuf_reserve_dynptr",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::Anything,
            ArgKind::Anything,
            ArgKind::PtrToDynptr(TypeFlags::DYNPTR_RINGBUF.union(TypeFlags::UNINIT)),
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        199,
        "ringbuf_submit_dynptr",
        RetKind::Void,
        [
            ArgKind::PtrToDynptr(TypeFlags::DYNPTR_RINGBUF.union(TypeFlags::RELEASE)),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        200,
        "ringbuf_discard_dynptr",
        RetKind::Void,
        [
            ArgKind::PtrToDynptr(TypeFlags::DYNPTR_RINGBUF.union(TypeFlags::RELEASE)),
            ArgKind::Anything,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        201,
        "dynptr_read",
        RetKind::Integer,
        [
            ArgKind::PTR_TO_UNINIT_MEM,
            ArgKind::ConstSizeOrZero,
            ArgKind::PtrToDynptr(TypeFlags::RDONLY),
            ArgKind::Anything,
            ArgKind::Anything,
        ],
        false,
        false,
    ),
    known(
        202,
        "dynptr_write",
        RetKind::Integer,
        [
            ArgKind::PtrToDynptr(TypeFlags::RDONLY),
            ArgKind::Anything,
            ArgKind::PtrToMem(TypeFlags::RDONLY),
            ArgKind::ConstSizeOrZero,
            ArgKind::Anything,
        ],
        false,
        false,
    ),
    known(
        203,
        "dynptr_data",
        RetKind::PtrToMem(TypeFlags::MAYBE_NULL),
        [
            ArgKind::PtrToDynptr(TypeFlags::RDONLY),
            ArgKind::Anything,
            ArgKind::ConstAllocSizeOrZero,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(204, "tcp_raw_gen_syncookie_ipv4"),
    unknown(205, "tcp_raw_gen_syncookie_ipv6"),
    unknown(206, "tcp_raw_check_syncookie_ipv4"),
    unknown(207, "tcp_raw_check_syncookie_ipv6"),
    known(
        208,
        "ktime_get_tai_ns",
        RetKind::Integer,
        [
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    known(
        209,
        "user_ringbuf_drain",
        RetKind::Integer,
        [
            ArgKind::ConstMapPtr,
            ArgKind::PtrToFunc,
            ArgKind::PtrToStack(TypeFlags::MAYBE_NULL),
            ArgKind::Anything,
            ArgKind::DontCare,
        ],
        false,
        false,
    ),
    unknown(210, "cgrp_storage_get"),
    unknown(211, "cgrp_storage_delete"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_ordered() {
        for (i, h) in HELPERS.iter().enumerate() {
            assert_eq!(h.id.0 as usize, i + 1, "{}", h.name);
            assert_eq!(helper_by_id(h.id), Some(h));
            assert_eq!(helper_by_name(h.name), Some(h));
        }
        assert_eq!(helper_by_id(HelperId(0)), None);
        assert_eq!(helper_by_id(HelperId(HELPERS.len() as u32 + 1)), None);
    }

    #[test]
    fn args_are_contiguous() {
        for h in HELPERS {
            let n = h.arg_count();
            assert!(h.args[n..].iter().all(|a| !a.is_used()), "{}", h.name);
        }
    }
}
