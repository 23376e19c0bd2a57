// SPDX-License-Identifier: GPL-2.0
/*
 * policy: a file-access policy in the style of Falco and Tetragon, over events
 * the host defines. check_event runs on every open and exec the host reports
 * and returns 0 to allow it or 1 to deny it; each denial is also reported on
 * the alerts ring buffer.
 *
 * Rules, in order:
 *   1. a uid in trusted_uids is allowed;
 *   2. a path with a prefix in deny_prefixes is denied (rule_id = the value
 *      stored with the longest matching prefix), whatever the kind;
 *   3. an exec (kind 1) of a path not in exec_allow (or stored with 0) is
 *      denied with rule_id RULE_EXEC_NOT_ALLOWED;
 *   4. anything else is allowed.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PATH_LEN 64
#define KIND_OPEN 0
#define KIND_EXEC 1
#define RULE_EXEC_NOT_ALLOWED 0xffffffffu

enum counter_index {
	COUNT_ALLOWED = 0,
	COUNT_DENIED = 1,
	COUNT_ALERT_DROPS = 2,
};

/* The context: a plain pointer to the host's struct. */
struct file_event {
	__u32 pid;
	__u32 uid;
	__u32 kind; /* 0 open, 1 exec */
	__u32 flags;
	char path[PATH_LEN]; /* NUL-padded */
};

/* An LPM trie key: prefixlen in bits (8 * the prefix's length in bytes). */
struct path_key {
	__u32 prefixlen;
	char path[PATH_LEN];
};

struct alert {
	__u32 pid;
	__u32 uid;
	__u32 kind;
	__u32 rule_id;
	char path[PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct path_key);
	__type(value, __u32); /* rule_id */
	__uint(max_entries, 64);
} deny_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, char[PATH_LEN]); /* NUL-padded path */
	__type(value, __u32);        /* 1 = allowed */
	__uint(max_entries, 64);
} exec_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32); /* uid */
	__type(value, __u8);
	__uint(max_entries, 64);
} trusted_uids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16384);
} alerts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} counters SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &index);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("raw_tp/file_event")
int check_event(struct file_event *ev)
{
	struct path_key key = { .prefixlen = 8 * PATH_LEN };
	__u32 uid = ev->uid, kind = ev->kind, rule_id;
	__u32 *rule, *allowed;
	struct alert *a;

	if (bpf_map_lookup_elem(&trusted_uids, &uid)) {
		count(COUNT_ALLOWED);
		return 0;
	}

	/* Map keys must live on the stack (or in a map value), not in ctx. */
	__builtin_memcpy(key.path, ev->path, PATH_LEN);

	rule = bpf_map_lookup_elem(&deny_prefixes, &key);
	if (rule) {
		rule_id = *rule;
	} else if (kind == KIND_EXEC) {
		allowed = bpf_map_lookup_elem(&exec_allow, key.path);
		if (allowed && *allowed) {
			count(COUNT_ALLOWED);
			return 0;
		}
		rule_id = RULE_EXEC_NOT_ALLOWED;
	} else {
		count(COUNT_ALLOWED);
		return 0;
	}

	count(COUNT_DENIED);
	a = bpf_ringbuf_reserve(&alerts, sizeof(*a), 0);
	if (!a) {
		count(COUNT_ALERT_DROPS);
		return 1;
	}
	a->pid = ev->pid;
	a->uid = uid;
	a->kind = kind;
	a->rule_id = rule_id;
	__builtin_memcpy(a->path, key.path, PATH_LEN);
	bpf_ringbuf_submit(a, 0);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
