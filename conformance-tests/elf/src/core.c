// SPDX-License-Identifier: GPL-2.0
/* CO-RE (compile once, run everywhere): field, type and enum relocations
 * against kernel types defined here, partially, with preserve_access_index,
 * the way programs do without a full vmlinux.h. The loader resolves them
 * against the target's BTF (the kernel's for raw_tp, bpfvm's own context
 * types for struct xdp_md).
 *
 * <linux/bpf.h> is deliberately not included: it defines struct xdp_md, and
 * this file defines its own copy of it, as a CO-RE program would.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define XDP_ABORTED 0
#define XDP_DROP 1
#define XDP_PASS 2

/* a few fields of the kernel's task_struct, in an order and with offsets
 * that do not match the kernel's: every access is relocated */
struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	char comm[16];
	/* bitfields, each one bit wide in the kernel */
	unsigned int in_execve : 1;
	unsigned int in_iowait : 1;
	/* no such field in any kernel: bpf_core_field_exists() is 0 */
	unsigned long bpfvm_no_such_field;
} __attribute__((preserve_access_index));

/* a "flavor" (___suffix is ignored when matching): only two fields, with the
 * kernel's types, so bpf_core_type_matches() is true */
struct task_struct___pids {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

/* a flavor whose pid has the wrong type: bpf_core_type_matches() is false */
struct task_struct___wrong {
	char pid[3];
} __attribute__((preserve_access_index));

/* a type no kernel has: bpf_core_type_exists() is 0 */
struct bpfvm_no_such_type {
	int x;
} __attribute__((preserve_access_index));

/* the kernel's enum pid_type (PID 0, TGID 1, PGID 2, SID 3, MAX 4) plus a
 * value it does not have; the local values are deliberately off by 10, so the
 * enum-value relocations visibly patch 11 -> 1 and 13 -> 3 */
enum pid_type {
	PIDTYPE_PID = 10,
	PIDTYPE_TGID,
	PIDTYPE_PGID,
	PIDTYPE_SID,
	PIDTYPE_MAX,
	PIDTYPE_BPFVM_MISSING = 100,
};

/* the context of XDP programs, as <linux/bpf.h> has it; accesses through it
 * are CO-RE relocated against the target's struct xdp_md */
struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
} __attribute__((preserve_access_index));

/* a flavor of struct xdp_md with the fields in another order: the relocation
 * moves the load of rx_queue_index from offset 0 to 16 */
struct xdp_md___shuffled {
	__u32 rx_queue_index;
	__u32 data_end;
	__u32 data;
} __attribute__((preserve_access_index));

/* results of the last raw_tp run, for whoever reads .bss */
struct core_results {
	__u32 pid, tgid, parent_tgid;
	__u32 in_execve, in_iowait;
	__u32 has_real_parent, has_no_such_field;
	__u32 comm_size, pid_size;
	__u32 has_task_struct, has_no_such_type;
	__u32 task_struct_size;
	__u32 has_pidtype_tgid, has_pidtype_missing;
	__u32 pidtype_tgid, pidtype_sid;
	__u32 matches_pids, matches_wrong;
	__u32 no_such_field_value;
	char comm0;
} results;

SEC("raw_tp/sys_enter")
int core_task(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct core_results *r = &results;

	/* BPF_CORE_READ: relocated offsets, bpf_probe_read_kernel underneath */
	r->pid = BPF_CORE_READ(task, pid);
	r->tgid = BPF_CORE_READ(task, tgid);
	r->parent_tgid = BPF_CORE_READ(task, real_parent, tgid);
	r->comm0 = BPF_CORE_READ(task, comm[0]);

	/* bitfields: byte offset, byte size and shifts are all relocated */
	r->in_execve = BPF_CORE_READ_BITFIELD_PROBED(task, in_execve);
	r->in_iowait = BPF_CORE_READ_BITFIELD_PROBED(task, in_iowait);

	/* field existence and size */
	r->has_real_parent = bpf_core_field_exists(task->real_parent);
	r->has_no_such_field = bpf_core_field_exists(task->bpfvm_no_such_field);
	r->comm_size = bpf_core_field_size(task->comm);
	r->pid_size = bpf_core_field_size(task->pid);

	/* guarded read of a field that does not exist: libbpf poisons the read,
	 * the guard is a constant 0 after relocation, the kernel never sees it run */
	if (bpf_core_field_exists(task->bpfvm_no_such_field))
		r->no_such_field_value = BPF_CORE_READ(task, bpfvm_no_such_field);
	else
		r->no_such_field_value = 0xdead;

	/* type existence, size and matching */
	r->has_task_struct = bpf_core_type_exists(struct task_struct);
	r->has_no_such_type = bpf_core_type_exists(struct bpfvm_no_such_type);
	r->task_struct_size = bpf_core_type_size(struct task_struct);
	r->matches_pids = bpf_core_type_matches(struct task_struct___pids);
	r->matches_wrong = bpf_core_type_matches(struct task_struct___wrong);

	/* enum values */
	r->has_pidtype_tgid = bpf_core_enum_value_exists(enum pid_type, PIDTYPE_TGID);
	r->has_pidtype_missing = bpf_core_enum_value_exists(enum pid_type, PIDTYPE_BPFVM_MISSING);
	r->pidtype_tgid = bpf_core_enum_value(enum pid_type, PIDTYPE_TGID);
	r->pidtype_sid = bpf_core_enum_value(enum pid_type, PIDTYPE_SID);
	return 0;
}

/* reads the XDP context through the local struct xdp_md: every ctx load
 * carries a CO-RE field-offset relocation */
SEC("xdp")
int core_xdp(struct xdp_md *ctx)
{
	struct xdp_md___shuffled *shuffled = (void *)ctx;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = data_end - data;

	if (data + 14 > data_end)
		return XDP_ABORTED;
	/* packet length in the low 16 bits, ifindex and queue above */
	return len | (ctx->ingress_ifindex & 0xff) << 16 | (shuffled->rx_queue_index & 0xff) << 24;
}

char LICENSE[] SEC("license") = "GPL";
