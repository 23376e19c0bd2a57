// SPDX-License-Identifier: GPL-2.0
/* Legacy map definitions: struct bpf_map_def objects in SEC("maps"), the
 * pre-BTF format (what iproute2 and libbpf < 1.0 read). Built WITHOUT -g, so
 * the object has no .BTF/.BTF.ext: the loader must size each map from the
 * symbol table (every symbol in "maps" is one 20-byte definition).
 *
 * libbpf 1.0+ refuses SEC("maps"), so the kernel check loads this object
 * with its own minimal loader (check-kernel.sh).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* defined locally: libbpf 1.x removed its copy */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

/* counters indexed by packet length / 64 (0..15) */
struct bpf_map_def SEC("maps") len_hist = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 16,
};

/* first byte of the packet -> times seen */
struct bpf_map_def SEC("maps") first_byte = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 256,
	.map_flags = BPF_F_NO_PREALLOC,
};

/* per-CPU scratch, unused by the socket filter */
struct bpf_map_def SEC("maps") scratch = {
	.type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = 16,
	.max_entries = 1,
};

static __always_inline void count_len(__u32 len)
{
	__u32 bucket = len >> 6;
	__u64 *v;

	if (bucket > 15)
		bucket = 15;
	v = bpf_map_lookup_elem(&len_hist, &bucket);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* returns the packet length as the socket filter's verdict (keep all bytes) */
SEC("socket")
int sock_len_hist(struct __sk_buff *skb)
{
	count_len(skb->len);
	return skb->len;
}

SEC("xdp")
int xdp_first_byte(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 one = 1, *v;
	__u32 key, zero = 0;
	__u8 *s;

	if (data + 1 > data_end)
		return XDP_ABORTED;
	count_len(data_end - data);
	key = *(__u8 *)data;
	v = bpf_map_lookup_elem(&first_byte, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&first_byte, &key, &one, BPF_NOEXIST);
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (s)
		s[0] = key;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
