// SPDX-License-Identifier: GPL-2.0
/* Small programs with deterministic results under BPF_PROG_TEST_RUN, touching
 * maps and global variables; README.md lists the packets and the results the
 * kernel gave.
 *
 *   xdp_filter   parses Ethernet + IPv4, counts packets and bytes per IP
 *                protocol in a hash map, drops UDP to cfg_blocked_port and
 *                packets with TTL <= 1, passes everything else
 *   sock_snap    socket filter: keeps UDP packets, truncated to cfg_snaplen
 *                bytes (returns the length to keep), drops the rest (0)
 *   tc_ttl       tc classifier: decrements the IPv4 TTL (one byte), fixes the
 *                header checksum, returns TC_ACT_OK
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct proto_stats {
	__u64 packets;
	__u64 bytes;
};

/* IPv4 protocol number -> packets and bytes seen */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct proto_stats);
} proto_count SEC(".maps");

/* per-program run counters: 0 xdp_filter, 1 sock_snap, 2 tc_ttl */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} runs SEC(".maps");

const volatile __u16 cfg_blocked_port = 9;  /* .rodata */
const volatile __u32 cfg_snaplen = 24;      /* .rodata */
__u32 xdp_dropped;                          /* .bss */
__u32 xdp_passed;                           /* .bss */
__u32 last_ttl = 0xffffffff;                /* .data */

static __always_inline void count_run(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&runs, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	struct proto_stats *st, init = {};
	__u32 proto;

	count_run(0);
	if ((void *)(eth + 1) > data_end)
		goto drop;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		goto pass;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		goto drop;

	proto = ip->protocol;
	st = bpf_map_lookup_elem(&proto_count, &proto);
	if (!st) {
		bpf_map_update_elem(&proto_count, &proto, &init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&proto_count, &proto);
		if (!st)
			goto drop;
	}
	__sync_fetch_and_add(&st->packets, 1);
	__sync_fetch_and_add(&st->bytes, bpf_ntohs(ip->tot_len));

	last_ttl = ip->ttl;
	if (ip->ttl <= 1)
		goto drop;
	if (ip->protocol == IPPROTO_UDP) {
		udp = (void *)ip + ip->ihl * 4;
		if ((void *)(udp + 1) > data_end)
			goto drop;
		if (udp->dest == bpf_htons(cfg_blocked_port))
			goto drop;
	}
pass:
	xdp_passed++;
	return XDP_PASS;
drop:
	xdp_dropped++;
	return XDP_DROP;
}

/* under BPF_PROG_TEST_RUN a socket filter's skb starts at the IPv4 header:
 * the kernel consumed the 14-byte Ethernet header (skb->protocol has it) */
SEC("socket")
int sock_snap(struct __sk_buff *skb)
{
	__u8 proto;

	count_run(1);
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, offsetof(struct iphdr, protocol), &proto, 1))
		return 0;
	if (proto != IPPROTO_UDP)
		return 0;
	return skb->len < cfg_snaplen ? skb->len : cfg_snaplen;
}

#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))

SEC("tc")
int tc_ttl(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u16 old_word, new_word;
	__u8 ttl;

	count_run(2);
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ttl == 0)
		return TC_ACT_OK;
	/* the TTL shares a 16-bit checksum word with the protocol */
	old_word = *(__u16 *)&ip->ttl;
	ttl = ip->ttl - 1;
	ip->ttl = ttl;                         /* the byte rewrite: direct packet write */
	new_word = *(__u16 *)&ip->ttl;
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_word, new_word, sizeof(__u16));
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
