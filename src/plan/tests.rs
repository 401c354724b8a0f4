use super::*;
use crate::domain::SubjectKey;
use crate::mapping::Mode;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn key(n: u8, prof: &str) -> InvolvementKey {
    InvolvementKey {
        subject: SubjectKey([n; 16]),
        professional: prof.into(),
    }
}

fn wanted(content: u8, line: u64) -> Wanted {
    Wanted {
        content: ContentHash(u64::from(content)),
        location: Location::Line(line),
        end_date: d("2028-11-01"),
        end_from_source: false,
        last_day: d("2035-03-03"),
        ended: None,
    }
}

fn stored(content: u8) -> Stored {
    Stored {
        content: ContentHash(u64::from(content)),
        active: true,
        end_date: d("2028-11-01"),
        renewed: false,
    }
}

const TODAY: &str = "2026-11-28";

/// Plans, and lists every action (withdrawals and decided entries) in key order.
struct Planned {
    counts: Counts,
    held: bool,
    actions: Vec<(InvolvementKey, Action)>,
}

fn plan(
    mode: Mode,
    offers: Vec<(InvolvementKey, Wanted)>,
    base: &HashMap<InvolvementKey, Stored>,
    policy: Policy,
) -> Planned {
    let mut desired = Desired::new(mode);
    for (k, w) in offers {
        desired.offer(&k, w);
    }
    finish(desired, base, policy)
}

fn finish(mut desired: Desired, base: &HashMap<InvolvementKey, Stored>, policy: Policy) -> Planned {
    let p = desired.plan(base, d(TODAY), &Rules::default(), &policy);
    let mut actions: Vec<_> = p
        .withdrawals
        .iter()
        .map(|(k, r)| (k.clone(), Action::Withdraw(*r)))
        .collect();
    actions.extend(desired.decided().map(|(k, a, _)| (k, a)));
    actions.sort_by(|a, b| a.0.cmp(&b.0));
    Planned {
        counts: p.counts,
        held: p.withdrawals_held,
        actions,
    }
}

fn actions(p: &Planned) -> Vec<(InvolvementKey, Action)> {
    p.actions.clone()
}

#[test]
fn new_involvements_are_registered() {
    let p = plan(
        Mode::Snapshot,
        vec![(key(1, "A"), wanted(1, 2)), (key(2, "A"), wanted(2, 3))],
        &HashMap::new(),
        Policy::default(),
    );
    assert_eq!(
        p.counts,
        Counts {
            register: 2,
            ..Counts::default()
        }
    );
    assert_eq!(
        actions(&p),
        vec![
            (key(1, "A"), Action::Register),
            (key(2, "A"), Action::Register)
        ]
    );
}

#[test]
fn unchanged_corrected_and_missing_in_a_snapshot() {
    let base: HashMap<_, _> = (1..=20).map(|n| (key(n, "A"), stored(n))).collect();
    let mut offers: Vec<_> = (1..=19)
        .map(|n| (key(n, "A"), wanted(n, n as u64)))
        .collect();
    offers[0].1.content = ContentHash(99); // a correction of child 1
    let p = plan(Mode::Snapshot, offers, &base, Policy::default());
    assert_eq!(
        p.counts,
        Counts {
            update: 1,
            withdraw: 1,
            unchanged: 18,
            ..Counts::default()
        }
    );
    assert!(!p.held);
    assert_eq!(
        actions(&p),
        vec![
            (key(1, "A"), Action::Update),
            (key(20, "A"), Action::Withdraw(WithdrawReason::RiskEnded))
        ]
    );
}

#[test]
fn delta_mode_never_withdraws_what_is_missing() {
    let base: HashMap<_, _> = (1..=3).map(|n| (key(n, "A"), stored(n))).collect();
    let p = plan(
        Mode::Delta,
        vec![(key(1, "A"), wanted(1, 2))],
        &base,
        Policy::default(),
    );
    assert_eq!(
        p.counts,
        Counts {
            unchanged: 1,
            ..Counts::default()
        }
    );
}

