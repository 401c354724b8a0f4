//! The protocol's closed sets of words (index-api.md): a subject's gender and
//! the reasons a signal is withdrawn for. The index's own, like its BSN check
//! and rules: nothing here comes from the connector.

/// `subject.gender`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Male,
    Female,
    Other,
    Unknown,
}

impl Gender {
    pub fn parse(s: &str) -> Option<Gender> {
        match s {
            "male" => Some(Gender::Male),
            "female" => Some(Gender::Female),
            "other" => Some(Gender::Other),
            "unknown" => Some(Gender::Unknown),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
}

/// The `reason` of `POST /v1/signals/{id}/withdraw`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawReason {
    /// The concern is over: the signal is archived.
    RiskEnded,
    /// The signal should never have been made: purged at once.
    Unjustified,
    /// The child or the parents objected: purged at once.
    Objection,
    /// Purged at once.
    Deceased,
}

impl WithdrawReason {
    pub fn parse(s: &str) -> Option<WithdrawReason> {
        match s {
            "risk_ended" => Some(WithdrawReason::RiskEnded),
            "unjustified" => Some(WithdrawReason::Unjustified),
            "objection" => Some(WithdrawReason::Objection),
            "deceased" => Some(WithdrawReason::Deceased),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawReason::RiskEnded => "risk_ended",
            WithdrawReason::Unjustified => "unjustified",
            WithdrawReason::Objection => "objection",
            WithdrawReason::Deceased => "deceased",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_read_back_as_written() {
        for g in ["male", "female", "other", "unknown"] {
            assert_eq!(Gender::parse(g).map(Gender::as_str), Some(g));
        }
        for r in ["risk_ended", "unjustified", "objection", "deceased"] {
            assert_eq!(
                WithdrawReason::parse(r).map(WithdrawReason::as_str),
                Some(r)
            );
        }
        assert_eq!(Gender::parse("m"), None);
        assert_eq!(Gender::parse("Male"), None);
        assert_eq!(WithdrawReason::parse("moved"), None);
    }
}
