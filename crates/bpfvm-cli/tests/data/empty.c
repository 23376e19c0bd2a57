// An array of two billion zero-size structs in .bss, for `bpfvm run` map formatting tests
// (crates/bpfvm-cli/tests/cli.rs). Build: clang-19 -O2 -g -target bpf -c empty.c -o empty.o
struct empty {};
struct holder { int n; struct empty e[2000000000]; };
struct holder g;
char LICENSE[] __attribute__((section("license"))) = "GPL";
__attribute__((section("syscall"), used))
int bump(void *ctx) { g.n++; return g.n; }
