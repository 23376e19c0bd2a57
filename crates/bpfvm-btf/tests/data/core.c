// CO-RE fixture: every relocation kind clang-19 emits, against a local
// (vmlinux.h-style) subset of kernel types, plus purely local types so the
// relocations can also be resolved against this object's own BTF.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef int pid_t;

struct list_head {
	struct list_head *next, *prev;
};

struct sched_entity {
	__u64 vruntime;
};

struct task_struct {
	unsigned int flags;
	int prio;
	struct sched_entity se;
	unsigned int in_execve: 1;
	pid_t pid;
	pid_t tgid;
	struct task_struct *real_parent;
	struct list_head children;
	char comm[16];
} __attribute__((preserve_access_index));

/* a flavor: same essential name, a field the kernel does not have */
struct task_struct___new {
	int no_such_field;
	pid_t pid;
} __attribute__((preserve_access_index));

enum bpf_map_type___local {
	BPF_MAP_TYPE_HASH___local = 100,
	BPF_MAP_TYPE_RINGBUF___local = 200,
	BPF_MAP_TYPE_NOT_IN_KERNEL___local = 300,
};

/* purely local types: resolved against this object's own BTF */
struct local_bits {
	long long pad;
	int s: 5;
	unsigned int u: 20;
	unsigned char c;
	short arr[4];
	union {
		int ui;
		char uc;
	};
} __attribute__((preserve_access_index));

enum local_enum { LE_A = 3, LE_B = -1 };
typedef struct local_bits local_bits_t;

__u64 out[64];

SEC("kprobe/x")
int core_prog(struct task_struct *t)
{
	struct task_struct___new *tn = (void *)t;
	struct local_bits *lb = (void *)t;
	int i = 0;

	/* field byte offset (implicit, through a load) */
	out[i++] = t->pid;
	out[i++] = t->se.vruntime;
	out[i++] = t->comm[3];
	out[i++] = (unsigned long)t->real_parent;
	out[i++] = (unsigned long)&t->children.prev;
	/* explicit field info */
	out[i++] = __builtin_preserve_field_info(t->pid, BPF_FIELD_BYTE_OFFSET);
	out[i++] = bpf_core_field_size(t->comm);
	out[i++] = bpf_core_field_exists(t->prio);
	out[i++] = bpf_core_field_exists(tn->no_such_field);
	if (bpf_core_field_exists(tn->no_such_field))
		out[i++] = tn->no_such_field;
	out[i++] = BPF_CORE_READ_BITFIELD(t, in_execve);
	out[i++] = __builtin_preserve_field_info(t->flags, BPF_FIELD_SIGNED);
	/* type based */
	out[i++] = bpf_core_type_exists(struct task_struct);
	out[i++] = bpf_core_type_size(struct task_struct);
	out[i++] = bpf_core_type_id_local(struct task_struct);
	out[i++] = bpf_core_type_id_kernel(struct task_struct);
	out[i++] = bpf_core_type_matches(struct list_head);
	out[i++] = bpf_core_type_exists(struct task_struct___new);
	/* enum based */
	out[i++] = bpf_core_enum_value_exists(enum bpf_map_type___local, BPF_MAP_TYPE_RINGBUF___local);
	out[i++] = bpf_core_enum_value(enum bpf_map_type___local, BPF_MAP_TYPE_RINGBUF___local);
	out[i++] = bpf_core_enum_value(enum bpf_map_type___local, BPF_MAP_TYPE_HASH___local);
	out[i++] = bpf_core_enum_value_exists(enum bpf_map_type___local, BPF_MAP_TYPE_NOT_IN_KERNEL___local);
	/* local-only types */
	out[i++] = BPF_CORE_READ_BITFIELD(lb, s);
	out[i++] = BPF_CORE_READ_BITFIELD(lb, u);
	out[i++] = __builtin_preserve_field_info(lb->u, BPF_FIELD_LSHIFT_U64);
	out[i++] = __builtin_preserve_field_info(lb->u, BPF_FIELD_RSHIFT_U64);
	out[i++] = __builtin_preserve_field_info(lb->s, BPF_FIELD_SIGNED);
	out[i++] = __builtin_preserve_field_info(lb->s, BPF_FIELD_BYTE_SIZE);
	out[i++] = lb->c;
	out[i++] = lb->arr[2];
	out[i++] = lb->uc;
	out[i++] = bpf_core_type_size(local_bits_t);
	out[i++] = bpf_core_enum_value(enum local_enum, LE_B);
	out[i++] = bpf_core_type_matches(struct local_bits);
	return i;
}

char LICENSE[] SEC("license") = "GPL";
