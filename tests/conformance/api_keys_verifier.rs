//! The keyed fast verifier, whatever the backend: a new process (a second handle on the same
//! store) holding the verifier key verifies a tagged key, right or wrong, with no bcrypt;
//! untagged, imported and other-key rows fall back to bcrypt once and are tagged; every
//! refusal still holds on the fast path; a process without the key behaves as before.

use std::time::Duration;

use keyseal::testing::bcrypt_verifications as bcrypts;
use keyseal::{ApiKeys, ApiKeysConfig, KeyUpdate, MasterKey, NewKey, VerifierKey};

use crate::harness::{config, legacy_key, refusal, wrong_secret, Backend};

fn vk(byte: u8) -> VerifierKey {
    VerifierKey::from_bytes(&[byte; 32]).unwrap()
}

fn with_key(key: VerifierKey) -> ApiKeysConfig {
    config().verifier_key(key)
}

/// A handle opened now: a new process as far as caches go.
fn open(backend: &Backend, db: &dyn crate::harness::Place, cfg: ApiKeysConfig) -> ApiKeys {
    (backend.open)(db.path(), cfg)
}

pub(crate) fn a_tagged_key_costs_a_new_process_no_bcrypt_right_or_wrong(backend: &Backend) {
    let db = backend.fresh();
    let maker = open(backend, &*db, with_key(vk(1)));
    let made = maker.create(&NewKey::new("u", "ci").scope("read")).unwrap();

    let fresh = open(backend, &*db, with_key(vk(1)));
    let v = fresh.verify(&made.key).unwrap();
    assert_eq!(&*v.validated().unwrap().user_id, "u");
    assert_eq!(&*v.validated().unwrap().scopes, ["read"]);
    for n in 0..3 {
        let wrong = wrong_secret(&made.key, n);
        assert_eq!(refusal(&fresh.verify(&wrong).unwrap()), Some("unknown"));
    }
    assert_eq!(
        bcrypts(&fresh),
        0,
        "the tag must settle right and wrong keys"
    );

    // Without the verifier key: exactly as before, one bcrypt, and the tag left alone.
    let plain = open(backend, &*db, config());
    assert!(plain.verify(&made.key).unwrap().is_valid());
    assert_eq!(bcrypts(&plain), 1);
    plain.flush().unwrap();
    let again = open(backend, &*db, with_key(vk(1)));
    assert!(again.verify(&made.key).unwrap().is_valid());
    assert_eq!(bcrypts(&again), 0);
}

pub(crate) fn an_untagged_key_is_tagged_after_one_bcrypt(backend: &Backend) {
    let db = backend.fresh();
    // Made by a process without the verifier key (or before there was one): no tag.
    let made = open(backend, &*db, config())
        .create(&NewKey::new("u", "ci"))
        .unwrap();
    let first = open(backend, &*db, with_key(vk(1)));
    assert!(first.verify(&made.key).unwrap().is_valid());
    assert_eq!(bcrypts(&first), 1);
    // The tag is written with the last uses, never by the verify itself.
    first.flush().unwrap();
    let second = open(backend, &*db, with_key(vk(1)));
    assert!(second.verify(&made.key).unwrap().is_valid());
    assert_eq!(
        refusal(&second.verify(&wrong_secret(&made.key, 1)).unwrap()),
        Some("unknown")
    );
    assert_eq!(bcrypts(&second), 0);
}

pub(crate) fn another_verifier_key_falls_back_to_bcrypt_and_rewrites_the_tag(backend: &Backend) {
    let db = backend.fresh();
    let made = open(backend, &*db, with_key(vk(1)))
        .create(&NewKey::new("u", "ci"))
        .unwrap();
    // A process holding another key (the key was changed): never refuses the right key
    // for that, and a wrong key is judged by bcrypt.
    let other = open(backend, &*db, with_key(vk(2)));
    assert_eq!(
        refusal(&other.verify(&wrong_secret(&made.key, 1)).unwrap()),
        Some("unknown")
    );
    assert!(other.verify(&made.key).unwrap().is_valid());
    assert_eq!(bcrypts(&other), 2);
    other.flush().unwrap();
    let next = open(backend, &*db, with_key(vk(2)));
    assert!(next.verify(&made.key).unwrap().is_valid());
    assert_eq!(bcrypts(&next), 0, "the tag was rewritten under the new key");
    // And the old key's holders now fall back in turn.
    let old = open(backend, &*db, with_key(vk(1)));
    assert!(old.verify(&made.key).unwrap().is_valid());
    assert_eq!(bcrypts(&old), 1);
}

