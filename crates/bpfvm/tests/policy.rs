//! The security-policy example (`examples/policy.rs` over `examples/bpf/policy.o`): every
//! verdict, alert and counter against an independent Rust implementation of the rules in
//! `examples/bpf/README.md` (section `policy.o`), and the verdicts and counters against
//! the kernel running the same object (`BPF_PROG_TEST_RUN` with the event as `ctx_in`;
//! the kernel's ring buffer is not read back — that needs its mmap — but its drop counter
//! is compared).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/policy.rs"]
mod policy;

use policy::{Alert, FileEvent, KIND_EXEC, Policy, RULE_EXEC_NOT_ALLOWED};

/// The README's rules, from the policy as the host wrote it: `None` = allow, `Some(rule)`
/// = deny with that rule id.
fn decide(p: &Policy, ev: &FileEvent) -> Option<u32> {
    if p.trusted_uids.contains(&ev.uid) {
        return None;
    }
    // Byte prefixes of the 64 path bytes; the longest stored one wins.
    let longest = p
        .deny_prefixes
        .iter()
        .filter(|(prefix, _)| ev.path.starts_with(prefix.as_bytes()))
        .max_by_key(|(prefix, _)| prefix.len());
    if let Some((_, rule)) = longest {
        return Some(*rule);
    }
    if ev.kind == KIND_EXEC {
        let allowed = p
            .exec_allow
            .iter()
            .any(|(path, v)| policy::path_bytes(path) == ev.path && *v != 0);
        if !allowed {
            return Some(RULE_EXEC_NOT_ALLOWED);
        }
    }
    None
}

fn expected_alert(ev: &FileEvent, rule_id: u32) -> Alert {
    Alert {
        pid: ev.pid,
        uid: ev.uid,
        kind: ev.kind,
        rule_id,
        path: ev.path,
    }
}

#[test]
fn verdicts_alerts_and_counters_follow_the_documented_rules() {
    let p = policy::example_policy();
    let events = policy::example_events();
    let report = policy::run(&policy::object_path(), &p, &events).expect("runs");

    let decisions: Vec<Option<u32>> = events.iter().map(|e| decide(&p, e)).collect();
    let verdicts: Vec<u64> = decisions.iter().map(|d| u64::from(d.is_some())).collect();
    assert_eq!(report.verdicts, verdicts);
    let alerts: Vec<Alert> = events
        .iter()
        .zip(&decisions)
        .filter_map(|(e, d)| d.map(|rule| expected_alert(e, rule)))
        .collect();
    assert_eq!(report.alerts, alerts);
    let denied = alerts.len() as u64;
    assert_eq!(
        report.counters,
        [events.len() as u64 - denied, denied, 0, 0]
    );

    // The model is not vacuous: the edge cases decide as the README says.
    let by_path = |path: &str| {
        let i = events
            .iter()
            .position(|e| e.uid != 0 && policy::path_str(&e.path) == path)
            .expect(path);
        decisions[i]
    };
    assert_eq!(by_path("/etc/shadow"), Some(7));
    assert_eq!(by_path("/etc/shadow-"), Some(7)); // bytes, not path components
    assert_eq!(by_path("/etc/shado"), None);
    assert_eq!(by_path("/etc/ssh/ssh_host_ed25519_key"), Some(4)); // longest prefix
    assert_eq!(by_path("/etc/ssh/sshd_config"), Some(3));
    assert_eq!(by_path("/usr/bin/nc"), Some(RULE_EXEC_NOT_ALLOWED)); // stored with 0
    assert_eq!(by_path("/usr/bin/ls"), None);
    assert_eq!(by_path("/root"), None);
    assert_eq!(by_path("/root/tool"), Some(9)); // a prefix denies execs too
    assert_eq!(events.iter().filter(|e| e.uid == 0).count(), 2);
    assert!(
        events
            .iter()
            .zip(&report.verdicts)
            .all(|(e, v)| e.uid != 0 || *v == 0)
    );
    // A full 64-byte path, no NUL.
    assert!(events.iter().any(|e| !e.path.contains(&0)));
}

/// Denials without draining: the 16384-byte ring holds floor(16383 / 88) = 186 alerts of
/// 80 bytes (each record is 8 bytes of header + 80, and the producer may not run
/// `size` or more bytes ahead of the consumer); the rest are counted as drops, and
/// every event is still denied.
#[test]
fn a_full_ring_drops_alerts_but_still_denies() {
    let p = policy::example_policy();
    let events: Vec<FileEvent> = (0..200)
        .map(|i| FileEvent::new(i, 1000, 0, &format!("/root/{i}")))
        .collect();
    let report = policy::run(&policy::object_path(), &p, &events).expect("runs");
    assert_eq!(report.verdicts, vec![1; 200]);
    assert_eq!(report.alerts.len(), 186);
    for (i, a) in report.alerts.iter().enumerate() {
        assert_eq!(*a, expected_alert(&events[i], 9));
    }
    assert_eq!(report.counters, [0, 200, 200 - 186, 0]);
}

