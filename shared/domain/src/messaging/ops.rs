//! Messaging's API side: queueing a send (the send-sms function), and conversations and contacts as
//! their owner reads and keeps them (the conversations function). Only the caller's conversations
//! exist for them.

use time::OffsetDateTime;

use crate::kernel::error::{Conflict, StoreError, ValidationError};
use crate::kernel::ids::{ConversationId, IdempotencyKey, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;
use crate::kernel::provider::Created;
use crate::messaging::model::{Contact, ContactPatch, Conversation, ConversationSearch, Message, OutboundSms};
use crate::messaging::ports::{ConversationStore, Outbox};
use crate::numbers::ports::NumberReader;

/// Queue a send: the checks, the message and its send command (an outbox item) in one transaction.
/// A replay with the same key answers the first message.
pub async fn queue_send(
    store: &dyn Outbox,
    numbers: &dyn NumberReader,
    user: &UserId,
    sms: OutboundSms,
    key: Option<&IdempotencyKey>,
    now: OffsetDateTime,
) -> Result<Created<Message>, SendError> {
    let number = numbers.get_number(user, &sms.from).await.map_err(|e| match e {
        StoreError::NotFound => SendError::NotOwned,
        other => SendError::Store(other),
    })?;
    let message = sms.into_message(user, number.carrier, now);
    let fingerprint = sms.fingerprint();
    store.queue_outbound(&sms, &number, &message, key.map(|k| (k, fingerprint.as_str()))).await.map_err(|e| match e {
        StoreError::NotFound => SendError::NotOwned,
        other => SendError::Store(other),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the sending number is not yours")]
    NotOwned,
    #[error(transparent)]
    Store(StoreError),
}

/// Why a conversations request did not answer what was asked. Each variant decides one status.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// No such conversation of this user (another user's does not exist for them).
    #[error("conversation not found")]
    NotFound,
    /// A cursor that no page of this list ever answered.
    #[error("{0}")]
    InvalidCursor(ValidationError),
    /// No such contact of this user (another user's does not exist for them).
    #[error("contact not found")]
    ContactNotFound,
    /// `POST /v1/contacts` for a number the user already has.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    #[error(transparent)]
    Store(StoreError),
}

impl ConversationError {
    fn invalid_cursor() -> Self {
        ConversationError::InvalidCursor(ValidationError::new(
            "cursor",
            "invalid_cursor",
            "must be a next_cursor value from a previous page",
        ))
    }
}

fn store(e: StoreError) -> ConversationError {
    match e {
        StoreError::Conflict(c) => ConversationError::Conflict(c),
        other => ConversationError::Store(other),
    }
}

/// A store error of a request that names one contact: `NotFound` is that contact's.
fn contact_store(e: StoreError) -> ConversationError {
    match e {
        StoreError::NotFound => ConversationError::ContactNotFound,
        other => store(other),
    }
}

/// A cursor's position, checked to be what the list pages by.
fn position<T>(cursor: Option<&Cursor>, parse: impl Fn(&str) -> Option<T>) -> Result<(), ConversationError> {
    match cursor {
        Some(c) if c.position().as_deref().and_then(&parse).is_none() => Err(ConversationError::invalid_cursor()),
        _ => Ok(()),
    }
}

/// How many store pages (of `Limit::MAX` conversations) one search reads at most before it answers
/// a short page with a `next_cursor`.
pub const SEARCH_PAGES: usize = 10;

pub struct Conversations<'a> {
    pub store: &'a dyn ConversationStore,
}

impl Conversations<'_> {
    /// The user's conversations, newest activity first; with a search, only those it matches, and
    /// then a page may hold fewer than `limit` and still have a `next_cursor` (the store is read in
    /// pages of the largest size, at most `SEARCH_PAGES` of them per answer).
    pub async fn list(
        &self,
        user: &UserId,
        search: Option<&ConversationSearch>,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Conversation>, ConversationError> {
        position(cursor, |p| ConversationId::parse(p).ok())?;
        let Some(search) = search else { return self.conversation_page(user, cursor, limit).await };
        let mut out = Vec::new();
        let mut cursor = cursor.cloned();
        for _ in 0..SEARCH_PAGES {
            let read = self.conversation_page(user, cursor.as_ref(), Limit::max()).await?;
            for c in read.data {
                if search.matches(&c) {
                    out.push(c);
                    if out.len() == usize::from(limit.get()) {
                        let next = out.last().map(|c| Cursor::encode(c.id.as_str()));
                        return Ok(Page { data: out, next_cursor: next });
                    }
                }
            }
            match read.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(Page { data: out, next_cursor: None }),
            }
        }
        // Everything up to the last conversation read was looked at: the next page starts after it.
        Ok(Page { data: out, next_cursor: cursor })
    }

    async fn conversation_page(
        &self,
        user: &UserId,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Conversation>, ConversationError> {
        self.store.list_conversations(user, cursor, limit).await.map_err(|e| match e {
            // The cursor names a conversation the user does not have.
            StoreError::NotFound => ConversationError::invalid_cursor(),
            other => store(other),
        })
    }

    /// A conversation's messages, newest first (both directions).
    pub async fn messages(
        &self,
        user: &UserId,
        id: &ConversationId,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Message>, ConversationError> {
        position(cursor, |p| p.parse::<uuid::Uuid>().ok())?;
        self.store.list_messages(user, id, cursor, limit).await.map_err(|e| match e {
            StoreError::NotFound => ConversationError::NotFound,
            other => store(other),
        })
    }

    /// Unread back to zero.
    pub async fn mark_read(&self, user: &UserId, id: &ConversationId) -> Result<Conversation, ConversationError> {
        self.store.mark_read(user, id).await.map_err(|e| match e {
            StoreError::NotFound => ConversationError::NotFound,
            other => store(other),
        })
    }

    /// A new contact; `Conflict(AlreadyExists)` if the user has one with that number.
    pub async fn create_contact(
        &self,
        user: &UserId,
        phone_number: E164,
        name: Option<String>,
        external_id: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Contact, ConversationError> {
        let contact = Contact { phone_number, name, external_id, opted_out: false, created_at: now };
        self.store.create_contact(user, &contact).await.map_err(store)
    }

    /// One of the user's contacts.
    pub async fn contact(&self, user: &UserId, phone_number: &E164) -> Result<Contact, ConversationError> {
        self.store.get_contact(user, phone_number).await.map_err(contact_store)
    }

    /// A contact's name and external id changed (`PATCH /v1/contacts/{e164}`); its opt-out untouched.
    /// No event: the catalogue has none for it.
    pub async fn update_contact(&self, user: &UserId, phone_number: &E164, patch: &ContactPatch) -> Result<Contact, ConversationError> {
        self.store.update_contact(user, phone_number, patch).await.map_err(contact_store)
    }

    /// The user's contacts in E.164 order.
    pub async fn contacts(&self, user: &UserId, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<Contact>, ConversationError> {
        position(cursor, |p| E164::parse(p).ok())?;
        self.store.list_contacts(user, cursor, limit).await.map_err(store)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};

    use async_trait::async_trait;

    use super::*;

    /// Runs a future whose every await is ready at once (the fake store's are).
    fn run<F: Future>(f: F) -> F::Output {
        match std::pin::pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the fake store never waits"),
        }
    }

    /// The user's conversations in list order, paged as the store pages them (by the last id).
    struct Fake {
        conversations: Vec<Conversation>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl ConversationStore for Fake {
        async fn list_conversations(&self, _: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Conversation>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let start = match after.and_then(Cursor::position) {
                Some(id) => self.conversations.iter().position(|c| c.id.as_str() == id).ok_or(StoreError::NotFound)? + 1,
                None => 0,
            };
            let n = usize::from(limit.get());
            let data: Vec<Conversation> = self.conversations.iter().skip(start).take(n).cloned().collect();
            let more = self.conversations.len() > start + n;
            let next_cursor = data.last().filter(|_| more).map(|c| Cursor::encode(c.id.as_str()));
            Ok(Page { data, next_cursor })
        }
        async fn list_messages(&self, _: &UserId, _: &ConversationId, _: Option<&Cursor>, _: Limit) -> Result<Page<Message>, StoreError> {
            unreachable!()
        }
        async fn mark_read(&self, _: &UserId, _: &ConversationId) -> Result<Conversation, StoreError> {
            unreachable!()
        }
        async fn create_contact(&self, _: &UserId, _: &Contact) -> Result<Contact, StoreError> {
            unreachable!()
        }
        async fn list_contacts(&self, _: &UserId, _: Option<&Cursor>, _: Limit) -> Result<Page<Contact>, StoreError> {
            unreachable!()
        }
        async fn get_contact(&self, _: &UserId, _: &E164) -> Result<Contact, StoreError> {
            unreachable!()
        }
        async fn update_contact(&self, _: &UserId, _: &E164, _: &ContactPatch) -> Result<Contact, StoreError> {
            unreachable!()
        }
    }

    /// 2,500 conversations; those at `named` have a contact named Ada.
    fn fake(named: &[usize]) -> Fake {
        let ours = E164::stored("+12125550100").unwrap();
        let conversations = (0..2500)
            .map(|i| {
                let contact = E164::stored(&format!("+1415555{i:04}")).unwrap();
                Conversation {
                    id: ConversationId::of(&ours, &contact),
                    our_number: ours.clone(),
                    contact,
                    contact_name: named.contains(&i).then(|| "Ada Lovelace".to_owned()),
                    unread: 0,
                    last_message_at: OffsetDateTime::UNIX_EPOCH,
                    last_message_preview: String::new(),
                }
            })
            .collect();
        Fake { conversations, reads: AtomicUsize::new(0) }
    }

    #[test]
    fn a_search_pages_on_with_short_pages_and_misses_nothing() {
        let store = fake(&[5, 1500, 2400]);
        let ops = Conversations { store: &store };
        let user = UserId::parse("user-1").unwrap();
        let ada = ConversationSearch::parse("ada").unwrap();
        let list =
            |cursor: Option<&Cursor>, limit: &str| run(ops.list(&user, Some(&ada), cursor, Limit::parse(Some(limit)).unwrap())).unwrap();
        let index = |c: &Conversation| store.conversations.iter().position(|x| x.id == c.id).unwrap();

        // At most SEARCH_PAGES store pages: a short page whose cursor is the last conversation read.
        let first = list(None, "20");
        assert_eq!(first.data.iter().map(index).collect::<Vec<_>>(), vec![5]);
        assert_eq!(store.reads.load(Ordering::SeqCst), SEARCH_PAGES);
        assert_eq!(first.next_cursor.as_ref().and_then(Cursor::position).as_deref(), Some(store.conversations[999].id.as_str()));
        let second = list(first.next_cursor.as_ref(), "20");
        assert_eq!(second.data.iter().map(index).collect::<Vec<_>>(), vec![1500]);
        let third = list(second.next_cursor.as_ref(), "20");
        assert_eq!((third.data.iter().map(index).collect::<Vec<_>>(), third.next_cursor), (vec![2400], None));

        // A full page stops reading at once; its cursor is its last match.
        store.reads.store(0, Ordering::SeqCst);
        let one = list(None, "1");
        assert_eq!((one.data.iter().map(index).collect::<Vec<_>>(), store.reads.load(Ordering::SeqCst)), (vec![5], 1));
        assert_eq!(one.next_cursor.as_ref().and_then(Cursor::position).as_deref(), Some(store.conversations[5].id.as_str()));

        // Without a search: one store page of the asked size.
        store.reads.store(0, Ordering::SeqCst);
        let plain = run(ops.list(&user, None, None, Limit::parse(Some("7")).unwrap())).unwrap();
        assert_eq!((plain.data.len(), store.reads.load(Ordering::SeqCst)), (7, 1));
        // A cursor that names no conversation of the user's is a bad cursor.
        let stranger = Cursor::encode("c12125550100-19995550100");
        assert!(matches!(run(ops.list(&user, Some(&ada), Some(&stranger), Limit::default())), Err(ConversationError::InvalidCursor(_))));
    }
}
