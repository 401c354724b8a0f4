//! Where a signal goes from where it is: every change of `signals.state`
//! that follows an answer of the index, an operator's decision (an
//! objection, `visync release`, `visync decommission`), the law's clock
//! (expiry) or the comparison with the index (reconciliation), decided
//! here once (pure functions), and only applied by the store's SQL, which
//! binds the states these name. What a file or poll changes is the
//! planner's (`plan/`); this is the rest.

use super::states::{OutboxAction, OutboxState, SignalState, Stored};
use crate::domain::WithdrawReason;

/// The state a signal takes when the index confirmed `action`: a
/// withdrawal ends it, anything else leaves it live.
pub fn confirmed(action: OutboxAction) -> SignalState {
    match action {
        OutboxAction::Withdraw => SignalState::Withdrawn,
        _ => SignalState::Active,
    }
}

/// The states a confirmation of `action` moves a signal from. A later
/// update may already be queued (the signal is live either way); a
/// withdrawal queued behind a registration keeps its signal `withdrawing`
/// when the registration is confirmed, so only the withdrawal's own
/// confirmation moves it from there.
pub fn confirmed_from(action: OutboxAction) -> &'static [SignalState] {
    match action {
        OutboxAction::Withdraw => &[
            SignalState::Pending,
            SignalState::Active,
            SignalState::Withdrawing,
        ],
        _ => &SignalState::LIVE,
    }
}

/// The state a signal takes when the index refused `action` for good with
/// the item error `code`.
pub fn refused(action: OutboxAction, code: &str) -> SignalState {
    match action {
        OutboxAction::Register => SignalState::Rejected,
        // The index no longer has it as active (withdrawn, expired, purged).
        OutboxAction::Withdraw => SignalState::Withdrawn,
        OutboxAction::Renew => SignalState::Expired,
        // A withdrawn or expired signal cannot be corrected: the next
        // plan registers the involvement anew.
        OutboxAction::Update if code == "withdrawn" => SignalState::Expired,
        OutboxAction::Update => SignalState::Active,
    }
}

/// The state of a signal of ours whose id the index answered a conflict
/// with: the index holds it as active.
pub fn adopted() -> SignalState {
    SignalState::Active
}

/// What an objection does to one of the child's signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnObjection {
    /// A registration never tried: the index has never seen it, so it is
    /// withdrawn here (`Withdrawn`, reason `objection`) and nothing is sent.
    Drop,
    /// The index may hold it: a withdrawal (`objection`) is queued.
    Withdraw,
}

/// What an objection does to a signal in `state`; `unsent`: its
/// registration is queued and was never tried.
pub fn on_objection(state: SignalState, unsent: bool) -> OnObjection {
    if state == SignalState::Pending && unsent {
        OnObjection::Drop
    } else {
        OnObjection::Withdraw
    }
}

/// A held withdrawal let go (`visync release`, and every one at
/// `decommission`): the outbox row goes from `Held` to `Ready`, and its
/// signal is `Withdrawing` for the reason a withdrawal by snapshot has.
pub const RELEASE: Released = Released {
    from: OutboxState::Held,
    to: OutboxState::Ready,
    signal: SignalState::Withdrawing,
    reason: WithdrawReason::RiskEnded,
};

/// What letting a held withdrawal go does (`RELEASE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub from: OutboxState,
    pub to: OutboxState,
    pub signal: SignalState,
    pub reason: WithdrawReason,
}

/// What a decommission does to a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDecommission {
    /// A registration never tried: the index never saw it; deleted here.
    Drop,
    /// The index may hold it: its withdrawal (`risk_ended`) is queued.
    Withdraw,
    /// Not at the index: ended here, nothing sent.
    EndHere(SignalState, WithdrawReason),
    /// Ended already, or its withdrawal on its way.
    Leave,
}

/// What a decommission does to a signal in `state`; `unsent`: nothing
/// queued for it was ever tried (its registration was dropped).
pub fn on_decommission(state: SignalState, unsent: bool) -> OnDecommission {
    match state {
        SignalState::Pending if unsent => OnDecommission::Drop,
        SignalState::Pending | SignalState::Active => OnDecommission::Withdraw,
        SignalState::Missing => {
            OnDecommission::EndHere(SignalState::Withdrawn, WithdrawReason::RiskEnded)
        }
        SignalState::Withdrawing
        | SignalState::Withdrawn
        | SignalState::Expired
        | SignalState::Rejected => OnDecommission::Leave,
    }
}

