//! The fault layer against the real emulator: it must fail the way DynamoDB and Lambda fail, or the
//! tests that run behind it prove nothing. A lost answer is a write applied and answered 500; the
//! SDK's own retry sends it again; a transaction's repeat is answered from its `ClientRequestToken`
//! (applied once), a single-item conditional write's repeat meets its own effect. A kill ends an
//! invocation at a call: nothing after it runs.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use patchbay_e2e::{Parts, TestEnv};
use patchbay_local::faults::{invocation, FaultControl, Faults, Killed};
use patchbay_local::stack::sdk_config;

const PARTS: Parts = Parts { api: false, worker: false };

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

async fn client_behind(env: &TestEnv, faults: Faults) -> (aws_sdk_dynamodb::Client, Arc<FaultControl>) {
    let control = FaultControl::new(faults);
    let sdk = control.wrap(&sdk_config(&env.shared.endpoint).await);
    (aws_sdk_dynamodb::Client::new(&sdk), control)
}

async fn item(env: &TestEnv, pk: &str) -> Option<HashMap<String, AttributeValue>> {
    let out =
        env.dynamo.get_item().table_name(&env.shared.info.table).key("pk", s(pk)).key("sk", s("T")).consistent_read(true).send().await;
    out.unwrap().item
}

fn pk(name: &str) -> String {
    format!("FAULTTEST#{name}#{}", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn a_transaction_whose_answer_is_lost_is_applied_once_and_succeeds() {
    let env = TestEnv::new(PARTS).await;
    let (db, control) = client_behind(&env, Faults { lost: 1.0, ..Faults::OFF }).await;
    let (a, counter) = (pk("tx-put"), pk("tx-counter"));
    let table = &env.shared.info.table;
    let put = Put::builder()
        .table_name(table)
        .item("pk", s(&a))
        .item("sk", s("T"))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .unwrap();
    let bump = Update::builder()
        .table_name(table)
        .key("pk", s(&counter))
        .key("sk", s("T"))
        .update_expression("ADD n :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .build()
        .unwrap();
    let out = db
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(put).build())
        .transact_items(TransactWriteItem::builder().update(bump).build())
        .send()
        .await;
    assert!(out.is_ok(), "the SDK's retry is answered from the token: {out:?}");
    let (lost, _, replays) = control.snapshot_effects();
    assert_eq!((lost, replays), (1, 1), "one answer lost, its repeat answered from the token");
    assert!(item(&env, &a).await.is_some());
    assert_eq!(item(&env, &counter).await.unwrap()["n"], AttributeValue::N("1".into()), "applied once, not twice");
}

#[tokio::test]
async fn a_single_conditional_write_whose_answer_is_lost_meets_its_own_effect() {
    let env = TestEnv::new(PARTS).await;
    let (db, control) = client_behind(&env, Faults { lost: 1.0, ..Faults::OFF }).await;
    let a = pk("single");
    let out = db
        .put_item()
        .table_name(&env.shared.info.table)
        .item("pk", s(&a))
        .item("sk", s("T"))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    // What real DynamoDB does to an SDK retry of an applied write: its condition fails against its
    // own effect. The write is in the table all the same.
    let err = out.expect_err("the repeat fails its condition");
    assert!(err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()), "{err:?}");
    assert!(item(&env, &a).await.is_some(), "the first attempt was applied");
    assert!(control.snapshot_effects().0 >= 1);
}

#[tokio::test]
async fn a_killed_invocation_runs_nothing_after_the_call_it_died_at() {
    let env = TestEnv::new(PARTS).await;
    let (db, control) = client_behind(&env, Faults { kill: 1.0, ..Faults::OFF }).await;
    let table = env.shared.info.table.clone();
    let mut first_applied = 0;
    for _ in 0..12 {
        let (a, b) = (pk("kill-a"), pk("kill-b"));
        let (db2, table2, a2, b2) = (db.clone(), table.clone(), a.clone(), b.clone());
        let out = invocation(async move {
            db2.put_item().table_name(&table2).item("pk", s(&a2)).item("sk", s("T")).send().await.ok();
            db2.put_item().table_name(&table2).item("pk", s(&b2)).item("sk", s("T")).send().await.ok();
        })
        .await;
        assert_eq!(out, Err(Killed));
        assert!(item(&env, &b).await.is_none(), "the second write never ran");
        first_applied += usize::from(item(&env, &a).await.is_some());
    }
    assert!(first_applied > 0 && first_applied < 12, "some die before their call, some after it applied: {first_applied}/12");
    assert_eq!(control.snapshot_effects().1, 12);
    // Outside an invocation (a test's own set-up) nothing is killed.
    let c = pk("outside");
    db.put_item().table_name(&table).item("pk", s(&c)).item("sk", s("T")).send().await.unwrap();
    assert!(item(&env, &c).await.is_some());
}

/// The store behind the layer with every applied write's answer lost: each single-item conditional
/// write (a put, an update, a delete) is sent again by the SDK, meets its own effect, and is
/// recognised as applied (its `write_id`), not read as a lost race. (Before the store stamped its
/// writes, each of these answered `already_exists`, `Stale` or `NotFound` for the caller's own write.)
#[tokio::test]
async fn the_stores_single_writes_whose_answers_are_lost_succeed() {
    use patchbay_domain::kernel::provider::Created;
    use patchbay_domain::profiles::WhitelistedDestinations;
    use patchbay_domain::profiles::{MessagingProfile, NewProfile, ProfileName, ProfileReader, ProfileSyncLedger, ProfileWriter};
    use patchbay_domain::{StoreError, SyncState, UserId};

    let env = TestEnv::new(PARTS).await;
    let (_, control) = client_behind(&env, Faults::OFF).await;
    control.set(Faults { lost: 1.0, ..Faults::OFF });
    let store = patchbay_adapters::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&control.wrap(&sdk_config(&env.shared.endpoint).await)),
        env.shared.info.table.clone(),
    );
    let user = UserId::parse(&patchbay_e2e::user().0).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let p = MessagingProfile::new(
        user.clone(),
        NewProfile {
            name: ProfileName::parse("Lost").unwrap(),
            whitelisted_destinations: WhitelistedDestinations::parse(&["US"]).unwrap(),
        },
        now,
    );
    // A keyless create is a conditional PutItem (attribute_not_exists).
    assert!(matches!(store.create_profile(&p, None).await, Ok(Created::New(_))), "the caller's own create is not a conflict");
    // record_synced is a version-guarded UpdateItem.
    let carrier_id = patchbay_domain::kernel::ids::CarrierProfileId::parse("lost-answer-profile").unwrap();
    store.record_synced(&user, p.id, p.version, &carrier_id, now).await.expect("the caller's own sync is not Stale");
    let stored = store.get_profile(&user, p.id).await.unwrap();
    assert_eq!(stored.sync_state, SyncState::Synced);
    let (lost, _, _) = control.snapshot_effects();
    assert!(lost >= 2, "answers were lost: {lost}");
    // A version-guarded delete of a record that is gone meets its own effect.
    let d = store.mark_deleting(&user, p.id, now).await.expect("the caller's own mark is not a conflict");
    store.purge_profile(&user, p.id, d.version).await.expect("the caller's own purge is not Stale");
    assert!(matches!(store.get_profile(&user, p.id).await, Err(StoreError::NotFound)));
}

