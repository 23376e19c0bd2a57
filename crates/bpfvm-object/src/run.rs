//! The unit of comparison between engines running an object's program: what one run
//! returned, the packet afterwards, and every map's contents. The kernel engine produces
//! it today (`bpfvm_kernel::KernelObject::run`); bpfvm's engines will produce the same
//! once they have maps and program types, and [`ObjectRun::differences`] compares them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A map's entries: key bytes -> value bytes (per-CPU values: one slot per CPU, back to
/// back).
pub type MapContents = BTreeMap<Vec<u8>, Vec<u8>>;

/// What one run of a program did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectRun {
    /// The program's return value.
    pub retval: u32,
    /// The packet after the run.
    pub packet: Vec<u8>,
    /// Every readable map, by name, after the run.
    pub maps: BTreeMap<String, MapContents>,
}

impl ObjectRun {
    /// How `other` differs from `self`, one line per difference (empty: the same run).
    pub fn differences(&self, other: &ObjectRun) -> Vec<String> {
        let mut out = Vec::new();
        if self.retval != other.retval {
            out.push(format!("return value {} != {}", self.retval, other.retval));
        }
        if self.packet != other.packet {
            out.push(format!(
                "packet {:02x?} != {:02x?}",
                self.packet, other.packet
            ));
        }
        let names: std::collections::BTreeSet<&String> =
            self.maps.keys().chain(other.maps.keys()).collect();
        for name in names {
            let (a, b) = (self.maps.get(name), other.maps.get(name));
            if a == b {
                continue;
            }
            let mut line = format!("map `{name}`:");
            let empty = MapContents::new();
            let (a, b) = (a.unwrap_or(&empty), b.unwrap_or(&empty));
            let keys: std::collections::BTreeSet<&Vec<u8>> = a.keys().chain(b.keys()).collect();
            for k in keys {
                if a.get(k) != b.get(k) {
                    let _ = write!(
                        line,
                        " key {k:02x?}: {:02x?} != {:02x?};",
                        a.get(k),
                        b.get(k)
                    );
                }
            }
            out.push(line);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_what_differs() {
        let mut a = ObjectRun {
            retval: 2,
            packet: vec![1, 2],
            ..ObjectRun::default()
        };
        a.maps
            .insert("m".into(), MapContents::from([(vec![0], vec![1])]));
        assert!(a.differences(&a.clone()).is_empty());
        let mut b = a.clone();
        b.retval = 1;
        b.maps.get_mut("m").expect("m").insert(vec![0], vec![2]);
        let d = a.differences(&b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("return value 2 != 1"));
        assert!(d[1].contains("map `m`: key [00]"));
    }
}
