#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

typedef unsigned long long __u64;

struct sched_entity {
	__u64 vruntime;
};

typedef int pid_t;

struct list_head {
	struct list_head *next;
	struct list_head *prev;
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
};

struct task_struct___new {
	int no_such_field;
	pid_t pid;
};

enum bpf_map_type___local {
	BPF_MAP_TYPE_HASH___local = 100,
	BPF_MAP_TYPE_RINGBUF___local = 200,
	BPF_MAP_TYPE_NOT_IN_KERNEL___local = 300,
};

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
};

typedef struct local_bits local_bits_t;

enum local_enum {
	LE_A = 3,
	LE_B = -1,
};

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
