//! `bpfvm-plugin [MEM-HEX] [OPTIONS]`: the bpf_conformance plugin protocol as
//! a standalone binary, so the public runner's `--plugin_path` can name it.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", bpfvm_conformance::plugin::PLUGIN_USAGE);
        return;
    }
    let code = bpfvm_conformance::plugin::plugin_main(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
    );
    std::process::exit(code);
}
