//! The dashboard's counters: items per user and UTC day (and per assistant and day), each moved with
//! an `ADD` in the same transaction as the message or call it counts, so a range is one Query.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use patchbay_domain::calls::Counters;
use patchbay_domain::{AssistantId, StoreError, UserId};
use time::OffsetDateTime;

use super::keys::Key;
use super::table::{s, DynamoStore, UNCONDITIONAL};

/// The UTC day a counter is kept under (`YYYY-MM-DD`).
pub(super) fn day_of(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl DynamoStore {
    /// The counters' move for one day (and, with an assistant, that assistant's share of the day),
    /// for a transaction: `ADD` of every non-zero counter.
    pub(super) fn stats_move(
        &self,
        user: &UserId,
        day: &str,
        assistant: Option<(AssistantId, &str)>,
        counters: &Counters,
    ) -> Result<TransactWriteItem, StoreError> {
        let all = [
            ("messages_sent", counters.messages_sent),
            ("messages_received", counters.messages_received),
            ("messages_delivered", counters.messages_delivered),
            ("messages_failed", counters.messages_failed),
            ("calls", counters.calls),
            ("call_seconds", counters.call_seconds),
            ("cost_micros", counters.cost_micros),
        ];
        let placeholders = [(":c0", "#c0"), (":c1", "#c1"), (":c2", "#c2"), (":c3", "#c3"), (":c4", "#c4"), (":c5", "#c5"), (":c6", "#c6")];
        let mut adds = Vec::new();
        let mut names: Vec<(&str, &str)> = vec![("#day", "day")];
        let mut values = vec![(":day", s(day))];
        for (i, (attr, v)) in all.iter().enumerate() {
            if *v != 0 {
                let (value, name) = placeholders[i];
                adds.push(format!("{name} {value}"));
                names.push((name, attr));
                values.push((value, AttributeValue::N(v.to_string())));
            }
        }
        let mut update = String::from("SET #day = :day");
        if let Some((id, name)) = assistant {
            update.push_str(", #aid = :aid, #an = :an");
            names.extend([("#aid", "assistant_id"), ("#an", "assistant_name")]);
            values.extend([(":aid", s(id.to_string())), (":an", s(name))]);
        }
        if !adds.is_empty() {
            update.push_str(&format!(" ADD {}", adds.join(", ")));
        }
        self.update(&Key::stats(user, day, assistant.map(|a| a.0)), &update, UNCONDITIONAL, &names, values)
    }
}
