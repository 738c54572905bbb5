//! The slot map: the most common one among the pods that answered is the reference; slots it
//! leaves without a master, or with a failed one, and pods whose map differs are problems.

use std::collections::{BTreeMap, BTreeSet};

use super::names::Names;
use crate::cluster::finding::{Finding, Kind};
use crate::cluster::nodes::{ranges_to_string, to_ranges, SLOTS};
use crate::cluster::observe::PodState;

/// Adds the slot map's problems; returns how many slots are covered (owned by a master no pod
/// considers failed).
pub(super) fn check(live: &[&PodState], names: &Names, problems: &mut Vec<Finding>) -> usize {
    let maps: Vec<Vec<Option<&str>>> = live.iter().map(|p| p.slot_map()).collect();
    let mut counts: BTreeMap<&Vec<Option<&str>>, usize> = BTreeMap::new();
    for m in &maps {
        *counts.entry(m).or_default() += 1;
    }
    let Some(reference) = counts.iter().max_by_key(|(_, c)| **c).map(|(m, _)| *m) else {
        return 0;
    };
    let failing: BTreeSet<&str> = live
        .iter()
        .flat_map(|p| {
            p.nodes
                .iter()
                .filter(|n| n.has("fail"))
                .map(|n| n.id.as_str())
        })
        .collect();
    let uncovered: Vec<u16> = (0..SLOTS)
        .filter(|s| reference[*s as usize].is_none())
        .collect();
    let mut failed: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for s in 0..SLOTS {
        if let Some(owner) = reference[s as usize].filter(|o| failing.contains(o)) {
            failed.entry(owner).or_default().push(s);
        }
    }
    let covered = SLOTS as usize - uncovered.len() - failed.values().map(Vec::len).sum::<usize>();
    if !uncovered.is_empty() {
        let ranges = ranges_to_string(&to_ranges(uncovered.iter().copied()));
        problems.push(
            Finding::new(
                None,
                Kind::UncoveredSlots,
                format!("{} slots have no master: {ranges}", uncovered.len()),
            )
            .slots(ranges),
        );
    }
    for (owner, slots) in failed {
        let ranges = ranges_to_string(&to_ranges(slots.iter().copied()));
        problems.push(
            Finding::new(
                None,
                Kind::UncoveredSlots,
                format!(
                    "{} slots are served by failed master {}: {ranges}",
                    slots.len(),
                    names.name(owner)
                ),
            )
            .peer(names.pod(owner))
            .slots(ranges),
        );
    }
    for (p, m) in live.iter().zip(&maps) {
        if m == reference {
            continue;
        }
        let diff: Vec<u16> = (0..SLOTS)
            .filter(|s| m[*s as usize] != reference[*s as usize])
            .collect();
        let s0 = diff[0] as usize;
        let who = |o: Option<&str>| {
            o.map(|id| names.name(id))
                .unwrap_or_else(|| "nobody".into())
        };
        problems.push(Finding::new(
            Some(&p.pod.name),
            Kind::SlotMapDisagrees,
            format!(
                "its slot map differs from the majority's in {} slots ({}): e.g. slot {s0} is {} here, {} elsewhere",
                diff.len(),
                ranges_to_string(&to_ranges(diff.iter().copied().take(2000))),
                who(m[s0]),
                who(reference[s0])
            ),
        ));
    }
    covered
}
