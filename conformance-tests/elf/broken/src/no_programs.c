// SPDX-License-Identifier: GPL-2.0
/* Maps and data but not a single program: the loader must say so. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} lonely_map SEC(".maps");

__u64 lonely_counter = 1;

char LICENSE[] SEC("license") = "GPL";