/// An empty policy allows every open and denies every exec.
#[test]
fn an_empty_policy_denies_only_execs() {
    let p = Policy {
        deny_prefixes: Vec::new(),
        exec_allow: Vec::new(),
        trusted_uids: Vec::new(),
    };
    let events = policy::example_events();
    let report = policy::run(&policy::object_path(), &p, &events).expect("runs");
    let want: Vec<u64> = events
        .iter()
        .map(|e| u64::from(e.kind == KIND_EXEC))
        .collect();
    assert_eq!(report.verdicts, want);
    // One alert per exec, in order (an empty list would have passed an `all` check).
    let alerts: Vec<Alert> = events
        .iter()
        .filter(|e| e.kind == KIND_EXEC)
        .map(|e| expected_alert(e, RULE_EXEC_NOT_ALLOWED))
        .collect();
    assert_eq!(alerts.len(), 7);
    assert_eq!(report.alerts, alerts);
    assert_eq!(report.counters, [events.len() as u64 - 7, 7, 0, 0]);
}

#[cfg(target_os = "linux")]
mod kernel {
    use super::*;
    use bpfvm_kernel::{Bpf, KernelLoadOptions, TestRun, kernel_available_for_test};

    #[test]
    fn the_kernel_gives_the_same_verdicts_and_counters() {
        if !kernel_available_for_test("the_kernel_gives_the_same_verdicts_and_counters") {
            return;
        }
        let p = policy::example_policy();
        // The example's events, then enough denials to fill the ring (nobody drains it):
        // its 10 alerts take 880 bytes, so 176 more fit ((16383 - 880) / 88) and 24 drop.
        let mut events = policy::example_events();
        events.extend((0..200).map(|i| FileEvent::new(i, 1000, 0, &format!("/root/{i}"))));
        let ours = policy::run(&policy::object_path(), &p, &events).expect("runs");
        assert_eq!(ours.counters[2], 24);

        let bytes = std::fs::read(policy::object_path()).expect("policy.o");
        let opts = bpfvm_object::LoadOptions {
            name: "policy".into(),
            ..bpfvm_object::LoadOptions::default()
        };
        let obj = bpfvm_object::load(&bytes, &opts).expect("parses");
        let k = Bpf::new()
            .load_object(&obj, None, &KernelLoadOptions::default())
            .unwrap_or_else(|e| panic!("policy.o: {e}\n{}", e.log().unwrap_or_default()));
        let map = |name: &str| k.map(&obj, name).expect(name);
        for (prefix, rule) in &p.deny_prefixes {
            let mut key = (8 * prefix.len() as u32).to_ne_bytes().to_vec();
            key.extend_from_slice(&policy::path_bytes(prefix));
            map("deny_prefixes")
                .update(&key, &rule.to_ne_bytes(), 0)
                .expect("deny_prefixes");
        }
        for (path, v) in &p.exec_allow {
            map("exec_allow")
                .update(&policy::path_bytes(path), &v.to_ne_bytes(), 0)
                .expect("exec_allow");
        }
        for uid in &p.trusted_uids {
            map("trusted_uids")
                .update(&uid.to_ne_bytes(), &[1], 0)
                .expect("trusted_uids");
        }
        let prog = k.program("check_event").expect("check_event");
        let mut verdicts = Vec::new();
        for ev in &events {
            let r = prog
                .test_run(&mut TestRun {
                    ctx_in: Some(bytemuck::bytes_of(ev)),
                    // `bpf_prog_test_run_raw_tp` refuses `repeat` (EINVAL): runs once.
                    ..TestRun::default()
                })
                .expect("test run");
            verdicts.push(u64::from(r.retval));
        }
        assert_eq!(verdicts, ours.verdicts);
        // Per-CPU values: one 8-byte slot per possible CPU; summed.
        let counters = map("counters");
        for i in 0..4u32 {
            let v = counters
                .lookup(&i.to_ne_bytes())
                .expect("lookup")
                .expect("array element");
            let sum: u64 = v
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
                .sum();
            assert_eq!(sum, ours.counters[i as usize], "counters[{i}]");
        }
    }
}