#[test]
fn an_ended_involvement_is_withdrawn_with_its_reason() {
    let base: HashMap<_, _> = [(key(1, "A"), stored(1))].into();
    let mut w = wanted(1, 2);
    w.ended = Some(WithdrawReason::Unjustified);
    let p = plan(
        Mode::Delta,
        vec![(key(1, "A"), w)],
        &base,
        Policy::default(),
    );
    assert_eq!(
        actions(&p),
        vec![(key(1, "A"), Action::Withdraw(WithdrawReason::Unjustified))]
    );
    // Ended and never sent: nothing to do.
    let p = plan(
        Mode::Delta,
        vec![(key(1, "A"), w)],
        &HashMap::new(),
        Policy::default(),
    );
    assert_eq!(
        p.counts,
        Counts {
            unchanged: 1,
            ..Counts::default()
        }
    );
}

#[test]
fn expired_in_time_is_not_registered() {
    let mut w = wanted(1, 2);
    w.end_date = d("2026-11-27");
    let p = plan(
        Mode::Snapshot,
        vec![(key(1, "A"), w)],
        &HashMap::new(),
        Policy::default(),
    );
    assert_eq!(
        p.counts,
        Counts {
            unchanged: 1,
            ..Counts::default()
        }
    );
}

#[test]
fn a_withdrawn_signal_is_registered_anew() {
    let mut s = stored(1);
    s.active = false;
    let base: HashMap<_, _> = [(key(1, "A"), s)].into();
    let p = plan(
        Mode::Snapshot,
        vec![(key(1, "A"), wanted(1, 2))],
        &base,
        Policy::default(),
    );
    assert_eq!(actions(&p), vec![(key(1, "A"), Action::Register)]);
}

#[test]
fn a_truncated_snapshot_holds_its_withdrawals() {
    let base: HashMap<_, _> = (1..=10).map(|n| (key(n, "A"), stored(n))).collect();
    // Only 5 of 10 listed, one new: 5 withdrawals is 50 % > 10 %.
    let mut offers: Vec<_> = (1..=5)
        .map(|n| (key(n, "A"), wanted(n, n as u64)))
        .collect();
    offers.push((key(50, "A"), wanted(50, 9)));
    let p = plan(Mode::Snapshot, offers, &base, Policy::default());
    assert!(p.held);
    assert_eq!(
        p.counts,
        Counts {
            register: 1,
            withdraw: 5,
            unchanged: 5,
            held: 5,
            ..Counts::default()
        }
    );
    // Exactly at the fraction is not over it.
    let offers: Vec<_> = (1..=9)
        .map(|n| (key(n, "A"), wanted(n, n as u64)))
        .collect();
    let p = plan(Mode::Snapshot, offers, &base, Policy::default());
    assert!(!p.held);
    assert_eq!(p.counts.withdraw, 1);
}

#[test]
fn duplicates_identical_are_one_different_reject_all() {
    let mut desired = Desired::new(Mode::Snapshot);
    desired.offer(&key(1, "A"), wanted(1, 2));
    desired.offer(&key(1, "A"), wanted(1, 3));
    // An identical repeat before the first different one is not rejected.
    desired.offer(&key(2, "A"), wanted(2, 4));
    desired.offer(&key(3, "A"), wanted(3, 5));
    desired.offer(&key(2, "A"), wanted(2, 6));
    desired.offer(&key(2, "A"), wanted(3, 7));
    desired.offer(&key(2, "A"), wanted(2, 8));
    desired.offer(&key(3, "A"), wanted(4, 9));
    desired.seal();
    let lines: Vec<Location> = [4, 5, 7, 8, 9].map(Location::Line).into();
    assert_eq!(desired.duplicates(), lines);
    // A conflicted involvement is neither registered nor withdrawn.
    let base: HashMap<_, _> = [(key(2, "A"), stored(2))].into();
    let p = desired.plan(
        &base,
        d(TODAY),
        &Rules::default(),
        &Policy {
            max_withdraw_fraction: 1.0,
            ..Policy::default()
        },
    );
    assert_eq!(
        p.counts,
        Counts {
            register: 1,
            ..Counts::default()
        }
    );
}