pub(crate) fn refusals_hold_on_the_fast_path(backend: &Backend) {
    let db = backend.fresh();
    let maker = open(backend, &*db, with_key(vk(1)).max_active_keys(None));
    let revoked = maker.create(&NewKey::new("u", "revoked")).unwrap();
    let disabled = maker.create(&NewKey::new("u", "disabled")).unwrap();
    let rotated = maker.create(&NewKey::new("u", "rotated")).unwrap();
    let expiring = maker.create(&NewKey::new("u", "expiring")).unwrap();
    let scoped = maker
        .create(&NewKey::new("u", "scoped").scope("read"))
        .unwrap();
    maker.revoke("u", &revoked.key_id).unwrap();
    maker.disable("u", &disabled.key_id).unwrap();
    let successor = maker.rotate("u", &rotated.key_id, Duration::ZERO).unwrap();
    maker
        .update(
            "u",
            &expiring.key_id,
            &KeyUpdate::new().expires_in(Duration::from_millis(1)),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));

    let fresh = open(backend, &*db, with_key(vk(1)));
    assert_eq!(
        refusal(&fresh.verify(&revoked.key).unwrap()),
        Some("revoked")
    );
    assert_eq!(
        refusal(&fresh.verify(&disabled.key).unwrap()),
        Some("disabled")
    );
    // A wrong secret never learns that the key is disabled.
    assert_eq!(
        refusal(&fresh.verify(&wrong_secret(&disabled.key, 1)).unwrap()),
        Some("unknown")
    );
    assert_eq!(
        refusal(&fresh.verify(&rotated.key).unwrap()),
        Some("expired")
    );
    assert_eq!(
        refusal(&fresh.verify(&expiring.key).unwrap()),
        Some("expired")
    );
    assert!(
        fresh.verify(&successor.key).unwrap().is_valid(),
        "tagged at rotation"
    );
    let deploy = keyseal::Requirement::all(["deploy"]);
    assert_eq!(
        refusal(&fresh.verify_with(&scoped.key, &deploy).unwrap()),
        Some("forbidden")
    );
    assert_eq!(bcrypts(&fresh), 0);
    // A revocation elsewhere reaches a key first verified through its tag.
    maker.revoke("u", &scoped.key_id).unwrap();
    let (answer, _, _) = crate::harness::until_refused(&fresh, &scoped.key, Duration::from_secs(5));
    assert_eq!(answer, "revoked");
}

pub(crate) fn imported_legacy_keys_are_tagged_as_bcrypt_reads_them(backend: &Backend) {
    let db = backend.fresh();
    let key = format!("mhu_LongKey0{}", "x".repeat(80));
    let mut l = legacy_key("mhu_", "LongKey0", bcrypt::hash(key.as_bytes(), 4).unwrap());
    l.key_id = Some("long".into());
    open(backend, &*db, config()).import_legacy(&l).unwrap();

    let first = open(backend, &*db, with_key(vk(1)));
    assert!(first.verify(&key).unwrap().is_valid());
    assert_eq!(bcrypts(&first), 1);
    first.flush().unwrap();

    let fresh = open(backend, &*db, with_key(vk(1)));
    // bcrypt reads 72 bytes: a variant past them is the same key, on the fast path too.
    let variant = format!("{}yz", &key[..80]);
    assert!(fresh.verify(&key).unwrap().is_valid());
    assert!(fresh.verify(&variant).unwrap().is_valid());
    let wrong = format!("mhu_LongKey0{}", "w".repeat(80));
    assert_eq!(refusal(&fresh.verify(&wrong).unwrap()), Some("unknown"));
    assert_eq!(bcrypts(&fresh), 0);
}

pub(crate) fn a_verifier_key_derived_from_the_master_key_is_the_same_everywhere(backend: &Backend) {
    let db = backend.fresh();
    let master = MasterKey::from_bytes(&[9; 32]).unwrap();
    let made = open(backend, &*db, with_key(VerifierKey::derive_from(&master)))
        .create(&NewKey::new("u", "ci"))
        .unwrap();
    let same = MasterKey::from_base64(&master.to_base64()).unwrap();
    let fresh = open(backend, &*db, with_key(VerifierKey::derive_from(&same)));
    assert!(fresh.verify(&made.key).unwrap().is_valid());
    assert_eq!(bcrypts(&fresh), 0);
}

pub(crate) fn tag_writes_stay_out_of_the_change_feed(backend: &Backend) {
    let db = backend.fresh();
    let made = open(backend, &*db, config())
        .create(&NewKey::new("u", "ci"))
        .unwrap();
    let before = open(backend, &*db, config()).status().feed_position;
    let tagger = open(backend, &*db, with_key(vk(1)));
    assert!(tagger.verify(&made.key).unwrap().is_valid());
    tagger.flush().unwrap();
    // The tag is there (a new process needs no bcrypt) ...
    let fresh = open(backend, &*db, with_key(vk(1)));
    assert!(fresh.verify(&made.key).unwrap().is_valid());
    assert_eq!(bcrypts(&fresh), 0);
    // ... and no other process was told of a change: like last use, it changes no verdict.
    assert_eq!(open(backend, &*db, config()).status().feed_position, before);
}
