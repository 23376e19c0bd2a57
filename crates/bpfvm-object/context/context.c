/* The context types of the program types bpfvm runs, as the kernel's UAPI defines
 * them. `build.sh` compiles this file and keeps only its BTF (`context.btf`): the
 * target of CO-RE relocations for bpfvm's own engines, as vmlinux BTF is for the
 * kernel. A program's `struct xdp_md___v2 { ... } __attribute__((preserve_access_index))`
 * resolves against these. */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>

/* Referenced so clang emits their BTF. */
struct xdp_md xdp_ctx;
struct __sk_buff skb_ctx;
struct bpf_sock sock;
struct bpf_sock_addr sock_addr_ctx;
struct bpf_sock_ops sock_ops_ctx;
struct sk_msg_md sk_msg_ctx;
struct sk_reuseport_md sk_reuseport_ctx;
struct bpf_sk_lookup sk_lookup_ctx;
struct bpf_sysctl sysctl_ctx;
struct bpf_sockopt sockopt_ctx;
struct bpf_cgroup_dev_ctx cgroup_dev_ctx;
struct bpf_raw_tracepoint_args raw_tp_ctx;
struct bpf_perf_event_data perf_event_ctx;
struct bpf_flow_keys flow_keys;
