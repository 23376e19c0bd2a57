//! bcc's histogram printers, for maps that programs fill as histograms.
//!
//! A log2 histogram (`BPF_HISTOGRAM` with `bpf_log2l`) is an array whose slot `i` counts
//! values in `[2^(i-1), 2^i - 1]` (slot 1 also takes 0). bcc prints it as
//!
//! ```text
//!      usecs               : count     distribution
//!          0 -> 1          : 1        |****                                    |
//!          2 -> 3          : 3        |************                            |
//!          4 -> 7          : 0        |                                        |
//!          8 -> 15         : 10       |****************************************|
//! ```
//!
//! These functions produce exactly that text (bcc's `table.py`), so tools written against
//! bcc's output keep working.

use std::fmt::Write as _;

/// bcc's bar width.
const STARS_MAX: usize = 40;

/// The bar for `val` against the largest count, `width` characters wide, as bcc draws it:
/// one star per `val_max / width`, the last one a `+` when `val` exceeds `val_max`.
fn stars(val: u64, val_max: u64, width: usize) -> String {
    let mut text = String::new();
    if val_max == 0 {
        return text;
    }
    // bcc compares `i > width * val / val_max - 1` in floating point.
    let limit = width as f64 * val as f64 / val_max as f64 - 1.0;
    let mut i = 0usize;
    while !(i as f64 > limit || i > width - 1) {
        text.push('*');
        i += 1;
    }
    if val > val_max {
        text.pop();
        text.push('+');
    }
    text
}

/// bcc's `print_log2_hist` of `vals` (slot `i` = count of values with log2 bucket `i`),
/// with `val_type` as the column header. With `strip_leading_zero`, rows before the first
/// non-zero count are left out. Prints nothing when only slot 0 (or nothing) is set.
pub fn log2_hist(vals: &[u64], val_type: &str, strip_leading_zero: bool) -> String {
    let mut out = String::new();
    let idx_max = vals.iter().rposition(|&v| v > 0);
    let val_max = vals.iter().copied().max().unwrap_or(0);
    let Some(idx_max) = idx_max.filter(|&i| i > 0) else {
        return out;
    };
    let wide = idx_max > 32;
    let width = if wide { STARS_MAX / 2 } else { STARS_MAX };
    if wide {
        let _ = writeln!(
            out,
            "               {val_type:<29} : count     distribution"
        );
    } else {
        let _ = writeln!(out, "     {val_type:<19} : count     distribution");
    }
    let mut skipping = strip_leading_zero;
    for (i, &val) in vals.iter().enumerate().take(idx_max + 1).skip(1) {
        let high: u128 = (1u128 << i) - 1;
        let mut low: u128 = (1u128 << i) >> 1;
        if low == high {
            low -= 1;
        }
        if skipping && val == 0 {
            continue;
        }
        skipping = false;
        let bar = stars(val, val_max, width);
        if wide {
            let _ = writeln!(out, "{low:>20} -> {high:<20} : {val:<8} |{bar:<width$}|");
        } else {
            let _ = writeln!(out, "{low:>10} -> {high:<10} : {val:<8} |{bar:<width$}|");
        }
    }
    out
}

/// bcc's `print_linear_hist` of `vals` (slot `i` = count of value `i`).
pub fn linear_hist(vals: &[u64], val_type: &str) -> String {
    let mut out = String::new();
    let Some(idx_max) = vals.iter().rposition(|&v| v > 0) else {
        return out;
    };
    let val_max = vals.iter().copied().max().unwrap_or(0);
    let _ = writeln!(out, "     {val_type:<13} : count     distribution");
    for (i, &val) in vals.iter().enumerate().take(idx_max + 1) {
        let bar = stars(val, val_max, STARS_MAX);
        let _ = writeln!(out, "        {i:<10} : {val:<8} |{bar:<STARS_MAX$}|");
    }
    out
}

/// The log2 bucket of `v` as bcc's `bpf_log2l` computes it in the program: 0 for 0,
/// otherwise 1 + the index of the highest set bit.
pub fn log2_slot(v: u64) -> usize {
    if v == 0 {
        0
    } else {
        64 - v.leading_zeros() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_layout_by_hand() {
        // Worked out from bcc's rules: 40 columns; one star per val_max/40 = 0.25;
        // 1 -> 4 stars, 3 -> 12, 0 -> none, 10 -> 40.
        let text = log2_hist(&[0, 1, 3, 0, 10], "usecs", false);
        let want = "     usecs               : count     distribution\n\
                    \x20        0 -> 1          : 1        |****                                    |\n\
                    \x20        2 -> 3          : 3        |************                            |\n\
                    \x20        4 -> 7          : 0        |                                        |\n\
                    \x20        8 -> 15         : 10       |****************************************|\n";
        assert_eq!(text, want);
    }

    #[test]
    fn fractional_bars_round_as_bcc() {
        // 40 * 1 / 3 - 1 = 12.33: stars for i = 0..=12, 13 of them.
        let text = log2_hist(&[0, 1, 3], "ms", false);
        let first = text.lines().nth(1).expect("row");
        assert_eq!(first.matches('*').count(), 13, "{first}");
    }

    #[test]
    fn strip_leading_zero_and_empty() {
        let text = log2_hist(&[0, 0, 0, 5], "x", true);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.lines()
                .nth(1)
                .expect("row")
                .starts_with("         4 -> 7 ")
        );
        assert_eq!(
            log2_hist(&[7], "x", false),
            "",
            "slot 0 alone prints nothing, as bcc"
        );
        assert_eq!(log2_hist(&[], "x", false), "");
    }

    #[test]
    fn wide_histograms_use_the_wide_layout() {
        let mut vals = vec![0u64; 40];
        vals[34] = 2;
        let text = log2_hist(&vals, "nsecs", true);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("               nsecs                         : count     distribution")
        );
        let row = lines.next().expect("row");
        assert_eq!(
            row,
            format!(
                "{:>20} -> {:<20} : 2        |{}|",
                1u64 << 33,
                (1u64 << 34) - 1,
                "*".repeat(20)
            )
        );
    }

    #[test]
    fn linear_layout_and_slots() {
        let text = linear_hist(&[2, 0, 1], "kbytes");
        assert_eq!(
            text,
            "     kbytes        : count     distribution\n        0          : 2        |****************************************|\n        1          : 0        |                                        |\n        2          : 1        |********************                    |\n"
        );
        assert_eq!(
            (
                log2_slot(0),
                log2_slot(1),
                log2_slot(2),
                log2_slot(3),
                log2_slot(1024)
            ),
            (0, 1, 2, 2, 11)
        );
    }
}
