// BTF fixture: one of every type kind clang-19 emits for BPF, plus the
// shapes that make C printing hard (bitfields, anonymous members, function
// pointers, multi-dimensional arrays, qualifiers on pointers).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __ttag(x) __attribute__((btf_type_tag(x)))

typedef unsigned int u32_t;
typedef const volatile u32_t cv_u32_t;

enum color { RED, GREEN = 5, BLUE };
enum signed_enum { NEG = -3, ZERO = 0, POS = 7 };
enum big_enum { SMALL = 1, HUGE = 0xfffffffff0ULL };
enum neg64 { NEG64_MIN = -0x7fffffffffffffffLL - 1, NEG64_ONE = 1 };
enum __attribute__((packed)) tiny { TINY_A, TINY_B };

struct opaque;  /* never defined: becomes FWD */
union opaque_u;

struct bits {
	unsigned int a : 3;
	unsigned int b : 5;
	int c : 7;
	unsigned long long d : 40;
	unsigned char e;
	enum color f : 4;
} __tag("bits_tag");

union value {
	__u64 u;
	__s32 i[2];
	float f;
	double d;
	char bytes[8];
};

typedef int (*callback_t)(void *ctx, const char *name, ...);

struct inner {
	int x;
	short y;
};

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
	char *const cptr;
	volatile int *vptr;
	int *restrict rptr;
	struct opaque *op;
	union opaque_u *opu;
	struct outer *next;
	struct bits bf;
	int __ttag("user") *tagged;
	cv_u32_t cv;
	_Bool flag;
	char tail[];
} __attribute__((aligned(8)));

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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct outer);
} outer_map SEC(".maps");

struct outer global_outer;
int global_counter __tag("var_tag") = 3;
const volatile int rodata_cfg = 7;
static __u64 static_bss;
enum big_enum global_big;
enum neg64 global_neg64;
enum tiny global_tiny;
enum signed_enum global_signed;
struct packed_s global_packed;
struct holes global_holes;
struct empty_s global_empty;
union value global_value;

extern int bpf_extern_ksym __ksym;
extern void bpf_extern_func(int) __ksym;

static __attribute__((noinline)) int helper(struct outer *o __tag("param_tag"), int n) __tag("func_tag")
{
	return o ? o->in.x + n : n;
}

__attribute__((noinline)) int global_fn(struct bits *b)
{
	return b->a + b->c;
}

SEC("xdp")
int prog(void *ctx)
{
	static_bss++;
	global_big = HUGE;
	global_neg64 = NEG64_MIN;
	global_tiny = TINY_B;
	global_signed = NEG;
	if (rodata_cfg == 99)
		bpf_extern_func(bpf_extern_ksym);
	global_value.u = global_packed.l + global_holes.l + sizeof(global_empty);
	return helper(&global_outer, global_counter) + global_fn(&global_outer.bf);
}

char LICENSE[] SEC("license") = "GPL";
