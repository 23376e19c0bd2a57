// SPDX-License-Identifier: GPL-2.0
/* BTF-defined maps in SEC(".maps"): every way libbpf lets a map definition
 * be written, and an XDP program that touches most of them.
 *
 * Covered: hash, array, percpu_array, lru_hash, ringbuf, prog_array (with a
 * static initializer naming a program), array_of_maps (with a static
 * initializer naming two inner maps), hash_of_maps (no initializer), both
 * inner-map templates declared through __array(values, struct inner),
 * pinning = LIBBPF_PIN_BY_NAME, map_flags = BPF_F_NO_PREALLOC, key/value
 * given as __type(key, T)/__type(value, T) and as __uint(key_size, N)/
 * __uint(value_size, N).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow_key {
	__u32 ifindex;
	__u16 len_bucket;
	__u8 first_byte;
	__u8 pad;
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
};

struct event {
	__u32 len;
	__u32 first_word;
};

/* hash, key and value given by type */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
} flows SEC(".maps");

/* array, key and value given by size only (no BTF key/value types) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__uint(key_size, 4);
	__uint(value_size, 8);
} sized_array SEC(".maps");

/* per-CPU array */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} percpu_hits SEC(".maps");

/* LRU hash */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} lru_seen SEC(".maps");

/* hash map created without preallocation */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u32);
} no_prealloc SEC(".maps");

/* pinned by name: libbpf pins it at <pin root>/pinned_counter (default root /sys/fs/bpf) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_counter SEC(".maps");

/* ring buffer: no key, no value, max_entries is the size in bytes */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

/* the inner-map template shared by both maps of maps */
struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner_a SEC(".maps");
struct inner inner_b SEC(".maps");

/* array of maps, slot 0 -> inner_a, slot 1 -> inner_b (relocations in .rel.maps) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer_array SEC(".maps") = {
	.values = { &inner_a, &inner_b },
};

/* hash of maps, same inner template, empty at load */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps");

int xdp_tail(struct xdp_md *ctx);

/* program array, key/value by size, slot 1 -> xdp_tail (relocation in .rel.maps) */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (struct xdp_md *));
} jump_table SEC(".maps") = {
	.values = { [1] = (void *)&xdp_tail },
};

SEC("xdp")
int xdp_tail(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int xdp_maps(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = data_end - data;
	__u32 zero = 0, one = 1, slot;
	struct flow_key key = {};
	struct flow_stats *fs, init = {};
	__u64 *v, seen = 1;
	__u32 *inner_v;
	void *inner;
	struct event *ev;

	if (data + 4 > data_end)
		return XDP_ABORTED;

	key.ifindex = ctx->ingress_ifindex;
	key.len_bucket = len >> 6;
	key.first_byte = *(__u8 *)data;
	fs = bpf_map_lookup_elem(&flows, &key);
	if (!fs) {
		bpf_map_update_elem(&flows, &key, &init, BPF_NOEXIST);
		fs = bpf_map_lookup_elem(&flows, &key);
		if (!fs)
			return XDP_ABORTED;
	}
	__sync_fetch_and_add(&fs->packets, 1);
	__sync_fetch_and_add(&fs->bytes, len);

	slot = key.first_byte & 15;
	v = bpf_map_lookup_elem(&sized_array, &slot);
	if (v)
		*v += len;

	v = bpf_map_lookup_elem(&percpu_hits, &zero);
	if (v)
		*v += 1;

	v = bpf_map_lookup_elem(&lru_seen, &key.ifindex);
	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&lru_seen, &key.ifindex, &seen, BPF_ANY);

	bpf_map_update_elem(&no_prealloc, &len, &one, BPF_ANY);

	v = bpf_map_lookup_elem(&pinned_counter, &zero);
	if (v)
		__sync_fetch_and_add(v, 1);

	inner = bpf_map_lookup_elem(&outer_array, &one);
	if (inner) {
		inner_v = bpf_map_lookup_elem(inner, &zero);
		if (inner_v)
			*inner_v += 1;
	}
	inner = bpf_map_lookup_elem(&outer_hash, &zero);
	if (inner) {
		inner_v = bpf_map_lookup_elem(inner, &zero);
		if (inner_v)
			*inner_v += 1;
	}

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (ev) {
		ev->len = len;
		ev->first_word = *(__u32 *)data;
		bpf_ringbuf_submit(ev, 0);
	}

	/* first byte 0xa5: jump to slot 1 (xdp_tail, returns XDP_TX) */
	if (key.first_byte == 0xa5)
		bpf_tail_call(ctx, &jump_table, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
