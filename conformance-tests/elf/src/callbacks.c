// SPDX-License-Identifier: GPL-2.0
/* Helpers that take a callback: bpf_loop and bpf_for_each_map_elem. The
 * callbacks are static functions in .text; taking their address compiles to
 * an lddw whose relocation names .text (libbpf turns it into src_reg=4,
 * BPF_PSEUDO_FUNC, with the callback's instruction offset).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} values SEC(".maps");

struct loop_ctx {
	__u64 sum;
	__u32 limit;
};

/* bpf_loop callback: sum of squares below ctx->limit, stop at the limit */
static long square_cb(__u32 index, void *data)
{
	struct loop_ctx *c = data;

	if (index >= c->limit)
		return 1; /* stop */
	c->sum += (__u64)index * index;
	return 0; /* continue */
}

struct elem_ctx {
	__u64 sum;
	__u32 visited;
	__u32 stop_at;
};

/* bpf_for_each_map_elem callback: sums values, stops after key stop_at */
static long sum_elem_cb(void *map, __u32 *key, __u64 *value, void *data)
{
	struct elem_ctx *c = data;

	c->sum += *value * (*key + 1);
	c->visited++;
	return *key >= c->stop_at ? 1 : 0;
}

/* returns (number of bpf_loop iterations << 16) | sum of squares */
SEC("xdp")
int xdp_loop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct loop_ctx c = { .sum = 0 };
	long n;

	if (data + 1 > data_end)
		return XDP_ABORTED;
	c.limit = *(__u8 *)data & 31;           /* limit = first byte & 31 */
	n = bpf_loop(64, square_cb, &c, 0);
	return (__u32)(n << 16) | (__u32)(c.sum & 0xffff);
}

/* fills values[i] = first byte + i for i < 8, then sums values[k] * (k + 1)
 * up to key 5; returns (visited << 24) | (sum & 0xffffff) */
SEC("xdp")
int xdp_for_each(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct elem_ctx c = { .sum = 0, .visited = 0, .stop_at = 5 };
	__u64 base, v;
	__u32 i;
	long n;

	if (data + 1 > data_end)
		return XDP_ABORTED;
	base = *(__u8 *)data;
	/* unrolled, with the key in its own variable: a loop counter whose
	 * address goes to a helper is spilled, the verifier loses its value
	 * and would reject the rolled loop as infinite */
#pragma unroll
	for (i = 0; i < 8; i++) {
		__u32 key = i;

		v = base + i;
		bpf_map_update_elem(&values, &key, &v, BPF_ANY);
	}
	n = bpf_for_each_map_elem(&values, sum_elem_cb, &c, 0);
	if (n != c.visited)
		return XDP_ABORTED;
	return (c.visited << 24) | (__u32)(c.sum & 0xffffff);
}

char LICENSE[] SEC("license") = "GPL";
