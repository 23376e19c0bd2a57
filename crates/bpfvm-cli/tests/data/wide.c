// A syscall program whose context struct has a 16-byte integer member, for
// `bpfvm run --ctx-json` tests (crates/bpfvm-cli/tests/cli.rs).
// Build: clang-19 -O2 -g -target bpf -c wide.c -o wide.o
typedef unsigned long long __u64;
struct wide_ctx {
	unsigned __int128 big;
	__u64 small;
};
unsigned __int128 last_big;
char LICENSE[] __attribute__((section("license"))) = "GPL";
__attribute__((section("syscall"), used))
int wide(struct wide_ctx *ctx)
{
	last_big = ctx->big;
	return (int)(ctx->big >> 64) + (int)ctx->big + (int)ctx->small;
}
