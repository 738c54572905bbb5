use super::*;

fn owned(v: &[(&str, Vec<(u16, u16)>)]) -> BTreeMap<String, Vec<(u16, u16)>> {
    v.iter().map(|(k, r)| (k.to_string(), r.clone())).collect()
}

#[test]
fn three_to_four_moves_a_quarter() {
    let o = owned(&[
        ("m0", vec![(0, 5460)]),
        ("m1", vec![(5461, 10922)]),
        ("m2", vec![(10923, 16383)]),
    ]);
    let ms: Vec<String> = ["m0", "m1", "m2", "m3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let moves = balance_moves(&o, &ms, &[]);
    assert_eq!(moves.len(), 4096);
    assert!(moves.iter().all(|m| m.to == "m3"));
    for m in ["m0", "m1", "m2"] {
        let n = moves.iter().filter(|x| x.from == m).count();
        assert!((1364..=1366).contains(&n), "{m} gives {n}");
    }
    // m0 gives its top slots: its range stays contiguous.
    assert!(moves
        .iter()
        .filter(|x| x.from == "m0")
        .all(|x| x.slot > 4000 && x.slot <= 5460));
}

#[test]
fn four_to_three_drains_the_departing_master() {
    let o = owned(&[
        ("m0", vec![(0, 4095)]),
        ("m1", vec![(4096, 8191)]),
        ("m2", vec![(8192, 12287)]),
        ("m3", vec![(12288, 16383)]),
    ]);
    let ms: Vec<String> = ["m0", "m1", "m2"].iter().map(|s| s.to_string()).collect();
    let moves = balance_moves(&o, &ms, &["m3".to_string()]);
    assert_eq!(moves.len(), 4096);
    assert!(moves.iter().all(|m| m.from == "m3"));
    let mut got: Vec<usize> = ms
        .iter()
        .map(|m| 4096 + moves.iter().filter(|x| &x.to == m).count())
        .collect();
    got.sort();
    assert_eq!(got, vec![5461, 5461, 5462]);
}

#[test]
fn balanced_needs_no_moves() {
    let o = owned(&[
        ("m0", vec![(0, 5460)]),
        ("m1", vec![(5461, 10922)]),
        ("m2", vec![(10923, 16383)]),
    ]);
    let ms: Vec<String> = ["m0", "m1", "m2"].iter().map(|s| s.to_string()).collect();
    assert!(balance_moves(&o, &ms, &[]).is_empty());
}

/// `balance_moves` on what `fixed_roles` reads from an observation, as scale-in and
/// scale-out call it. Moves are summarised as `(from, to)` → slot ranges.
#[test]
fn balance_moves_from_observations() {
    use crate::cluster::decide::fixed_roles;
    use crate::cluster::fixture::{cluster, lines, lone, name, observation, seed, Pod};
    use crate::cluster::nodes::to_ranges;

    type Ranges = Vec<(u16, u16)>;
    type Moves = BTreeMap<(String, String), Ranges>;
    struct Case {
        name: &'static str,
        pods: Vec<Pod>,
        /// Ordinals of the masters that stay, and of those that go.
        masters: Vec<u32>,
        departing: Vec<u32>,
        /// `(from, to, slot ranges)`, ordinals.
        moves: Vec<(u32, u32, Ranges)>,
    }
    let summary = |moves: &[SlotMove]| -> Moves {
        let mut by_pair: BTreeMap<(String, String), Vec<u16>> = BTreeMap::new();
        for m in moves {
            by_pair
                .entry((m.from.clone(), m.to.clone()))
                .or_default()
                .push(m.slot);
        }
        by_pair
            .into_iter()
            .map(|(pair, mut slots)| {
                slots.sort_unstable();
                (pair, to_ranges(slots))
            })
            .collect()
    };
    let names = |v: &[u32]| v.iter().map(|n| name(*n)).collect::<Vec<_>>();
    let cases = vec![
        Case {
            name: "a balanced cluster moves nothing",
            pods: seed(),
            masters: vec![0, 1, 2],
            departing: vec![],
            moves: vec![],
        },
        Case {
            name: "4 masters to 3: exactly the departing master's slots move, over the staying",
            pods: cluster(&lines(&[0, 1, 2, 3], &[(4, 0), (5, 1), (6, 2), (7, 3)])),
            masters: vec![0, 1, 2],
            departing: vec![3],
            moves: vec![
                (3, 0, vec![(12288, 13653)]),
                (3, 1, vec![(13654, 15018)]),
                (3, 2, vec![(15019, 16383)]),
            ],
        },
        Case {
            name: "3 masters to 4: each gives the top of its range to the new one",
            pods: {
                let mut pods = seed();
                pods.extend([lone(6), lone(7)]);
                pods
            },
            masters: vec![0, 1, 2, 6],
            departing: vec![],
            moves: vec![
                (0, 6, vec![(4096, 5460)]),
                (1, 6, vec![(9557, 10922)]),
                (2, 6, vec![(15019, 16383)]),
            ],
        },
    ];
    for case in cases {
        let what = case.name;
        let (_, owned) = fixed_roles(&observation(&case.pods));
        let (masters, departing) = (names(&case.masters), names(&case.departing));
        let moves = balance_moves(&owned, &masters, &departing);
        let want: Moves = case
            .moves
            .into_iter()
            .map(|(from, to, r)| ((name(from), name(to)), r))
            .collect();
        assert_eq!(summary(&moves), want, "{what}");
        // Each slot moves at most once, and afterwards the staying masters hold the even
        // split's sizes and the departing ones nothing.
        let moved: BTreeSet<u16> = moves.iter().map(|m| m.slot).collect();
        assert_eq!(moved.len(), moves.len(), "{what}: a slot moved twice");
        let mut have: BTreeMap<&str, usize> =
            owned.iter().map(|(m, r)| (m.as_str(), count(r))).collect();
        for m in &moves {
            *have.get_mut(m.from.as_str()).unwrap() -= 1;
            *have.entry(m.to.as_str()).or_default() += 1;
        }
        let mut sizes: Vec<usize> = masters
            .iter()
            .map(|m| have.get(m.as_str()).copied().unwrap_or(0))
            .collect();
        sizes.sort_unstable();
        let mut even: Vec<usize> = even_ranges(masters.len())
            .iter()
            .map(|r| count(&[*r]))
            .collect();
        even.sort_unstable();
        assert_eq!(sizes, even, "{what}: sizes after the moves");
        for d in &departing {
            assert_eq!(
                have.get(d.as_str()).copied().unwrap_or(0),
                0,
                "{what}: {d} keeps slots"
            );
        }
    }
}

mod undrained {
    use super::super::undrained_loss;
    use crate::cluster::fixture::{cluster, lines, observation, seed};
    use crate::cluster::observe::PodError;

    #[test]
    fn a_departing_master_with_slots_is_a_loss_a_departing_replica_is_not() {
        // Masters 0..3 with replicas 4..7: the departing pods 6 and 7 are replicas of 2 and 3.
        let four = cluster(&lines(&[0, 1, 2, 3], &[(4, 0), (5, 1), (6, 2), (7, 3)]));
        let obs = observation(&four);
        assert_eq!(undrained_loss(&obs, 6), None);
        // Masters 0, 1, 2, 6 with replicas 3, 4, 5, 7: pod 6 serves a quarter of the slots.
        let mut four = cluster(&lines(&[0, 1, 2, 6], &[(3, 0), (4, 1), (5, 2), (7, 6)]));
        four.sort_by_key(|p| p.info.ordinal);
        four[6].keys = 2481;
        let obs = observation(&four);
        assert_eq!(
            undrained_loss(&obs, 6).as_deref(),
            Some("4096 slot(s) with 2481 key(s) live on redis-cluster-6, and no pod that stays has them")
        );
    }

    #[test]
    fn a_departing_pod_that_cannot_be_asked_counts_by_what_the_staying_ones_see() {
        let mut four = cluster(&lines(&[0, 1, 2, 6], &[(3, 0), (4, 1), (5, 2), (7, 6)]));
        four.sort_by_key(|p| p.info.ordinal);
        four[6].error = Some(PodError::NoIp);
        let obs = observation(&four);
        assert_eq!(
            undrained_loss(&obs, 6).as_deref(),
            Some("the pods that stay see 4096 slot(s) served by nodes that are not among them")
        );
        // An unformed cluster: nothing to lose, whoever answers.
        let mut fresh = seed();
        for pod in &mut fresh {
            pod.nodes = format!(
                "${:x} {}:6379@16379 myself,master - 0 0 0 connected",
                pod.info.ordinal,
                pod.info.ip.clone().unwrap()
            );
        }
        let obs = observation(&fresh);
        assert_eq!(undrained_loss(&obs, 4), None);
    }

    #[test]
    fn when_no_staying_pod_answers_nothing_can_be_shown() {
        let mut pods = seed();
        for pod in &mut pods {
            pod.error = Some(PodError::Unreachable("test".into()));
        }
        let obs = observation(&pods);
        let loss = undrained_loss(&obs, 4).unwrap();
        assert!(loss.starts_with("no pod that stays answered"), "{loss}");
    }
}

#[test]
fn a_master_short_of_half_its_share_is_underfilled_a_little_imbalance_is_not() {
    let ms: Vec<String> = ["m0", "m1", "m2", "m3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // A scale-out killed after 512 of m3's 4096 slots had moved.
    let stopped = owned(&[
        ("m0", vec![(0, 4949)]),
        ("m1", vec![(4950, 10410)]),
        ("m2", vec![(10411, 15871)]),
        ("m3", vec![(15872, 16383)]),
    ]);
    assert!(underfilled(&stopped, &ms));
    assert!(
        underfilled(&owned(&[("m0", vec![(0, 16383)])]), &ms),
        "empty masters"
    );
    let even = owned(&[
        ("m0", vec![(0, 4095)]),
        ("m1", vec![(4096, 8191)]),
        ("m2", vec![(8192, 12300)]),
        ("m3", vec![(12301, 16383)]),
    ]);
    assert!(!underfilled(&even, &ms));
}
