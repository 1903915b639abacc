//! Port ranges: what an offer's `ports` resource holds, and how a task's
//! port requests are served from it.

use crate::app::PortRequest;

/// Inclusive port ranges, sorted and disjoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRanges(Vec<(u32, u32)>);

impl PortRanges {
    /// Normalizes arbitrary inclusive ranges (unsorted, overlapping, empty).
    pub fn new(ranges: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let mut v: Vec<(u32, u32)> = ranges.into_iter().filter(|(a, b)| a <= b).collect();
        v.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        PortRanges(out)
    }

    /// The ranges.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.0
    }

    /// True when `port` is in a range.
    pub fn contains(&self, port: u32) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&port))
    }

    /// The number of ports.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|(a, b)| u64::from(b - a) + 1).sum()
    }

    /// True when there is no port.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// These ranges without `ports`.
    pub fn without(&self, ports: &[u32]) -> PortRanges {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            let mut start = a;
            let mut inside: Vec<u32> =
                ports.iter().copied().filter(|p| (a..=b).contains(p)).collect();
            inside.sort_unstable();
            inside.dedup();
            for p in inside {
                if p > start {
                    out.push((start, p - 1));
                }
                start = p.saturating_add(1);
                if p == u32::MAX {
                    start = u32::MAX;
                }
            }
            if start <= b && !(start == u32::MAX && ports.contains(&u32::MAX)) {
                out.push((start, b));
            }
        }
        PortRanges::new(out)
    }

    /// Serves `requests` from these ranges: literal ports must be free,
    /// every other request gets the lowest free port not taken by an
    /// earlier answer or a literal one. `None` when they cannot all be served.
    pub fn assign(&self, requests: &[PortRequest]) -> Option<Vec<u32>> {
        let literal: Vec<u32> = requests.iter().flatten().copied().collect();
        if literal.iter().any(|p| !self.contains(*p)) {
            return None;
        }
        let mut sorted = literal.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != literal.len() {
            return None;
        }
        let mut free = self.without(&literal);
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            match r {
                Some(p) => out.push(*p),
                None => {
                    let p = free.0.first()?.0;
                    out.push(p);
                    free = free.without(&[p]);
                }
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_and_removes() {
        let r = PortRanges::new([(10, 20), (15, 30), (40, 40), (5, 1), (31, 32)]);
        assert_eq!(r.ranges(), &[(10, 32), (40, 40)]);
        assert_eq!(r.len(), 24);
        assert_eq!(r.without(&[10, 20, 40, 99]).ranges(), &[(11, 19), (21, 32)]);
        assert!(PortRanges::new([(7, 7)]).without(&[7]).is_empty());
    }

    #[test]
    fn assigns_literal_and_dynamic_ports() {
        let r = PortRanges::new([(31000, 31002)]);
        assert_eq!(r.assign(&[None, Some(31000), None]), Some(vec![31001, 31000, 31002]));
        assert_eq!(r.assign(&[None, None, None, None]), None);
        assert_eq!(r.assign(&[Some(80)]), None);
        assert_eq!(r.assign(&[Some(31000), Some(31000)]), None);
        assert_eq!(r.assign(&[]), Some(vec![]));
    }

    proptest! {
        /// Property: assigned ports are distinct, inside the ranges, and
        /// honour every literal request.
        #[test]
        fn assignments_are_distinct_and_offered(
            ranges in proptest::collection::vec((0u32..200, 0u32..20), 0..5),
            requests in proptest::collection::vec(proptest::option::of(0u32..250), 0..8),
        ) {
            let r = PortRanges::new(ranges.iter().map(|(a, l)| (*a, a + l)));
            if let Some(got) = r.assign(&requests) {
                prop_assert_eq!(got.len(), requests.len());
                let mut d = got.clone();
                d.sort_unstable();
                d.dedup();
                prop_assert_eq!(d.len(), got.len());
                for (p, req) in got.iter().zip(&requests) {
                    prop_assert!(r.contains(*p));
                    if let Some(l) = req { prop_assert_eq!(p, l); }
                }
            } else {
                let dynamic = requests.iter().filter(|x| x.is_none()).count() as u64;
                let literal: Vec<u32> = requests.iter().flatten().copied().collect();
                let mut uniq = literal.clone();
                uniq.sort_unstable();
                uniq.dedup();
                let literal_ok = uniq.len() == literal.len() && literal.iter().all(|p| r.contains(*p));
                prop_assert!(!literal_ok || r.without(&literal).len() < dynamic);
            }
        }
    }
}
