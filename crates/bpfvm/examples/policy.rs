//! A file-access policy in the style of Falco and Tetragon, over events the host defines.
//!
//! The host reports every file open and exec to the hook `file_event` with a `struct
//! file_event`. The program `check_event` of `bpf/policy.c` answers 0 (allow) or 1
//! (deny) from policy maps the host fills: denied path prefixes in an LPM trie (the
//! longest stored prefix gives the rule id), the executables allowed in a hash map, the
//! trusted uids in another. Each denial is also reported as a `struct alert` on the ring
//! buffer `alerts`, which the host drains; per-CPU counters count allows, denials and
//! alerts the full ring dropped. The rules are in `bpf/README.md`, section `policy.o`.
//!
//! Run it: `cargo run -p bpfvm --example policy`.

use bpfvm::lpm_trie::Key;
use bpfvm::{HashMap, Hook, LpmTrie, Object, PerCpuArray, RingBuf};
use bpfvm_abi::UPDATE_ANY;
use bpfvm_runtime::Context;

/// Bytes of a path in the program's structs (`PATH_LEN`), NUL-padded.
pub const PATH_LEN: usize = 64;
/// `kind` of an open.
pub const KIND_OPEN: u32 = 0;
/// `kind` of an exec.
pub const KIND_EXEC: u32 = 1;
/// The rule id of an exec denied because it is not in `exec_allow`.
pub const RULE_EXEC_NOT_ALLOWED: u32 = 0xffff_ffff;

/// `struct file_event` of policy.c: the program's context (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FileEvent {
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// [`KIND_OPEN`] or [`KIND_EXEC`].
    pub kind: u32,
    /// Open flags (not used by the rules).
    pub flags: u32,
    /// The path, NUL-padded.
    pub path: [u8; PATH_LEN],
}

/// `struct alert` of policy.c: what a denial reports on `alerts` (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Alert {
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// [`KIND_OPEN`] or [`KIND_EXEC`].
    pub kind: u32,
    /// The deny prefix's rule id, or [`RULE_EXEC_NOT_ALLOWED`].
    pub rule_id: u32,
    /// The event's path.
    pub path: [u8; PATH_LEN],
}

/// A path as the program's structs hold it: its bytes, NUL-padded (or cut) to 64.
pub fn path_bytes(path: &str) -> [u8; PATH_LEN] {
    let mut out = [0u8; PATH_LEN];
    let n = path.len().min(PATH_LEN);
    out[..n].copy_from_slice(&path.as_bytes()[..n]);
    out
}

/// The text of a NUL-padded path.
pub fn path_str(path: &[u8; PATH_LEN]) -> String {
    let end = path.iter().position(|&b| b == 0).unwrap_or(PATH_LEN);
    String::from_utf8_lossy(&path[..end]).into_owned()
}

impl FileEvent {
    /// An event of `kind` on `path`.
    pub fn new(pid: u32, uid: u32, kind: u32, path: &str) -> FileEvent {
        FileEvent {
            pid,
            uid,
            kind,
            flags: 0,
            path: path_bytes(path),
        }
    }
}

/// What the host puts in the policy maps.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Denied path prefixes (bytes, not path components) and their rule ids.
    pub deny_prefixes: Vec<(String, u32)>,
    /// Executables and whether they are allowed (`exec_allow`'s value; 0 = not allowed).
    pub exec_allow: Vec<(String, u32)>,
    /// Uids the rules do not apply to.
    pub trusted_uids: Vec<u32>,
}

/// The example's policy.
pub fn example_policy() -> Policy {
    let s = |p: &str, v: u32| (p.to_string(), v);
    Policy {
        deny_prefixes: vec![
            s("/etc/shadow", 7),
            s("/root/", 9),
            s("/etc/ssh/", 3),
            s("/etc/ssh/ssh_host_", 4),
            s("/proc/kcore", 5),
        ],
        exec_allow: vec![
            s("/usr/bin/ls", 1),
            s("/usr/bin/cat", 1),
            s("/bin/sh", 1),
            s("/usr/bin/nc", 0), // listed, but switched off
        ],
        trusted_uids: vec![0],
    }
}

/// The example's events: ordinary work, attacks, and the edge cases of byte prefixes.
pub fn example_events() -> Vec<FileEvent> {
    let (open, exec) = (KIND_OPEN, KIND_EXEC);
    vec![
        FileEvent::new(100, 1000, open, "/etc/passwd"),
        FileEvent::new(101, 1000, open, "/etc/shadow"),
        FileEvent::new(101, 1000, open, "/etc/shadow-"),
        FileEvent::new(101, 1000, open, "/etc/shado"),
        FileEvent::new(1, 0, open, "/etc/shadow"),
        FileEvent::new(102, 1000, exec, "/usr/bin/ls"),
        FileEvent::new(102, 1000, exec, "/usr/bin/curl"),
        FileEvent::new(102, 1000, exec, "/usr/bin/nc"),
        FileEvent::new(102, 1000, exec, "/usr/bin/ls2"),
        FileEvent::new(103, 1000, exec, "/root/tool"),
        FileEvent::new(103, 1000, open, "/root"),
        FileEvent::new(104, 1001, open, "/etc/ssh/sshd_config"),
        FileEvent::new(104, 1001, open, "/etc/ssh/ssh_host_ed25519_key"),
        FileEvent::new(1, 0, exec, "/usr/bin/curl"),
        FileEvent::new(105, 33, open, "/proc/kcore"),
        FileEvent::new(105, 33, exec, "/bin/sh"),
        // 64 bytes without a NUL.
        FileEvent::new(106, 1000, open, &format!("/root/{}", "a".repeat(58))),
    ]
}

