// SPDX-License-Identifier: GPL-2.0
/* Global variables in every section libbpf turns into an internal map:
 *   .data            initialized globals (read-write)
 *   .rodata          const volatile config values and a static const table
 *   .rodata.cst16    a 16-byte static const table (clang's mergeable constants)
 *   .bss             zero-initialized globals
 *   .data.custom     a custom writable data section
 *   .rodata.custom   a custom read-only data section
 *   .rodata.str1.1   string literals indexed at run time
 * The XDP program folds them and two bytes of the packet into a 32-bit value,
 * stores it in .bss (last_result) and returns it; see README.md for the values.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* .data */
__u32 data_seed = 42;
__u16 data_weights[4] = { 1, 10, 100, 1000 };

/* .rodata: const volatile so the compiler keeps the loads (a loader may patch them) */
const volatile __u32 cfg_multiplier = 3;
const volatile __u8 cfg_enabled = 1;
/* .rodata: a static const table indexed with a packet byte, so it stays in memory
 * (10 bytes: a table of 4, 8, 16 or 32 bytes would go to .rodata.cst<N> instead) */
static const __u8 primes[10] = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29 };
/* .rodata.cst16: clang puts a 16-byte constant table in a mergeable-constant section */
static const __u8 nibble_popcount[16] = { 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4 };

/* .bss */
__u32 run_count;
__u32 last_result;
__u64 bss_scratch[2];

/* custom sections */
__u32 custom_data SEC(".data.custom") = 7;
const volatile __u32 custom_rodata SEC(".rodata.custom") = 9;

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* string literals: end up in .rodata.str1.1 */
	const char *hex = "0123456789abcdef";
	const char *magic = "bpfvm";
	__u8 *p = data;
	__u32 acc, i, matched = 0;

	if (data + 8 > data_end)
		return XDP_ABORTED;
	if (!cfg_enabled)
		return XDP_PASS;

	acc = data_seed;                              /* 42 */
	acc += cfg_multiplier * primes[p[0] & 7];     /* 3 * primes[p0 & 7] */
	acc += data_weights[p[1] & 3];                /* weights[p1 & 3] */
	acc += custom_data * custom_rodata;           /* 63 */
	acc += hex[p[0] >> 4] << 8;                   /* ASCII of the high hex digit of p0, << 8 */
	acc += nibble_popcount[p[1] & 15] << 24;      /* popcount of the low nibble of p1, << 24 */

	/* compare packet bytes 2..6 with "bpfvm", one byte at a time, not unrolled */
#pragma clang loop unroll(disable)
	for (i = 0; i < 5; i++) {
		if (p[2 + i] != magic[i])
			break;
		matched++;
	}
	acc += matched << 16;                         /* how many of "bpfvm" matched */

	run_count++;
	bss_scratch[run_count & 1] = acc;
	custom_data++;                                /* the next run sees 8 * 9 */
	last_result = acc;
	return acc;
}

char LICENSE[] SEC("license") = "GPL";
