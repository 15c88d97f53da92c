//! The event log's operations.

use crate::events::ports::{EventLog, EventPage};
use crate::kernel::error::StoreError;
use crate::kernel::event::{EventId, EventType};
use crate::kernel::ids::UserId;
use crate::kernel::page::Limit;

pub struct EventsApi<'a> {
    pub log: &'a dyn EventLog,
}

impl EventsApi<'_> {
    /// `GET /v1/events?after=&type=&limit=`: the caller's events, oldest first after `after`.
    pub async fn list(
        &self,
        user: &UserId,
        after: Option<&EventId>,
        event_type: Option<EventType>,
        limit: Limit,
    ) -> Result<EventPage, StoreError> {
        self.log.list_events(user, after, event_type, limit).await
    }
}
