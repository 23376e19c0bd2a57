// SPDX-License-Identifier: GPL-2.0
/* A dispatcher that holds no global data tail-calls handlers that do: the
 * handlers' .bss and .data are the object's, but the dispatcher never names
 * them, so a runtime that gives a run only its first program's global data
 * faults in the handler. The kernel (and bpfvm since f422fd8) runs it:
 *   xdp_dispatch  no globals; tail-calls slot 0 (xdp_count) for every packet
 *   xdp_count     adds the packet's length to .bss total, counts the run in
 *                 .bss seen, reads a .data step and, while seen < .data limit,
 *                 tail-calls itself (slot 0) again; returns seen << 16 | total
 * On a fresh object every packet makes four entries of xdp_count: one from the
 * dispatcher and three self tail calls (seen 1, 2, 3 < limit); the fourth stops.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u32 total;
__u32 seen;
__u32 step = 1;
__u32 limit = 4;

int xdp_count(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__array(values, int (struct xdp_md *));
} handlers SEC(".maps") = {
	.values = { [0] = (void *)&xdp_count },
};

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;

	total += len;
	seen += step;
	if (seen < limit)
		bpf_tail_call(ctx, &handlers, 0);
	return (seen << 16) | (total & 0xffff);
}

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &handlers, 0);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
