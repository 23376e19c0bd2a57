// SPDX-License-Identifier: GPL-2.0
/* BPF-to-BPF calls: static __noinline functions, global (non-static
 * __noinline) functions, a call chain five functions deep below the program
 * (six frames with the program's own), and .text functions called from two
 * programs of different types (XDP and socket filter) in one object.
 *
 * Built three times: -mcpu=v2 (no ALU32/JMP32), -mcpu=v3 (ALU32 and JMP32)
 * and -mcpu=v4 (sign-extending loads and moves, bswap, signed division,
 * 32-bit-offset gotol); the results are the same on every build.
 *
 * Global functions are verified by the kernel on their own with unknown
 * arguments, so they take and return scalars only.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* depth 5: the leaf; signed arithmetic that -mcpu=v4 encodes differently */
static __noinline __u32 leaf(__u32 x)
{
	__s32 s = (__s8)x;         /* sign-extend the low byte: movsx on v4 */
#if __BPF_CPU_VERSION__ >= 4
	s = s / 3;                 /* sdiv: only v4 has signed division */
#else
	s = s < 0 ? -((__u32)-s / 3) : (__s32)((__u32)s / 3);
#endif
	return (__u32)s + 1000;
}

/* depth 4 (static) */
static __noinline __u32 level4(__u32 x)
{
	return leaf(x) * 3 + 1;
}

/* depth 3 (global) */
__noinline __u32 level3(__u32 x)
{
	return level4(x) ^ 0x55;
}

/* depth 2 (static) */
static __noinline __u32 level2(__u32 x, __u32 y)
{
	return level3(x) + y;
}

/* depth 1 (global): the entry point both programs call */
__noinline __u32 chain(__u32 x, __u32 y)
{
	return level2(x, y) << 1;
}

/* a global function with five arguments, called directly by both programs */
__noinline __u64 mix5(__u64 a, __u64 b, __u64 c, __u64 d, __u64 e)
{
	return a + 2 * b + 3 * c + 4 * d + 5 * e;
}

/* a static function that takes a byte-swapped 16-bit value (bswap on v4) */
static __noinline __u32 swap16(__u32 x)
{
	return bpf_ntohs((__u16)x);
}

SEC("xdp")
int xdp_calls(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	__u32 r;

	if (data + 4 > data_end)
		return XDP_ABORTED;
	r = chain(p[0], p[1]);
	r += swap16(*(__u16 *)(p + 2));
	r += mix5(p[0], p[1], p[2], p[3], 1);
	return r;
}

SEC("socket")
int sock_calls(struct __sk_buff *skb)
{
	__u32 r;

	r = chain(skb->len, 7);
	r += swap16(skb->len);
	r += mix5(skb->len, 1, 2, 3, 4);
	return r;
}

char LICENSE[] SEC("license") = "GPL";
