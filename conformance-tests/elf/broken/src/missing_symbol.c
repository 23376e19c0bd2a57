// SPDX-License-Identifier: GPL-2.0
/* A plain extern: not __kconfig, not __ksym, so nothing but a linker could
 * resolve it. The lddw that loads it has an R_BPF_64_64 relocation against an
 * undefined (SHN_UNDEF) symbol; the loader must refuse the object. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int no_such_thing;

SEC("xdp")
int xdp_missing(struct xdp_md *ctx)
{
	return no_such_thing;
}

char LICENSE[] SEC("license") = "GPL";
