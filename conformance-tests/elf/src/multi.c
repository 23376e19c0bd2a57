// SPDX-License-Identifier: GPL-2.0
/* Many programs in one object, one per libbpf section-name convention, plus
 * a section name libbpf does not know, the "license" section and the legacy
 * "version" section. Every program bumps its own slot of one shared array,
 * so each program section has a map relocation.
 *
 * Only arch-neutral code: no PT_REGS_* macros (they need __TARGET_ARCH_*),
 * BPF_PROG for the BTF-typed program kinds (fentry, lsm).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct file;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int multi_xdp(struct xdp_md *ctx)
{
	hit(0);
	return XDP_PASS;
}

SEC("tc")
int multi_tc(struct __sk_buff *skb)
{
	hit(1);
	return 0; /* TC_ACT_OK */
}

SEC("classifier")
int multi_classifier(struct __sk_buff *skb)
{
	hit(2);
	return 0; /* TC_ACT_OK */
}

SEC("socket")
int multi_socket(struct __sk_buff *skb)
{
	hit(3);
	return skb->len;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int multi_tracepoint(void *ctx)
{
	hit(4);
	return 0;
}

SEC("kprobe/do_sys_openat2")
int multi_kprobe(struct pt_regs *ctx)
{
	hit(5);
	return 0;
}

SEC("kretprobe/do_sys_openat2")
int multi_kretprobe(struct pt_regs *ctx)
{
	hit(6);
	return 0;
}

SEC("uprobe")
int multi_uprobe(struct pt_regs *ctx)
{
	hit(7);
	return 0;
}

SEC("uprobe//proc/self/exe:main")
int multi_uprobe_main(struct pt_regs *ctx)
{
	hit(8);
	return 0;
}

SEC("raw_tp/sys_enter")
int multi_raw_tp(void *ctx)
{
	hit(9);
	return 0;
}

SEC("fentry/do_sys_openat2")
int BPF_PROG(multi_fentry, int dfd, const char *filename)
{
	hit(10);
	return 0;
}

SEC("perf_event")
int multi_perf_event(void *ctx)
{
	hit(11);
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(multi_lsm, struct file *file)
{
	hit(12);
	return 0; /* allow */
}

/* not a libbpf convention: libbpf cannot guess the type, the user sets it
 * (the kernel check loads it as a socket filter) */
SEC("my_custom_section")
int multi_custom(void *ctx)
{
	hit(13);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
__u32 _version SEC("version") = 1;
