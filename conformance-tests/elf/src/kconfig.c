// SPDX-License-Identifier: GPL-2.0
/* Externs resolved by the loader, not by the linker, and a weak function:
 *   .kconfig  LINUX_KERNEL_VERSION (libbpf fills it from the running kernel),
 *             CONFIG_BPF_JIT (weak: false when the config has no value),
 *             CONFIG_BPFVM_NO_SUCH_OPTION (weak, never set: 0)
 *   .ksyms    schedule: a typeless ksym, resolved from /proc/kallsyms to an
 *             address loaded by ld_imm64;
 *             bpfvm_no_such_ksym: typeless and weak, resolves to 0;
 *             bpf_rcu_read_lock / bpf_rcu_read_unlock: kfuncs (function
 *             ksyms): "call -1" with a relocation against an undefined
 *             symbol, which libbpf turns into src_reg=BPF_PSEUDO_KFUNC_CALL
 *             and the function's vmlinux BTF id
 *   weak_scale: a __weak global function (STB_WEAK FUNC in .text)
 *
 * A typed variable ksym (extern const int bpf_prog_active __ksym, read with
 * bpf_this_cpu_ptr) and a typeless data ksym (init_task) are left out: the
 * kernel finds both through kallsyms, which lists data symbols only with
 * CONFIG_KALLSYMS_ALL, and the Linux 6.18 kernel the fixtures were checked on
 * does not have it (the verifier said "ldimm64 failed to find the address
 * for kernel symbol 'bpf_prog_active'").
 */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

extern int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_JIT __kconfig __weak;
extern int CONFIG_BPFVM_NO_SUCH_OPTION __kconfig __weak;

extern const void schedule __ksym;
extern const void bpfvm_no_such_ksym __ksym __weak;
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

__u32 last_version;
__u32 last_flags;

/* a weak global function: another object linked in could replace it */
__weak __noinline int weak_scale(int x)
{
	return x * 2 + 1;
}

/* keeps what it saw in .bss (the version, one bit per extern) and returns
 * the bits: 1 CONFIG_BPF_JIT, 2 CONFIG_BPFVM_NO_SUCH_OPTION == 0,
 * 4 &schedule != 0, 8 &bpfvm_no_such_ksym == 0, 16 version >= 5.0 */
SEC("xdp")
int xdp_kconfig(struct xdp_md *ctx)
{
	unsigned long sched = (unsigned long)&schedule;
	unsigned long missing = (unsigned long)&bpfvm_no_such_ksym;
	__u32 flags = 0;

	/* the compiler may assume a non-weak extern's address is not 0 */
	barrier_var(sched);
	bpf_rcu_read_lock();
	if (CONFIG_BPF_JIT)
		flags |= 1;
	if (CONFIG_BPFVM_NO_SUCH_OPTION == 0)
		flags |= 2;
	if (sched != 0)
		flags |= 4;
	if (missing == 0)
		flags |= 8;
	if (LINUX_KERNEL_VERSION >= (5 << 16))
		flags |= 16;
	bpf_rcu_read_unlock();
	last_version = LINUX_KERNEL_VERSION;
	last_flags = flags;
	return flags;
}

/* returns weak_scale(skb->len): 2 * len + 1 */
SEC("socket")
int sock_weak(struct __sk_buff *skb)
{
	return weak_scale(skb->len);
}

char LICENSE[] SEC("license") = "GPL";
