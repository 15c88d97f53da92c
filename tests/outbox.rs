//! The crash-audit findings about work a state change starts, against the real store: every state
//! change writes its command in its own transaction (an outbox item, `OUT#{command id}`); a request
//! repeated after a lost answer finds its change made and writes the command again, or answers the
//! caller's own record, instead of refusing; sagas write the remote step's follow-up with the state
//! that needs it; SIP passwords are stored before the record names them. Each test fails on the code
//! before the outbox (no `OUT#` item, a 409, or a password the record does not name).

use patchbay_domain::dialer::{ConnectionName, ConnectionReader, ConnectionWriter, Dialer};
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::{NumberReader, NumberRole, NumberStatus, NumberSyncLedger, NumberWriter, PhoneNumber};
use patchbay_domain::profiles::{MessagingProfile, NewProfile, ProfileName, ProfileWriter, WhitelistedDestinations};
use patchbay_domain::voice_ai::{
    Assistant, AssistantName, AssistantReader, AssistantSettings, AssistantStatus, AssistantSyncLedger, AssistantWriter,
};
use patchbay_domain::{CarrierName, Conflict, StoreError, SyncError, SyncState, UserId, E164};
use patchbay_e2e::{s, user, Parts, TestEnv};
use time::OffsetDateTime;

const PARTS: Parts = Parts { api: false, worker: false };

fn uid() -> UserId {
    UserId::parse(&user().0).unwrap()
}

