// SPDX-License-Identifier: GPL-2.0
/*
 * latency: a latency histogram in the style of bcc's biolatency, over events
 * the host defines. The host runs op_start when an operation begins and
 * op_end when it completes, each with a pointer to its struct op_event; the
 * microseconds in between land in a log2 histogram (hist).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SLOTS 27

/* The context of both programs: a plain pointer to the host's struct. */
struct op_event {
	__u64 id;   /* matches an op_end with its op_start */
	__u32 kind; /* free for the host; unused here */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);   /* op_event.id */
	__type(value, __u64); /* bpf_ktime_get_ns() at op_start */
	__uint(max_entries, 10240);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);   /* slot */
	__type(value, __u64); /* operations */
	__uint(max_entries, MAX_SLOTS);
} hist SEC(".maps");

/*
 * floor(log2(v)) for v > 0, and 0 for v = 0: the slot of bcc's
 * libbpf-tools/bits.bpf.h log2l. Binary search on the highest set bit.
 */
static __always_inline __u64 log2_u32(__u32 v)
{
	__u32 r = 0, s;

	s = (v > 0xffff) << 4;
	v >>= s;
	r |= s;
	s = (v > 0xff) << 3;
	v >>= s;
	r |= s;
	s = (v > 0xf) << 2;
	v >>= s;
	r |= s;
	s = (v > 0x3) << 1;
	v >>= s;
	r |= s;
	return r | (v >> 1);
}

static __always_inline __u64 log2_u64(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2_u32(hi) + 32 : log2_u32((__u32)v);
}

SEC("raw_tp/op_start")
int op_start(struct op_event *ev)
{
	__u64 id = ev->id;
	__u64 ts = bpf_ktime_get_ns();

	bpf_map_update_elem(&start, &id, &ts, BPF_ANY);
	return 0;
}

SEC("raw_tp/op_end")
int op_end(struct op_event *ev)
{
	__u64 id = ev->id;
	__u64 *tsp, *count;
	__s64 delta;
	__u32 slot;

	tsp = bpf_map_lookup_elem(&start, &id);
	if (!tsp)
		return 0; /* op_start missed, or the table was full */
	delta = (__s64)(bpf_ktime_get_ns() - *tsp);
	if (delta < 0)
		goto cleanup;
	slot = log2_u64((__u64)delta / 1000); /* microseconds */
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	count = bpf_map_lookup_elem(&hist, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
cleanup:
	bpf_map_delete_elem(&start, &id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
