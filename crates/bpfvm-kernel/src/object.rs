//! Loading a [`bpfvm_object::Object`] into the kernel as libbpf would: BTF, maps (with
//! their initial contents, frozen where libbpf freezes), then every program with the maps
//! in its `fd_array`, its BTF func and line info, and its attach target's BTF id.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, BorrowedFd};

use bpfvm_btf::{Btf as BtfTypes, Kind};
use bpfvm_object::{
    KconfigValue, LoadOptions, MapContents, MapSpec, Object, ObjectRun, ProgramSpec, SlotValue,
};

use crate::btf::Btf;
use crate::error::KernelError;
use crate::log::LogOptions;
use crate::map::{Map, MapCreate, MapType};
use crate::prog::{AttachType, BtfRecords, Prog, ProgLoad, ProgType, TestRun};
use crate::sys::Bpf;

/// `BPF_F_SLEEPABLE`
const F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS`
const F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// How to load an object into the kernel.
#[derive(Debug, Clone, Default)]
pub struct KernelLoadOptions {
    /// Verifier log policy and sizes.
    pub log: LogOptions,
    /// Where maps defined with `pinning = LIBBPF_PIN_BY_NAME` are pinned (libbpf uses
    /// `/sys/fs/bpf`): a map already pinned there is reused (after checking its shape),
    /// otherwise it is created and pinned. `None`: such maps are created unpinned, so
    /// loading leaves nothing behind in the file system.
    pub pin_root: Option<std::path::PathBuf>,
}

/// An object's maps and programs, loaded in the kernel. Dropping it closes them all.
#[derive(Debug)]
pub struct KernelObject {
    /// The object's BTF as the kernel holds it, if the kernel took it.
    pub btf: Option<Btf>,
    /// Maps, in the object's order (what `fd_array` indexes).
    pub maps: Vec<Map>,
    /// Programs by name, in the object's order.
    pub programs: Vec<(String, Prog)>,
}

impl KernelObject {
    /// The program named `name`.
    pub fn program(&self, name: &str) -> Option<&Prog> {
        self.programs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
    }

    /// Runs program `program` once on `packet` with `BPF_PROG_TEST_RUN` and reads back the
    /// packet and every readable map: the kernel's side of an engine comparison.
    pub fn run(
        &self,
        object: &Object,
        program: &str,
        packet: &[u8],
    ) -> Result<ObjectRun, KernelError> {
        let prog = self
            .program(program)
            .ok_or_else(|| KernelError::Invalid(format!("no program `{program}` was loaded")))?;
        let mut out = vec![0; packet.len() + 256];
        let r = prog.test_run(&mut TestRun {
            data_in: packet,
            data_out: Some(&mut out),
            repeat: 1,
            ..TestRun::default()
        })?;
        out.truncate(r.data_size_out as usize);
        Ok(ObjectRun {
            retval: r.retval,
            packet: out,
            maps: self.snapshot(object)?,
        })
    }

    /// The contents of every map user space can read element by element (hash and array
    /// kinds, per-CPU or not).
    pub fn snapshot(&self, object: &Object) -> Result<BTreeMap<String, MapContents>, KernelError> {
        let mut out = BTreeMap::new();
        for (spec, map) in object.maps.iter().zip(&self.maps) {
            // hash, array, percpu_hash, percpu_array, lru_hash, lru_percpu_hash
            if !matches!(spec.map_type, 1 | 2 | 5 | 6 | 9 | 10) {
                continue;
            }
            let mut contents = MapContents::new();
            for key in map.keys()? {
                if let Some(value) = map.lookup(&key)? {
                    contents.insert(key, value);
                }
            }
            out.insert(spec.name.clone(), contents);
        }
        Ok(out)
    }

    /// The map at the object's index of the map named `name`.
    pub fn map(&self, object: &Object, name: &str) -> Option<&Map> {
        object
            .maps
            .iter()
            .position(|m| m.name == name)
            .and_then(|i| self.maps.get(i))
    }
}

fn context(what: String) -> impl Fn(KernelError) -> KernelError {
    move |e| KernelError::Context {
        context: what.clone(),
        error: Box::new(e),
    }
}

/// The kernel's own BTF (`/sys/kernel/btf/vmlinux`): the target of CO-RE relocations,
/// typed `__ksym`s, kfuncs and attach points.
pub fn vmlinux_btf() -> Result<BtfTypes, KernelError> {
    let path = "/sys/kernel/btf/vmlinux";
    let data = std::fs::read(path).map_err(|e| KernelError::Invalid(format!("{path}: {e}")))?;
    BtfTypes::parse(&data).map_err(|e| KernelError::Invalid(format!("{path}: {e}")))
}

/// `KERNEL_VERSION(a, b, c)` of the running kernel, from `/proc/sys/kernel/osrelease`.
pub fn running_kernel_version() -> Option<u32> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().ok());
    let (a, b, c) = (
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    );
    Some((a << 16) | (b << 8) | c.min(255))
}

/// `CONFIG_*` values of the running kernel, from `/boot/config-<release>` when present.
pub fn running_kernel_config() -> BTreeMap<String, KconfigValue> {
    let mut out = BTreeMap::new();
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return out;
    };
    let Ok(text) = std::fs::read_to_string(format!("/boot/config-{}", release.trim())) else {
        return out;
    };
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let value = match v {
            "y" | "n" | "m" => KconfigValue::Tristate(v.chars().next().unwrap_or('n')),
            _ if v.starts_with('"') => KconfigValue::Str(v.trim_matches('"').to_string()),
            _ => match v.strip_prefix("0x") {
                Some(hex) => i64::from_str_radix(hex, 16)
                    .map(KconfigValue::Int)
                    .unwrap_or(KconfigValue::Str(v.into())),
                None => v
                    .parse()
                    .map(KconfigValue::Int)
                    .unwrap_or(KconfigValue::Str(v.into())),
            },
        };
        out.insert(k.to_string(), value);
    }
    out
}

/// Addresses of kernel symbols (`/proc/kallsyms`; zero without `CAP_SYSLOG`).
pub fn kallsyms() -> BTreeMap<String, u64> {
    let Ok(text) = std::fs::read_to_string("/proc/kallsyms") else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let addr = u64::from_str_radix(w.next()?, 16).ok()?;
            let _kind = w.next()?;
            Some((w.next()?.to_string(), addr))
        })
        .collect()
}

/// Load options for the running kernel: CO-RE and ksyms against `vmlinux`, the running
/// kernel's version and config, kallsyms.
pub fn host_load_options<'a>(name: &str, vmlinux: &'a BtfTypes) -> LoadOptions<'a> {
    LoadOptions {
        name: name.to_string(),
        target_btf: Some(vmlinux),
        kernel_version: running_kernel_version(),
        kconfig: running_kernel_config(),
        ksym_addresses: kallsyms(),
        ..LoadOptions::default()
    }
}

/// A kernel program name: at most 15 characters the kernel accepts.
fn kernel_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(15)
        .collect()
}

impl Bpf {
    /// Loads every map and program of `object` (loaded for this kernel: see
    /// [`host_load_options`]). `vmlinux` resolves attach targets of `fentry`, `lsm`,
    /// `tp_btf`… programs.
    pub fn load_object(
        &self,
        object: &Object,
        vmlinux: Option<&BtfTypes>,
        opts: &KernelLoadOptions,
    ) -> Result<KernelObject, KernelError> {
        self.load_object_programs(object, vmlinux, opts, &|_| true)
    }

    /// [`Bpf::load_object`] with only the programs `want` selects (the others' maps are
    /// still created: programs share them).
    pub fn load_object_programs(
        &self,
        object: &Object,
        vmlinux: Option<&BtfTypes>,
        opts: &KernelLoadOptions,
        want: &dyn Fn(&ProgramSpec) -> bool,
    ) -> Result<KernelObject, KernelError> {
        let log = &opts.log;
        // The kernel may refuse the object's BTF (libbpf then goes on without it).
        let btf = object
            .btf
            .as_ref()
            .and_then(|b| self.btf_load(&b.to_bytes(), &LogOptions::default()).ok());
        let mut maps = Vec::new();
        for spec in &object.maps {
            let pin = opts
                .pin_root
                .as_ref()
                .filter(|_| spec.pinning == 1)
                .map(|root| root.join(&spec.name));
            if let Some(path) = pin.as_ref().filter(|p| p.exists()) {
                let map = self
                    .map_from_pin(path, &Self::map_request(spec))
                    .map_err(context(format!("map `{}`", spec.name)))?;
                maps.push(map);
                continue;
            }
            let map = self
                .create_object_map(spec, btf.as_ref())
                .map_err(context(format!("map `{}`", spec.name)))?;
            if let Some(path) = &pin {
                map.pin(path).map_err(context(format!(
                    "pinning map `{}` at {}",
                    spec.name,
                    path.display()
                )))?;
            }
            if let Some(data) = &spec.initial_data {
                map.update(&0u32.to_le_bytes(), data, 0)
                    .map_err(context(format!("initial data of map `{}`", spec.name)))?;
            }
            if spec.frozen {
                map.freeze()
                    .map_err(context(format!("freezing map `{}`", spec.name)))?;
            }
            maps.push(map);
        }
        let fds: Vec<BorrowedFd<'_>> = maps.iter().map(|m| m.fd()).collect();
        let mut programs = Vec::new();
        for p in object.programs.iter().filter(|p| want(p)) {
            let prog = self
                .load_object_program(object, p, btf.as_ref(), &fds, vmlinux, log)
                .map_err(context(format!(
                    "program `{}` (section `{}`)",
                    p.name, p.section
                )))?;
            programs.push((p.name.clone(), prog));
        }
        // Static initializers of map-in-maps and program arrays, now that every fd exists.
        for (spec, map) in object.maps.iter().zip(&maps) {
            for (slot, value) in &spec.initial_slots {
                let fd = match value {
                    SlotValue::Map(i) => maps.get(*i).map(|m| m.fd().as_raw_fd()),
                    SlotValue::Program(name) => programs
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, p)| p.fd().as_raw_fd()),
                };
                // A program left out by `want` leaves its slot empty.
                let Some(fd) = fd else { continue };
                map.update(&slot.to_le_bytes(), &(fd as u32).to_le_bytes(), 0)
                    .map_err(context(format!("map `{}` slot {slot}", spec.name)))?;
            }
        }
        Ok(KernelObject {
            btf,
            maps,
            programs,
        })
    }

    /// The `BPF_MAP_CREATE` request of a map definition, without BTF or inner map.
    fn map_request(spec: &MapSpec) -> MapCreate<'static> {
        let mut req = MapCreate::new(
            MapType(spec.map_type),
            spec.key_size,
            spec.value_size,
            spec.max_entries,
        )
        .with_name(&kernel_name(&spec.name))
        .with_flags(spec.flags)
        .with_map_extra(spec.map_extra);
        req.numa_node = spec.numa_node;
        req
    }

    fn create_object_map(&self, spec: &MapSpec, btf: Option<&Btf>) -> Result<Map, KernelError> {
        let inner = match &spec.inner {
            Some(inner) => Some(self.create_object_map(inner, btf)?),
            None => None,
        };
        let mut req = Self::map_request(spec);
        if let Some(inner) = &inner {
            req = req.with_inner_map(inner.fd());
        }
        if let Some(b) = btf
            && spec.btf_value_type_id != 0
        {
            let with_btf =
                req.clone()
                    .with_btf(b.fd(), spec.btf_key_type_id, spec.btf_value_type_id);
            // As libbpf: a map the kernel will not type with this BTF is created untyped.
            if let Ok(map) = self.map_create(&with_btf) {
                return Ok(map);
            }
        }
        self.map_create(&req)
    }

    fn load_object_program(
        &self,
        object: &Object,
        p: &ProgramSpec,
        btf: Option<&Btf>,
        fds: &[BorrowedFd<'_>],
        vmlinux: Option<&BtfTypes>,
        log: &LogOptions,
    ) -> Result<Prog, KernelError> {
        if p.kind.prog_type == 0 {
            return Err(KernelError::Invalid(format!(
                "section `{}` names no program type libbpf knows",
                p.section
            )));
        }
        let name = kernel_name(&p.name);
        let mut req = ProgLoad::new(ProgType(p.kind.prog_type), &p.insns)
            .with_name(&name)
            .with_license(&object.license)
            .with_expected_attach_type(AttachType(p.kind.expected_attach_type))
            .with_fd_array(fds, false)
            .with_log(*log);
        req.kern_version = object.kern_version.unwrap_or(0);
        let mut flags = 0;
        if p.kind.sleepable {
            flags |= F_SLEEPABLE;
        }
        if p.kind.frags {
            flags |= F_XDP_HAS_FRAGS;
        }
        req.prog_flags = flags;
        if p.kind.needs_attach_btf_id {
            let target = p.kind.attach_target.as_deref().unwrap_or_default();
            let vmlinux = vmlinux.ok_or_else(|| {
                KernelError::Invalid("attach targets need the kernel's BTF".into())
            })?;
            req.attach_btf_id = attach_btf_id(vmlinux, p.kind.sec_def.unwrap_or_default(), target)
                .ok_or_else(|| {
                    KernelError::Invalid(format!(
                        "attach target `{target}` not found in the kernel's BTF"
                    ))
                })?;
        }
        let func_info: Vec<u8> = p
            .func_info
            .iter()
            .flat_map(|(pc, ty)| [*pc as u32, ty.0])
            .flat_map(u32::to_le_bytes)
            .collect();
        // Lines read from DWARF have no BTF strings to point at: the kernel gets none.
        let line_info: Vec<u8> = p
            .line_info
            .iter()
            .filter(|l| l.file_name_off != 0)
            .flat_map(|l| {
                [
                    l.pc as u32,
                    l.file_name_off,
                    l.line_off,
                    (l.line << 10) | (l.col & 0x3ff),
                ]
            })
            .flat_map(u32::to_le_bytes)
            .collect();
        if let Some(b) = btf
            && !p.func_info.is_empty()
        {
            req = req.with_btf(
                b.fd(),
                Some(BtfRecords {
                    rec_size: 8,
                    data: &func_info,
                }),
                (!line_info.is_empty()).then_some(BtfRecords {
                    rec_size: 16,
                    data: &line_info,
                }),
            );
        }
        self.prog_load(&req)
    }
}

/// The BTF id libbpf attaches a program of section prefix `sec_def` to `target`.
fn attach_btf_id(vmlinux: &BtfTypes, sec_def: &str, target: &str) -> Option<u32> {
    let (kind, name) = match sec_def {
        "tp_btf" => (Kind::Typedef, format!("btf_trace_{target}")),
        "lsm" | "lsm.s" | "lsm_cgroup" => (Kind::Func, format!("bpf_lsm_{target}")),
        "iter" | "iter.s" => (Kind::Func, format!("bpf_iter_{target}")),
        _ => (Kind::Func, target.to_string()),
    };
    vmlinux.find(kind, &name).map(|id| id.0)
}