/// The states a decommission leaves something to do for: the signals the
/// index may hold (`live_per_source`, `not_withdrawn`).
pub fn decommission_live(state: SignalState) -> bool {
    state == SignalState::Withdrawing || on_decommission(state, false) != OnDecommission::Leave
}

/// Where a signal past its end date or the day before the age limit goes
/// (`visync reconcile`, step 3); `None`: expiry leaves it. A `missing`
/// signal expires too: no re-registration can bring it back.
pub fn expired(state: SignalState) -> Option<SignalState> {
    match state {
        SignalState::Active | SignalState::Missing => Some(SignalState::Expired),
        _ => None,
    }
}

/// The states `expired` moves, as the SQL binds them.
pub const EXPIRABLE: [SignalState; 2] = [SignalState::Active, SignalState::Missing];

/// Where a signal goes that is not active at the index while it is here
/// (`visync reconcile`, step 1): an active one is `Missing`, registered
/// again under its own id when a source lists it; `None`: left as it is.
pub fn absent_at_index(state: SignalState) -> Option<SignalState> {
    match state {
        SignalState::Active => Some(SignalState::Missing),
        _ => None,
    }
}

/// Every state for which `pick` holds, in declaration order: the list a
/// `state IN (...)` binds.
pub fn states_where(pick: impl Fn(SignalState) -> bool) -> Vec<SignalState> {
    SignalState::ALL
        .iter()
        .copied()
        .filter(|s| pick(*s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_move_signals_as_the_protocol_says() {
        use OutboxAction::*;
        assert_eq!(confirmed(Register), SignalState::Active);
        assert_eq!(confirmed(Withdraw), SignalState::Withdrawn);
        assert!(!confirmed_from(Register).contains(&SignalState::Withdrawing));
        assert!(confirmed_from(Withdraw).contains(&SignalState::Withdrawing));
        assert_eq!(refused(Register, "bsn_invalid"), SignalState::Rejected);
        assert_eq!(refused(Update, "withdrawn"), SignalState::Expired);
        assert_eq!(refused(Update, "end_date_too_far"), SignalState::Active);
        assert_eq!(refused(Renew, "not_active"), SignalState::Expired);
        assert_eq!(refused(Withdraw, "not_found"), SignalState::Withdrawn);
    }

    #[test]
    fn an_objection_drops_only_what_the_index_never_saw() {
        assert_eq!(on_objection(SignalState::Pending, true), OnObjection::Drop);
        assert_eq!(
            on_objection(SignalState::Pending, false),
            OnObjection::Withdraw
        );
        assert_eq!(
            on_objection(SignalState::Active, true),
            OnObjection::Withdraw
        );
        assert_eq!(
            on_objection(SignalState::Withdrawing, false),
            OnObjection::Withdraw
        );
    }

    #[test]
    fn release_expiry_reconcile_and_decommission_decide_as_documented() {
        use SignalState::*;
        assert_eq!(RELEASE.signal, Withdrawing);
        assert_eq!(RELEASE.reason, WithdrawReason::RiskEnded);
        assert_eq!(
            (RELEASE.from, RELEASE.to),
            (OutboxState::Held, OutboxState::Ready)
        );
        assert_eq!(
            states_where(|s| expired(s).is_some()),
            EXPIRABLE.to_vec(),
            "the SQL binds what expired decides"
        );
        assert_eq!(expired(Missing), Some(Expired));
        assert_eq!(expired(Pending), None);
        assert_eq!(states_where(|s| absent_at_index(s).is_some()), [Active]);
        assert_eq!(absent_at_index(Active), Some(Missing));
        assert_eq!(on_decommission(Pending, true), OnDecommission::Drop);
        assert_eq!(on_decommission(Pending, false), OnDecommission::Withdraw);
        assert_eq!(on_decommission(Active, true), OnDecommission::Withdraw);
        assert_eq!(
            on_decommission(Missing, false),
            OnDecommission::EndHere(Withdrawn, WithdrawReason::RiskEnded)
        );
        assert_eq!(on_decommission(Withdrawing, false), OnDecommission::Leave);
        assert_eq!(
            states_where(decommission_live),
            [Pending, Active, Withdrawing, Missing]
        );
    }
}
