//! Where a signal goes from where it is: every change of `signals.state`
//! that follows an answer of the index or an operator's decision, decided
//! here once (pure functions), and written by the store's SQL. What a file
//! or poll changes is the planner's (`plan/`); this is the rest.

use super::states::{OutboxAction, SignalState};

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
}