fn number(line: u32) -> E164 {
    E164::parse(&format!("+1312555{line:04}")).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The user's outbox items, as their sort keys without `OUT#` (a command id, `#again-…` for a
/// command written again).
async fn outbox(env: &TestEnv, user: &UserId) -> Vec<String> {
    let mut out: Vec<String> =
        env.user_items(user.as_str()).await.iter().filter_map(|i| s(i, "sk").strip_prefix("OUT#").map(str::to_owned)).collect();
    out.sort();
    out
}

fn sync_number(e164: &E164, version: u64) -> String {
    format!("sync-number-{}-v{version}", e164.as_str().trim_start_matches('+'))
}

/// An active number of the sandbox (bought keyless, recorded active by the worker's write).
async fn active_number(env: &TestEnv, user: &UserId, e164: &E164) -> PhoneNumber {
    let n = PhoneNumber::new_purchase(user.clone(), e164.clone(), CarrierName::Sandbox, now());
    env.store.create_purchase(&n, None).await.unwrap();
    env.store.record_active(user, e164, n.version, "sbx-PN1", now()).await.unwrap();
    env.store.get_number(user, e164).await.unwrap()
}

/// crash-audit F4, numbers: a purchase, an assignment and an unassignment each write their sync; a
/// keyless buy retried after a lost answer answers the caller's own pending purchase (not 409
/// `number_already_owned`); an unassign retried after its change was made answers the number and
/// writes its sync again (not 409 `number_not_on_profile`).
#[tokio::test]
async fn number_changes_write_their_sync_and_keyless_retries_answer_their_own() {
    let env = TestEnv::new(PARTS).await;
    let (u, e164) = (uid(), number(1));
    let first = PhoneNumber::new_purchase(u.clone(), e164.clone(), CarrierName::Sandbox, now());
    assert!(matches!(env.store.create_purchase(&first, None).await.unwrap(), Created::New(_)));
    assert_eq!(outbox(&env, &u).await, vec![sync_number(&e164, 1)], "the purchase's sync is in its transaction");
    // The same keyless buy again (its first answer lost): the caller's own pending purchase.
    let retry = PhoneNumber::new_purchase(u.clone(), e164.clone(), CarrierName::Sandbox, now());
    match env.store.create_purchase(&retry, None).await.unwrap() {
        Created::Replayed(n) => assert_eq!((n.status, n.version), (NumberStatus::Pending, 1)),
        other => panic!("a keyless retry answers the pending purchase: {other:?}"),
    }
    // Someone else is still refused.
    let theirs = PhoneNumber::new_purchase(uid(), e164.clone(), CarrierName::Sandbox, now());
    assert!(matches!(env.store.create_purchase(&theirs, None).await, Err(StoreError::Conflict(Conflict::NumberUnavailable))));

    env.store.record_active(&u, &e164, 1, "sbx-PN1", now()).await.unwrap();
    let profile = MessagingProfile::new(
        u.clone(),
        NewProfile { name: ProfileName::parse("Main").unwrap(), whitelisted_destinations: WhitelistedDestinations::all() },
        now(),
    );
    env.store.create_profile(&profile, None).await.unwrap();
    let on = env.store.assign_number(&u, &e164, profile.id, now()).await.unwrap();
    let off = env.store.unassign_number(&u, &e164, profile.id, now()).await.unwrap();
    assert_eq!(off.profile_sync, SyncState::Pending);
    let again = env.store.unassign_number(&u, &e164, profile.id, now()).await.unwrap();
    assert_eq!((again.version, again.messaging_profile_id), (off.version, None), "the retry answers the number as it is");
    let items = outbox(&env, &u).await;
    for v in [on.version, off.version] {
        assert!(items.contains(&sync_number(&e164, v)), "v{v}'s sync: {items:?}");
    }
    assert!(items.iter().any(|i| i.starts_with(&format!("{}#again-", sync_number(&e164, off.version)))), "written again: {items:?}");
    // Once the carrier has it off the profile, an unassign is about nothing: 409.
    env.store.record_number_profile_synced(&u, &e164, off.version, now()).await.unwrap();
    assert!(matches!(
        env.store.unassign_number(&u, &e164, profile.id, now()).await,
        Err(StoreError::Conflict(Conflict::NumberNotOnProfile))
    ));
}

fn assistant(user: &UserId, name: &str, selected: Option<E164>) -> Assistant {
    Assistant::new(user.clone(), AssistantName::parse(name).unwrap(), AssistantSettings::default(), selected, CarrierName::Sandbox, now())
}

fn reservation(a: &Assistant) -> PhoneNumber {
    let mut n = PhoneNumber::new_purchase(a.user_id.clone(), a.selected_number.clone().unwrap(), CarrierName::Sandbox, now());
    n.assistant_id = Some(a.id);
    n.assistant_sync = Some(SyncState::Pending);
    n
}

/// crash-audit F4, assistants: the saga is written with the assistant; a keyless create retried
/// after a lost answer answers the caller's own pending assistant (not 409, and the assistant is not
/// left pending with no saga); a different request for the same number is still refused.
#[tokio::test]
async fn an_assistant_is_written_with_its_saga_and_a_keyless_retry_answers_it() {
    let env = TestEnv::new(PARTS).await;
    let (u, e164) = (uid(), number(2));
    let a = assistant(&u, "Desk", Some(e164.clone()));
    assert!(matches!(env.store.create_assistant(&a, Some(&reservation(&a)), None).await.unwrap(), Created::New(_)));
    assert_eq!(outbox(&env, &u).await, vec![format!("sync-assistant-{}-v1", a.id)], "the saga, not the number's own sync");
    let retry = assistant(&u, "Desk", Some(e164.clone()));
    match env.store.create_assistant(&retry, Some(&reservation(&retry)), None).await.unwrap() {
        Created::Replayed(got) => assert_eq!(got.id, a.id),
        other => panic!("a keyless retry answers the pending assistant: {other:?}"),
    }
    let different = assistant(&u, "Another desk", Some(e164.clone()));
    assert!(matches!(
        env.store.create_assistant(&different, Some(&reservation(&different)), None).await,
        Err(StoreError::Conflict(Conflict::NumberAlreadyOwned))
    ));
    assert_eq!(env.store.list_assistants(&u, None, patchbay_domain::Limit::max()).await.unwrap().data.len(), 1);
}

/// crash-audit F6: the compensation of a saga whose Vapi step failed for good releases the number it
/// bought (its release command with it) and fails the assistant with Vapi's reason, in one
/// transaction: no number left `releasing` with no command, no reason lost.
#[tokio::test]
async fn a_compensation_releases_the_number_and_fails_the_assistant_at_once() {
    let env = TestEnv::new(PARTS).await;
    let (u, e164) = (uid(), number(3));
    let a = assistant(&u, "Refused", Some(e164.clone()));
    env.store.create_assistant(&a, Some(&reservation(&a)), None).await.unwrap();
    env.store.record_active(&u, &e164, 1, "sbx-PN3", now()).await.unwrap();
    let reason = SyncError { code: "vapi_refused".into(), message: "Vapi said no".into() };
    env.store.compensate(&u, a.id, a.version, &e164, &reason, now()).await.unwrap();
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!(n.status, NumberStatus::Releasing);
    assert!(outbox(&env, &u).await.contains(&sync_number(&e164, n.version)), "the release's command");
    let got = env.store.get_assistant(&u, a.id).await.unwrap();
    assert_eq!((got.status, got.failure.map(|f| f.code)), (AssistantStatus::Failed, Some("vapi_refused".to_owned())));
}

/// crash-audit F5 and F9: a number detached from a deleting assistant carries its own sync (the Vapi
/// side is its command's, not a list the saga rebuilds), and a role change on a SIP connection, a
/// bump the carrier never sees, has its command too (a sync in flight at the old version leaves the
/// rest to it).
#[tokio::test]
async fn detaches_and_role_changes_write_the_numbers_sync() {
    let env = TestEnv::new(PARTS).await;
    let u = uid();
    // F5: a number on an active assistant, detached by the delete saga.
    let e164 = number(4);
    active_number(&env, &u, &e164).await;
    let a = assistant(&u, "Leaving", None);
    env.store.create_assistant(&a, None, None).await.unwrap();
    env.store.record_assistant_active(&u, a.id, a.version, now()).await.unwrap();
    env.store.connect_number(&u, &e164, Some(a.id), now()).await.unwrap();
    let detached = env.store.detach_number(&u, &e164, a.id, now()).await.unwrap();
    assert_eq!((detached.assistant_id, detached.assistant_sync), (None, Some(SyncState::Pending)));
    assert!(outbox(&env, &u).await.contains(&sync_number(&e164, detached.version)), "the detach's sync");
    // Detached again (a redelivered saga): nothing changes.
    assert_eq!(env.store.detach_number(&u, &e164, a.id, now()).await.unwrap().version, detached.version);

    // F9: a number on a SIP connection changes role.
    let e164 = number(5);
    active_number(&env, &u, &e164).await;
    let c = patchbay_domain::dialer::SipConnection::new(u.clone(), ConnectionName::parse("Phones").unwrap(), CarrierName::Sandbox, now());
    env.store.create_connection(&c, None).await.unwrap();
    env.store.assign_voice(&u, &e164, c.id, NumberRole::Primary, now()).await.unwrap();
    let patch = patchbay_domain::dialer::AssignmentPatch { role: Some(NumberRole::Backup), active: None };
    let moved = env.store.update_voice(&u, &e164, c.id, &patch, now()).await.unwrap();
    let items = outbox(&env, &u).await;
    assert!(items.contains(&sync_number(&e164, moved.version)), "the role change's sync: {items:?}");
    assert!(items.contains(&format!("sync-connection-{}-v1", c.id)), "the connection's create: {items:?}");
}

/// crash-audit F13, F8 and F17: a connection's password is stored before its record (a replay of
/// the same key answers no password and stores no new one); a rotation stages
/// a new version that the record then names, leaving the version in use untouched; a rotation that
/// meets a deleted connection re-creates no secret.
#[tokio::test]
async fn passwords_are_stored_before_the_record_names_them() {
    let env = TestEnv::new(PARTS).await;
    let u = uid();
    let secrets = env.wiring.sip_secrets().clone();
    let ops = Dialer { store: env.wiring.store.as_ref(), secrets: secrets.as_ref(), dialers: env.wiring.dialers() };
    let key = patchbay_domain::IdempotencyKey::parse("conn-1").unwrap();
    let (created, shown) = ops.create(&u, ConnectionName::parse("Desk").unwrap(), None, Some(&key), now()).await.unwrap();
    let (Created::New(c), Some(first)) = (created, shown) else { panic!("a new connection and its password") };
    assert_eq!(secrets.get_password(c.id, None).await.unwrap().as_ref(), Some(&first));
    // The same key again (its answer lost): the connection, without its password (shown once), and
    // no second password written over the first (two replays used to race two new ones).
    let (replayed, shown_again) = ops.create(&u, ConnectionName::parse("Desk").unwrap(), None, Some(&key), now()).await.unwrap();
    assert!(matches!(replayed, Created::Replayed(ref r) if r.id == c.id));
    assert_eq!(shown_again, None);
    assert_eq!(secrets.get_password(c.id, None).await.unwrap().as_ref(), Some(&first));

    let (rotated, second) = ops.rotate_password(&u, c.id, now()).await.unwrap();
    let version = rotated.password_version.clone().expect("the record names the new version");
    assert_eq!(env.store.get_connection(&u, c.id).await.unwrap().password_version, Some(version.clone()));
    assert_eq!(secrets.get_password(c.id, Some(&version)).await.unwrap().as_ref(), Some(&second));
    assert_eq!(secrets.get_password(c.id, None).await.unwrap().as_ref(), Some(&first), "the password in use is untouched until pushed");
    assert!(outbox(&env, &u).await.contains(&format!("sync-connection-{}-v{}", c.id, rotated.version)));

    // Deleted meanwhile: the rotation finds no secret and makes none.
    secrets.delete_password(c.id).await.unwrap();
    assert!(ops.rotate_password(&u, c.id, now()).await.is_err());
    assert_eq!(secrets.get_password(c.id, None).await.unwrap(), None, "no secret re-created for a deleted connection");
}

/// crash-audit F7: a command whose last delivery fails leaves its resource visibly `failed`
/// (`retries_exhausted`), never waiting in flight for a command that is now in the dead-letter queue:
/// here a SIP connection whose password never arrived and a number whose profile never reached the
/// carrier, each on the queue's last delivery (`max_receive_count`).
#[tokio::test]
async fn a_last_delivery_that_fails_records_retries_exhausted() {
    use patchbay_domain::profiles::{ProfileReader, ProfileSyncLedger};
    use patchbay_e2e::record;
    use patchbay_worker::{Handled, Worker};
    let env = TestEnv::new(PARTS).await;
    let u = uid();
    let w = Worker { max_receive_count: 3, ..Worker::new(&env.wiring) };
    // A connection whose secret is missing (a record older than passwords stored first).
    let c =
        patchbay_domain::dialer::SipConnection::new(u.clone(), ConnectionName::parse("No password").unwrap(), CarrierName::Sandbox, now());
    env.store.create_connection(&c, None).await.unwrap();
    let cmd = patchbay_domain::CommandEnvelope::sync_connection(u.clone(), c.id, c.version);
    assert!(matches!(w.handle(&record(&cmd, 1)).await, Handled::Retry(_)));
    assert_eq!(env.store.get_connection(&u, c.id).await.unwrap().sync_state, SyncState::Pending, "not the last delivery: still pending");
    assert!(matches!(w.handle(&record(&cmd, 3)).await, Handled::Retry(_)), "still given back, so the queue dead-letters it");
    let got = env.store.get_connection(&u, c.id).await.unwrap();
    assert_eq!((got.sync_state, got.sync_error.map(|e| e.code)), (SyncState::Failed, Some("retries_exhausted".to_owned())));
    // The cause mended (the password stored), an operator redrives the dead command: its receive
    // count starts again, the connection goes back to pending and is created.
    env.wiring.sip_secrets().create_password(c.id, &patchbay_domain::dialer::SipPassword::generate()).await.unwrap();
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(patchbay_domain::kernel::sync::SyncOutcome::Created));
    let got = env.store.get_connection(&u, c.id).await.unwrap();
    assert_eq!((got.sync_state, got.sync_error), (SyncState::Synced, None));

    // A Telnyx number on a profile Telnyx does not have yet (nothing reaches the carrier).
    let server = wiremock::MockServer::start().await;
    let telnyx = patchbay_adapters::carrier::TelnyxClient::new(
        &server.uri(),
        secrecy::SecretString::from("KEY_test"),
        std::time::Duration::from_secs(2),
    )
    .unwrap();
    let carriers = patchbay_domain::numbers::Carriers { telnyx: Some(std::sync::Arc::new(telnyx)), ..Default::default() };
    let w = Worker { carriers, ..w };
    let e164 = number(6);
    let n = PhoneNumber::new_purchase(u.clone(), e164.clone(), CarrierName::Telnyx, now());
    env.store.create_purchase(&n, None).await.unwrap();
    env.store.record_active(&u, &e164, n.version, "telnyx-number-6", now()).await.unwrap();
    let profile = MessagingProfile::new(
        u.clone(),
        NewProfile { name: ProfileName::parse("Not yet").unwrap(), whitelisted_destinations: WhitelistedDestinations::all() },
        now(),
    );
    env.store.create_profile(&profile, None).await.unwrap();
    assert_eq!(env.store.get_profile(&u, profile.id).await.unwrap().carrier_profile_id, None);
    let on = env.store.assign_number(&u, &e164, profile.id, now()).await.unwrap();
    let cmd = patchbay_domain::CommandEnvelope::sync_number(u.clone(), e164.clone(), on.version);
    assert!(matches!(w.handle(&record(&cmd, 3)).await, Handled::Retry(_)));
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((n.profile_sync, n.profile_sync_error.map(|e| e.code)), (SyncState::Failed, Some("retries_exhausted".to_owned())));
    // The profile reaches Telnyx; a redrive of the number's dead command pushes its side.
    let cid = patchbay_domain::CarrierProfileId::parse("5b8e3c1a-0d2f-4e6a-9b7c-1f2e3d4c5b6a").unwrap();
    let p = env.store.get_profile(&u, profile.id).await.unwrap();
    env.store.record_synced(&u, profile.id, p.version, &cid, now()).await.unwrap();
    wiremock::Mock::given(wiremock::matchers::method("PATCH"))
        .and(wiremock::matchers::path("/phone_numbers/telnyx-number-6/messaging"))
        .and(wiremock::matchers::body_json(serde_json::json!({"messaging_profile_id": cid.as_str()})))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": {"id": "telnyx-number-6"}})))
        .expect(1)
        .mount(&server)
        .await;
    assert!(matches!(w.handle(&record(&cmd, 1)).await, Handled::Done(_)));
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((n.profile_sync, n.profile_sync_error), (SyncState::Synced, None));
}