/// The transactional outbox (crash-audit F4): a profile create whose invocation dies right after its
/// transaction applied has started its sync all the same: the command is an item of that
/// transaction, and the relay takes it from the table's stream to the work queue. (When the API
/// wrote, then sent the command, a death between the two left the profile `pending` for ever.)
#[tokio::test]
async fn a_state_change_whose_invocation_dies_after_it_still_starts_its_work() {
    use patchbay_domain::profiles::{NewProfile, ProfileName, ProfileReader, Profiles, WhitelistedDestinations};
    use patchbay_domain::UserId;

    let env = TestEnv::new(PARTS).await;
    let control = FaultControl::new(Faults { kill: 1.0, ..Faults::OFF });
    let store = patchbay_adapters::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&control.wrap(&sdk_config(&env.shared.endpoint).await)),
        env.shared.info.table.clone(),
    );
    let user = UserId::parse(&patchbay_e2e::user().0).unwrap();
    // Every call dies (half before it is sent, half after it applied): try until one applied.
    let mut applied = None;
    for attempt in 0..40 {
        let input = NewProfile {
            name: ProfileName::parse(&format!("Dies {attempt}")).unwrap(),
            whitelisted_destinations: WhitelistedDestinations::parse(&["US"]).unwrap(),
        };
        let out = invocation(Profiles { store: &store }.create(&user, input, None, time::OffsetDateTime::now_utc())).await;
        assert!(out.is_err(), "the invocation was killed");
        let profiles = env.store.list_profiles(&user, None, patchbay_domain::Limit::parse(Some("50")).unwrap()).await.unwrap();
        if let Some(p) = profiles.data.into_iter().next() {
            applied = Some(p);
            break;
        }
    }
    let p = applied.expect("a create applied before its invocation died");
    let want = format!("sync-profile-{}-v{}", p.id, p.version);
    // Its command reaches the work queue through the outbox: the relay, as the local stack runs it.
    let _relay = env.spawn_relay().await;
    let found =
        patchbay_e2e::eventually(30, || async { env.peek_work_queue().await.iter().any(|b| b.contains(&want)).then_some(()) }).await;
    assert!(found.is_some(), "{want} was never queued");
}
