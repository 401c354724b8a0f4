//! The index client as the jobs see it: every call is told as an event
//! (`index_requests_total{endpoint,result}`, and whether the index accepts
//! our credentials), so that neither the sender nor the notices feed knows
//! about metrics or health.

use super::events::{CallResult, Event, Events};
use crate::index::{
    CallError, HttpIndex, IndexApi, ItemResult, ItemStatus, NoticePage, Payload, SignalPage,
};

pub struct ObservedIndex {
    inner: HttpIndex,
    events: Events,
}

impl ObservedIndex {
    pub fn new(inner: HttpIndex, events: Events) -> ObservedIndex {
        ObservedIndex { inner, events }
    }

    fn tell<T>(&self, endpoint: &'static str, result: &Result<T, CallError>, items_refused: bool) {
        let outcome = match result {
            Ok(_) if items_refused => CallResult::ItemError,
            Ok(_) => CallResult::Ok,
            Err(CallError::Transient { .. }) => CallResult::Transient,
            Err(CallError::Auth { .. } | CallError::Tls(_)) => CallResult::Auth,
            // A refused withdrawal (404/409) is the index saying "not active":
            // an answer about the item, not a failing call.
            Err(CallError::Refused { .. }) => CallResult::ItemError,
            Err(CallError::Malformed(_)) => CallResult::Other,
        };
        self.events.emit(Event::IndexCall {
            endpoint,
            result: outcome,
        });
        match outcome {
            CallResult::Auth => self.events.emit(Event::IndexAuth { refused: true }),
            CallResult::Transient => {}
            _ => self.events.emit(Event::IndexAuth { refused: false }),
        }
    }
}

impl IndexApi for ObservedIndex {
    async fn submit(&self, payloads: &[&Payload]) -> Result<Vec<ItemResult>, CallError> {
        let r = self.inner.submit(payloads).await;
        let refused = r
            .as_ref()
            .is_ok_and(|items| items.iter().any(|i| i.status == ItemStatus::Rejected));
        self.tell("batch", &r, refused);
        r
    }

    async fn withdraw(&self, signal_id: &str, reason: &str) -> Result<(), CallError> {
        let r = self.inner.withdraw(signal_id, reason).await;
        self.tell("withdraw", &r, false);
        r
    }

    async fn renew(&self, signal_id: &str, end_date: &str) -> Result<(), CallError> {
        let r = self.inner.renew(signal_id, end_date).await;
        self.tell("renew", &r, false);
        r
    }

    async fn notices(&self, after: Option<&str>, limit: u32) -> Result<NoticePage, CallError> {
        let r = self.inner.notices(after, limit).await;
        self.tell("notices", &r, false);
        r
    }

    async fn signals(
        &self,
        page_token: Option<&str>,
        page_size: u32,
    ) -> Result<SignalPage, CallError> {
        let r = self.inner.signals(page_token, page_size).await;
        self.tell("signals", &r, false);
        r
    }
}