/// What a run produced.
#[derive(Debug)]
pub struct Report {
    /// `check_event`'s return for each event: 0 allow, 1 deny.
    pub verdicts: Vec<u64>,
    /// The alerts drained from `alerts`, in order.
    pub alerts: Vec<Alert>,
    /// `counters` summed over the CPU slots: allowed, denied, alert drops, unused.
    pub counters: [u64; 4],
}

/// Fills `object`'s policy maps from `policy` through the typed handles.
pub fn install(object: &Object, policy: &Policy) -> Result<(), bpfvm::Error> {
    let deny: LpmTrie<[u8; PATH_LEN], u32> = LpmTrie::new(object.map("deny_prefixes")?)?;
    for (prefix, rule) in &policy.deny_prefixes {
        let bits = 8 * prefix.len().min(PATH_LEN) as u32;
        deny.insert(&Key::new(bits, path_bytes(prefix)), rule, UPDATE_ANY)?;
    }
    let allow: HashMap<[u8; PATH_LEN], u32> = HashMap::new(object.map("exec_allow")?)?;
    for (path, allowed) in &policy.exec_allow {
        allow.insert(&path_bytes(path), allowed, UPDATE_ANY)?;
    }
    let trusted: HashMap<u32, u8> = HashMap::new(object.map("trusted_uids")?)?;
    for uid in &policy.trusted_uids {
        trusted.insert(uid, &1, UPDATE_ANY)?;
    }
    Ok(())
}

/// Loads the object, installs `policy`, fires `file_event` with each event on this
/// thread, then drains the alerts and reads the counters.
pub fn run(
    object_path: &str,
    policy: &Policy,
    events: &[FileEvent],
) -> Result<Report, bpfvm::Error> {
    let object = Object::load_file(object_path)?;
    install(&object, policy)?;
    let hook = Hook::new("file_event");
    hook.attach(&object.program("check_event")?);
    let alerts = RingBuf::new(object.map("alerts")?)?;

    let mut verdicts = Vec::with_capacity(events.len());
    for ev in events {
        let mut ev = *ev;
        let mut ctx = Context::Struct {
            bytes: bytemuck::bytes_of_mut(&mut ev),
            writable: false,
        };
        // One program attached: one return value.
        verdicts.extend(hook.fire(&mut ctx)?);
    }

    let alerts = alerts.drain::<Alert>()?;
    let per_cpu: PerCpuArray<u64> = PerCpuArray::new(object.map("counters")?)?;
    let mut counters = [0u64; 4];
    for (i, c) in counters.iter_mut().enumerate() {
        *c = per_cpu.get(i as u32)?.iter().sum();
    }
    Ok(Report {
        verdicts,
        alerts,
        counters,
    })
}

/// The object built by `bpf/build.sh`.
pub fn object_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/bpf/policy.o").to_string()
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        KIND_OPEN => "open",
        KIND_EXEC => "exec",
        _ => "?",
    }
}

fn rule_name(rule_id: u32) -> String {
    if rule_id == RULE_EXEC_NOT_ALLOWED {
        "exec-not-allowed".to_string()
    } else {
        format!("deny-prefix {rule_id}")
    }
}

#[allow(dead_code)] // the tests include this file as a module and call `run`
fn main() {
    let policy = example_policy();
    let events = example_events();
    let report = match run(&object_path(), &policy, &events) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("policy: {e}");
            std::process::exit(1);
        }
    };
    println!("policy:");
    for (prefix, rule) in &policy.deny_prefixes {
        println!("  deny prefix {prefix:<22} rule {rule}");
    }
    for (path, allowed) in &policy.exec_allow {
        let what = if *allowed != 0 {
            "allowed"
        } else {
            "listed, off"
        };
        println!("  exec        {path:<22} {what}");
    }
    for uid in &policy.trusted_uids {
        println!("  trusted uid {uid}");
    }
    println!("\nevents:");
    for (ev, verdict) in events.iter().zip(&report.verdicts) {
        let v = if *verdict == 0 { "allow" } else { "DENY " };
        println!(
            "  {v}  pid {:<4} uid {:<5} {} {}",
            ev.pid,
            ev.uid,
            kind_name(ev.kind),
            path_str(&ev.path)
        );
    }
    println!("\nalerts (ring buffer `alerts`, {}):", report.alerts.len());
    for a in &report.alerts {
        println!(
            "  pid {:<4} uid {:<5} {} {:<40} {}",
            a.pid,
            a.uid,
            kind_name(a.kind),
            path_str(&a.path),
            rule_name(a.rule_id)
        );
    }
    let [allowed, denied, drops, _] = report.counters;
    println!(
        "\ncounters (summed over CPUs): allowed {allowed}, denied {denied}, alert drops {drops}"
    );
}
