#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

typedef unsigned int __u32;

struct inner {
	int x;
	short y;
};

typedef unsigned long long __u64;

typedef int __s32;

union value {
	__u64 u;
	__s32 i[2];
	float f;
	double d;
	char bytes[8];
};

enum color {
	RED = 0,
	GREEN = 5,
	BLUE = 6,
};

typedef int (*callback_t)(void *, const char *, ...);

struct opaque;

union opaque_u;

struct bits {
	unsigned int a: 3;
	unsigned int b: 5;
	int c: 7;
	unsigned long long d: 40;
	unsigned char e;
	enum color f: 4;
};

typedef unsigned int u32_t;

typedef volatile const u32_t cv_u32_t;

struct outer {
	struct inner in;
	struct inner arr[3];
	int matrix[2][3];
	struct {
		int anon_a;
		union {
			long anon_u1;
			char anon_u2;
		};
	};
	union value val;
	enum color col;
	callback_t cb;
	int (*handlers[4])(int, long);
	const char *name;
	char * const cptr;
	volatile int *vptr;
	int * restrict rptr;
	struct opaque *op;
	union opaque_u *opu;
	struct outer *next;
	struct bits bf;
	int __attribute__((btf_type_tag("user"))) *tagged;
	cv_u32_t cv;
	_Bool flag;
	char tail[0];
};

enum big_enum {
	SMALL = 1ULL,
	HUGE = 1099511627760ULL,
};

enum neg64 {
	NEG64_MIN = -9223372036854775808LL,
	NEG64_ONE = 1LL,
};

enum tiny {
	TINY_A = 0,
	TINY_B = 1,
};

enum signed_enum {
	NEG = -3,
	ZERO = 0,
	POS = 7,
};

struct packed_s {
	char c;
	int i;
	long l;
} __attribute__((packed));

struct holes {
	char c;
	long l;
	char d;
};

struct empty_s {};

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
