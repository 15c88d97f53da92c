//! The DynamoDB store against the real emulator: every rule is a condition or a transaction, and
//! each test checks what the table holds afterwards.

use patchbay_domain::kernel::provider::Created;
use patchbay_domain::profiles::{
    MessagingProfile, NewProfile, ProfileName, ProfilePatch, ProfileReader, ProfileSyncLedger, ProfileWriter, WhitelistedDestinations,
};
use patchbay_domain::{Conflict, IdempotencyKey, Limit, ProfileId, StoreError, SyncError, SyncState, UserId};
use patchbay_e2e::{user, Parts, TestEnv};
use time::OffsetDateTime;

const PARTS: Parts = Parts { api: false, worker: false };

fn new_profile(user: &UserId, name: &str) -> MessagingProfile {
    MessagingProfile::new(
        user.clone(),
        NewProfile {
            name: ProfileName::parse(name).unwrap(),
            whitelisted_destinations: WhitelistedDestinations::parse(&["US", "CA"]).unwrap(),
        },
        OffsetDateTime::now_utc(),
    )
}

fn uid() -> UserId {
    UserId::parse(&user().0).unwrap()
}

#[tokio::test]
async fn create_get_and_create_is_conditional() {
    let env = TestEnv::new(PARTS).await;
    let u = uid();
    let p = new_profile(&u, "Support");
    assert!(matches!(env.store.create_profile(&p, None).await.unwrap(), Created::New(_)));
    let got = env.store.get_profile(&u, p.id).await.unwrap();
    assert_eq!(got, p, "what was stored is what comes back");
    // The same key again is refused by attribute_not_exists, and the first item is untouched.
    let mut again = p.clone();
    again.name = ProfileName::parse("Overwritten").unwrap();
    assert!(matches!(env.store.create_profile(&again, None).await, Err(StoreError::Conflict(Conflict::AlreadyExists))));
    assert_eq!(env.store.get_profile(&u, p.id).await.unwrap().name.as_str(), "Support");
    // Another user cannot see it.
    assert!(matches!(env.store.get_profile(&uid(), p.id).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn idempotent_create_replays_and_refuses_a_different_body() {
    let env = TestEnv::new(PARTS).await;
    let u = uid();
    let key = IdempotencyKey::parse("create-1").unwrap();
    let first = new_profile(&u, "Sales");
    let fp = "Sales|US,CA";
    assert!(matches!(env.store.create_profile(&first, Some((&key, fp))).await.unwrap(), Created::New(_)));
    // A retry makes a new profile value (new id) but must answer the first one.
    let retry = new_profile(&u, "Sales");
    match env.store.create_profile(&retry, Some((&key, fp))).await.unwrap() {
        Created::Replayed(p) => assert_eq!(p.id, first.id),
        other => panic!("expected a replay, got {other:?}"),
    }
    let other_body = new_profile(&u, "Marketing");
    assert!(matches!(
        env.store.create_profile(&other_body, Some((&key, "Marketing|US,CA"))).await,
        Err(StoreError::Conflict(Conflict::IdempotencyKeyReused))
    ));
    let profiles = env.table_profiles(u.as_str()).await;
    assert_eq!(profiles.len(), 1, "exactly one profile in the table: {profiles:?}");
    assert_eq!(profiles[0].0, first.id.to_string());
}

#[tokio::test]
async fn list_pages_in_creation_order_without_gaps_or_repeats() {
    let env = TestEnv::new(PARTS).await;
    let u = uid();
    let mut ids = Vec::new();
    for i in 0..7 {
        let p = new_profile(&u, &format!("P{i}"));
        env.store.create_profile(&p, None).await.unwrap();
        ids.push(p.id);
    }
    let limit = Limit::parse(Some("3")).unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = env.store.list_profiles(&u, cursor.as_ref(), limit).await.unwrap();
        pages += 1;
        seen.extend(page.data.iter().map(|p| p.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every profile once, oldest first");
    // Exactly a page's worth: no empty trailing page.
    let six = Limit::parse(Some("7")).unwrap();
    assert!(env.store.list_profiles(&u, None, six).await.unwrap().next_cursor.is_none());
}

#[tokio::test]
async fn activation_moves_the_pointer_and_flips_both_profiles() {
    let env = TestEnv::new(PARTS).await;
    let u = uid();
    let (a, b) = (new_profile(&u, "A"), new_profile(&u, "B"));
    env.store.create_profile(&a, None).await.unwrap();
    env.store.create_profile(&b, None).await.unwrap();
    let now = OffsetDateTime::now_utc();

    let first = env.store.activate_profile(&u, a.id, now).await.unwrap();
    assert_eq!(first.deactivated, None);
    let second = env.store.activate_profile(&u, b.id, now).await.unwrap();
    assert_eq!(second.deactivated, Some(a.id));
    assert!(second.profile.active);
    // Activating the active one again is a no-op that names nothing deactivated.
    assert_eq!(env.store.activate_profile(&u, b.id, now).await.unwrap().deactivated, None);

    let table = env.table_profiles(u.as_str()).await;
    let active: Vec<_> = table.iter().filter(|p| p.1).map(|p| p.0.clone()).collect();
    assert_eq!(active, vec![b.id.to_string()]);
    assert_eq!(env.table_pointer(u.as_str()).await, Some(b.id.to_string()));
    assert_eq!(env.store.active_profile(&u).await.unwrap(), Some(b.id));

    assert!(matches!(env.store.activate_profile(&u, ProfileId::new_v7(), now).await, Err(StoreError::NotFound)));
    assert!(matches!(env.store.activate_profile(&uid(), a.id, now).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn deleting_the_active_profile_leaves_none_active_and_freezes_it() {
    let env = TestEnv::new(PARTS).await;
    let u = uid();
    let a = new_profile(&u, "A");
    env.store.create_profile(&a, None).await.unwrap();
    let now = OffsetDateTime::now_utc();
    env.store.activate_profile(&u, a.id, now).await.unwrap();

    let deleting = env.store.mark_deleting(&u, a.id, now).await.unwrap();
    assert_eq!(deleting.sync_state, SyncState::Deleting);
    assert!(!deleting.active);
    assert_eq!(env.table_pointer(u.as_str()).await, None, "the pointer went with the active profile");
    assert_eq!(env.table_profiles(u.as_str()).await, vec![(a.id.to_string(), false, "deleting".to_owned())]);

    // A second delete answers the same state; activating or renaming it is a conflict.
    assert_eq!(env.store.mark_deleting(&u, a.id, now).await.unwrap().version, deleting.version);
    assert!(matches!(env.store.activate_profile(&u, a.id, now).await, Err(StoreError::Conflict(Conflict::ProfileDeleting))));
    let patch = ProfilePatch::new(Some(ProfileName::parse("B").unwrap()), None).unwrap();
    assert!(matches!(env.store.update_profile(&u, a.id, &patch, now).await, Err(StoreError::Conflict(Conflict::ProfileDeleting))));

    // The worker purges it only at the version it saw.
    assert!(matches!(env.store.purge_profile(&u, a.id, deleting.version - 1).await, Err(StoreError::Conflict(Conflict::Stale))));
    env.store.purge_profile(&u, a.id, deleting.version).await.unwrap();
    assert!(env.table_profiles(u.as_str()).await.is_empty());
}

#[tokio::test]
async fn worker_writes_are_guarded_by_the_version() {
    let env = TestEnv::new(PARTS).await;
    let u = uid();
    let p = new_profile(&u, "A");
    env.store.create_profile(&p, None).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let patch = ProfilePatch::new(Some(ProfileName::parse("A2").unwrap()), None).unwrap();
    let renamed = env.store.update_profile(&u, p.id, &patch, now).await.unwrap();
    assert_eq!((renamed.version, renamed.name.as_str(), renamed.sync_state), (2, "A2", SyncState::Pending));

    let cid = patchbay_domain::CarrierProfileId::parse("c-1").unwrap();
    // A sync of version 1 finishing late must not mark version 2 synced.
    assert!(matches!(env.store.record_synced(&u, p.id, 1, &cid, now).await, Err(StoreError::Conflict(Conflict::Stale))));
    let err = SyncError { code: "10015".into(), message: "bad".into() };
    assert!(matches!(
        env.store.record_sync_failed(&u, p.id, 1, SyncState::Failed, &err, now).await,
        Err(StoreError::Conflict(Conflict::Stale))
    ));
    // ...but it keeps the carrier id it created, once.
    env.store.record_carrier_id(&u, p.id, &cid).await.unwrap();
    let other = patchbay_domain::CarrierProfileId::parse("c-2").unwrap();
    assert!(env.store.record_carrier_id(&u, p.id, &other).await.is_err());
    env.store.record_synced(&u, p.id, 2, &cid, now).await.unwrap();
    let got = env.store.get_profile(&u, p.id).await.unwrap();
    assert_eq!((got.sync_state, got.carrier_profile_id.map(|c| c.as_str().to_owned())), (SyncState::Synced, Some("c-1".to_owned())));
}

/// The reconciler's two new conditional writes raced (fault layer on): adopting a failed purchase
/// against another user buying the same number (exactly one owner, the guard naming the winner), and
/// two passes taking the lease at once (exactly one runs).
#[tokio::test]
async fn reconciler_adoption_races_a_rival_purchase_and_passes_race_for_the_lease() {
    use patchbay_domain::numbers::{NumberReader, NumberSyncLedger, NumberWriter};
    use patchbay_domain::numbers::{NumberStatus, PhoneNumber};
    use patchbay_domain::reconcile::{ReconcileLedger, LEASE_SECONDS};
    use patchbay_domain::{CarrierName, UserId, E164};
    use patchbay_domain::{Conflict, StoreError, SyncError};

    let env = TestEnv::new(Parts { api: false, worker: false }).await;
    let now = time::OffsetDateTime::now_utc();
    let (mut adopted, mut bought) = (0, 0);
    for round in 0..8u32 {
        let e164 = E164::parse(&format!("+1404555{:04}", 120 + round)).unwrap();
        let a = UserId::parse(&format!("adopter-{}", uuid::Uuid::new_v4().simple())).unwrap();
        let b = UserId::parse(&format!("buyer-{}", uuid::Uuid::new_v4().simple())).unwrap();
        let pending = PhoneNumber::new_purchase(a.clone(), e164.clone(), CarrierName::Sandbox, now);
        env.store.create_purchase(&pending, None).await.unwrap();
        let why = SyncError { code: "retries_exhausted".into(), message: "order still pending".into() };
        env.store.record_purchase_failed(&a, &e164, pending.version, &why, now).await.unwrap();
        let failed = env.store.get_number(&a, &e164).await.unwrap();
        assert_eq!(failed.status, NumberStatus::Failed);
        let rival = PhoneNumber::new_purchase(b.clone(), e164.clone(), CarrierName::Sandbox, now);
        let (adopt, buy) = tokio::join!(env.store.adopt_number(&failed, "sbx-PN1", now), env.store.create_purchase(&rival, None));
        let owner = env.owner_in_table(e164.as_str()).await;
        match (adopt, buy) {
            (Ok(()), Err(StoreError::Conflict(Conflict::NumberUnavailable))) => {
                adopted += 1;
                assert_eq!(owner.as_deref(), Some(a.as_str()));
                assert_eq!(env.store.get_number(&a, &e164).await.unwrap().status, NumberStatus::Active);
                assert!(matches!(env.store.get_number(&b, &e164).await, Err(StoreError::NotFound)), "the loser stored nothing");
            }
            (Err(StoreError::Conflict(Conflict::NumberUnavailable)), Ok(_)) => {
                bought += 1;
                assert_eq!(owner.as_deref(), Some(b.as_str()));
                assert_eq!(env.store.get_number(&a, &e164).await.unwrap().status, NumberStatus::Failed, "not adopted");
            }
            other => panic!("round {round}: exactly one must win: {other:?}"),
        }
    }
    assert_eq!(adopted + bought, 8);

    let mut taken = 0;
    for round in 0..5 {
        let (p1, p2) = (format!("pass-a-{round}"), format!("pass-b-{round}"));
        let (x, y) = tokio::join!(env.store.begin_pass(&p1, now, LEASE_SECONDS), env.store.begin_pass(&p2, now, LEASE_SECONDS));
        let winners: Vec<&str> =
            [(&p1, x.unwrap()), (&p2, y.unwrap())].into_iter().filter(|(_, c)| c.is_some()).map(|(p, _)| p.as_str()).collect();
        assert_eq!(winners.len(), 1, "round {round}: one pass holds the lease");
        env.store.end_pass(winners[0], &Default::default()).await.unwrap();
        taken += 1;
    }
    assert_eq!(taken, 5);
}