#[test]
fn a_rejected_record_keeps_its_signal() {
    let base: HashMap<_, _> = (1..=2).map(|n| (key(n, "A"), stored(n))).collect();
    let mut desired = Desired::new(Mode::Snapshot);
    desired.offer(&key(1, "A"), wanted(1, 2));
    desired.note_present(&key(2, "A"));
    let p = finish(desired, &base, Policy::default());
    assert_eq!(
        p.counts,
        Counts {
            unchanged: 1,
            ..Counts::default()
        }
    );
}

#[test]
fn auto_renewal_in_the_notice_window_only() {
    let mut s = stored(1);
    s.end_date = d("2026-12-10"); // 12 days left
    let mut w = wanted(1, 2);
    w.end_date = d("2026-12-10");
    let base: HashMap<_, _> = [(key(1, "A"), s)].into();
    let renew = Policy {
        auto_renew: true,
        ..Policy::default()
    };
    let p = plan(Mode::Snapshot, vec![(key(1, "A"), w)], &base, renew);
    assert_eq!(
        actions(&p),
        vec![(
            key(1, "A"),
            Action::Renew {
                end_date: d("2028-11-28")
            }
        )]
    );
    // Without the policy, nothing.
    let p = plan(
        Mode::Snapshot,
        vec![(key(1, "A"), w)],
        &base,
        Policy::default(),
    );
    assert_eq!(p.counts.unchanged, 1);
    // Never past the day before the age limit.
    w.last_day = d("2027-05-01");
    let p = plan(Mode::Snapshot, vec![(key(1, "A"), w)], &base, renew);
    assert_eq!(
        actions(&p),
        vec![(
            key(1, "A"),
            Action::Renew {
                end_date: d("2027-05-01")
            }
        )]
    );
}

#[test]
fn a_renewal_stands_until_the_source_sets_an_end() {
    let mut s = stored(1);
    s.end_date = d("2029-06-01");
    s.renewed = true;
    let base: HashMap<_, _> = [(key(1, "A"), s)].into();
    let p = plan(
        Mode::Snapshot,
        vec![(key(1, "A"), wanted(1, 2))],
        &base,
        Policy::default(),
    );
    assert_eq!(p.counts.unchanged, 1);
    let mut w = wanted(1, 2);
    w.end_from_source = true;
    w.end_date = d("2027-01-01");
    let p = plan(
        Mode::Snapshot,
        vec![(key(1, "A"), w)],
        &base,
        Policy::default(),
    );
    assert_eq!(actions(&p), vec![(key(1, "A"), Action::Update)]);
}

#[test]
fn a_decided_action_is_taken_once() {
    let mut desired = Desired::new(Mode::Snapshot);
    desired.offer(&key(1, "A"), wanted(1, 2));
    desired.plan(
        &HashMap::new(),
        d(TODAY),
        &Rules::default(),
        &Policy::default(),
    );
    assert_eq!(
        desired.take(&key(1, "A")).map(|(a, _)| a),
        Some(Action::Register)
    );
    assert_eq!(desired.take(&key(1, "A")), None);
    assert_eq!(desired.take(&key(9, "Z")), None);
}

#[test]
fn an_entry_stays_small() {
    // At ten million rows every byte of an entry is ten megabytes.
    assert_eq!(desired::entry_size(), 44);
}

/// Lookups find every entry, in every bucket, once sealed; an involvement
/// not offered is not found.
#[test]
fn many_entries_are_found() {
    let mut desired = Desired::new(Mode::Snapshot);
    let key = |n: u32| InvolvementKey {
        subject: SubjectKey(std::array::from_fn(|i| {
            (n.wrapping_mul(2_654_435_761) >> (i % 4 * 8)) as u8 ^ i as u8
        })),
        professional: ["A", "B"][n as usize % 2].into(),
    };
    for n in 0..100_000 {
        desired.offer(&key(n), wanted(1, u64::from(n) + 2));
    }
    desired.plan(
        &HashMap::new(),
        d(TODAY),
        &Rules::default(),
        &Policy::default(),
    );
    assert!(desired.duplicates().is_empty());
    assert_eq!(desired.decided().count(), 100_000);
    for n in (0..100_000).step_by(7) {
        let (action, w) = desired.take(&key(n)).expect("found");
        assert_eq!(
            (action, w.location),
            (Action::Register, Location::Line(u64::from(n) + 2))
        );
    }
    assert_eq!(desired.take(&key(100_001)), None);
}
