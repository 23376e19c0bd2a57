//! Reads the estimates of the last `--bench engines` run and prints the tables of
//! `docs/performance.md` ("Engines"), then draws `docs/perf-engines.svg`: time per run
//! as a multiple of native Rust, per program and engine (log scale).
//!
//! ```sh
//! cargo bench -p bpfvm-benches --bench engines -- --warm-up-time 1 --measurement-time 3
//! cargo run -p bpfvm-benches --example plot_engines -- [TARGET_DIR/criterion] [OUT.svg]
//! ```
//! Defaults: `$CARGO_TARGET_DIR/criterion` (or `target/criterion`) and
//! `docs/perf-engines.svg`.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

/// The program groups, in table order, with their instructions per run.
const PROGRAMS: [(&str, &str); 6] = [
    ("sum_loop_1e5", "sum loop"),
    ("fnv1a_1KiB", "FNV-1a 1 KiB"),
    ("packet_parser_32", "packet parser"),
    ("map_lookups_100", "100 map lookups"),
    ("local_calls_1000", "local calls"),
    ("switch_16_1000", "switch"),
];

/// The engine rows, in column order.
const ENGINES: [(&str, &str); 6] = [
    ("bpfvm_interp", "bpfvm interp"),
    ("bpfvm_jit", "bpfvm JIT (checked)"),
    ("rbpf_interp", "rbpf interp"),
    ("rbpf_jit_x86", "rbpf x86 JIT"),
    ("rbpf_cranelift", "rbpf Cranelift"),
    ("kernel_jit", "kernel JIT"),
];

const COMPILE_ROWS: [(&str, &str); 4] = [
    ("bpfvm_jit", "bpfvm JIT"),
    ("rbpf_cranelift", "rbpf Cranelift"),
    ("rbpf_jit_x86", "rbpf x86 JIT"),
    ("kernel_load", "kernel verifier + JIT"),
];

/// The typical time of one iteration in ns: criterion's slope if it has one, else the
/// mean.
fn estimate(root: &Path, group: &str, bench: &str) -> Option<f64> {
    let path = root
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("slope")
        .and_then(|s| s.get("point_estimate"))
        .and_then(|p| p.as_f64())
        .or_else(|| v.get("mean")?.get("point_estimate")?.as_f64())
}

/// A duration in ns, with a unit.
fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        Path::new(&target).join("criterion")
    });
    let out = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("docs/perf-engines.svg"));

    // Time per run (ratio to native).
    print!("| program |");
    for (_, e) in ENGINES {
        print!(" {e} |");
    }
    println!(" native |");
    println!("|---|{}---|", "---|".repeat(ENGINES.len()));
    let mut ratios: Vec<Vec<Option<f64>>> = Vec::new();
    for (group, label) in PROGRAMS {
        let native = estimate(&root, group, "native");
        print!("| {label} |");
        let mut row = Vec::new();
        for (bench, _) in ENGINES {
            let t = estimate(&root, group, bench);
            let ratio = t.zip(native).map(|(t, n)| t / n);
            row.push(ratio);
            match (t, ratio) {
                (Some(t), Some(r)) => print!(" {} ({r:.2}×) |", fmt_ns(t)),
                (Some(t), None) => print!(" {} |", fmt_ns(t)),
                _ => print!(" n/a |"),
            }
        }
        ratios.push(row);
        println!(" {} |", native.map_or("n/a".into(), fmt_ns));
    }
    println!();

    // Compile times.
    print!("| instructions |");
    for (_, e) in COMPILE_ROWS {
        print!(" {e} |");
    }
    println!();
    println!("|---|{}", "---|".repeat(COMPILE_ROWS.len()));
    for n in [10, 100, 1000, 10_000] {
        let group = format!("jit_compile_{n}");
        print!("| {n} |");
        for (bench, _) in COMPILE_ROWS {
            match estimate(&root, &group, bench) {
                Some(t) => print!(" {} ({:.0} ns/insn) |", fmt_ns(t), t / n as f64),
                None => print!(" n/a |"),
            }
        }
        println!();
    }

    draw(&out, &ratios)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Grouped bars: one group per program, one bar per engine, height = time ÷ native.
fn draw(out: &Path, ratios: &[Vec<Option<f64>>]) -> Result<(), Box<dyn std::error::Error>> {
    let colors = [
        RGBColor(0x99, 0x99, 0x99),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0xff, 0x7f, 0x0e),
    ];
    let max = ratios
        .iter()
        .flatten()
        .flatten()
        .fold(2.0f64, |m, &r| m.max(r));
    let root = SVGBackend::new(out, (1000, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Time per run ÷ native Rust (log scale, lower is better)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            0f64..PROGRAMS.len() as f64,
            (0.5f64..max * 20.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(PROGRAMS.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 1e-6 && i < PROGRAMS.len() {
                PROGRAMS[i].1.to_string()
            } else {
                String::new()
            }
        })
        .y_desc("× native")
        .draw()?;
    let width = 0.8 / ENGINES.len() as f64;
    for (e, (_, name)) in ENGINES.iter().enumerate() {
        let color = colors[e];
        let bars = ratios.iter().enumerate().filter_map(move |(p, row)| {
            let r = row[e]?;
            let x0 = p as f64 + 0.1 + e as f64 * width;
            Some(Rectangle::new(
                [(x0, 0.5), (x0 + width * 0.9, r)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    // The issue's targets: checked JIT within 1.5×, verified JIT within 1.15× of native.
    for (target, label) in [
        (1.5, "1.5× (checked target)"),
        (1.15, "1.15× (verified target)"),
    ] {
        chart
            .draw_series(LineSeries::new(
                [(0.0, target), (PROGRAMS.len() as f64, target)],
                BLACK.stroke_width(1),
            ))?
            .label(label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 10, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
