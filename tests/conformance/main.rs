//! The conformance suite: the behaviour every storage backend must show, written once and run
//! for each backend. One test binary holds both suites:
//!
//! - the key store: the bodies in `keystore.rs`, each generic over a [`keystore::Harness`]
//!   (a fresh, empty store, and a way to open it as often as a test wants);
//! - API keys: the bodies in `api_keys*.rs`, each given a [`harness::Backend`] (how to open
//!   `ApiKeys` on a fresh store, and another client of the same store).
//!
//! `sqlite/` runs both against `SQLite`, `postgres/` against PostgreSQL (feature `postgres`; a
//! server from `scripts/pg-start.sh`, skipped with a note when none is configured, a failure
//! under `KEYSEAL_REQUIRE_POSTGRES=1` as `make test` sets it). A new backend joins with a
//! folder like them: for each suite, one harness (a `Harness` impl, a `Backend` value) and
//! one macro call
//! (`keystore_conformance!(MyHarness);`, `api_keys_suite!(MY_BACKEND);`, plus
//! `api_keys_write_lock_suite!` for a backend whose other client can be another process).
//! Temporary databases come from `tests/common/temp_db.rs`.
#![cfg(not(target_arch = "wasm32"))]
#![allow(missing_docs)]

#[path = "../common/mod.rs"]
mod common;

#[cfg(feature = "issuance")]
mod api_keys;
#[cfg(feature = "issuance")]
mod api_keys_admin;
#[cfg(feature = "issuance")]
mod api_keys_async;
#[cfg(feature = "issuance")]
mod api_keys_fleet_limits;
#[cfg(feature = "issuance")]
mod api_keys_import;
#[cfg(feature = "issuance")]
mod api_keys_lifecycle;
#[cfg(feature = "issuance")]
mod api_keys_storage;
#[cfg(feature = "issuance")]
mod api_keys_verifier;
#[cfg(feature = "issuance")]
mod harness;
#[cfg(feature = "keystore")]
mod keystore;
#[cfg(feature = "keystore")]
mod keystore_keyring;
#[cfg(feature = "keystore")]
mod keystore_versions;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

/// One `#[test]` per body `$module::$name`, each called with `$backend`.
#[macro_export]
macro_rules! tests_for {
    ($backend:expr; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if $backend.available() {
                    $crate::$module::$name(&$backend);
                }
            }
        )*
    };
}

/// Every API-key test, for one backend.
#[macro_export]
macro_rules! api_keys_suite {
    ($backend:expr) => {
        $crate::tests_for!(
            $backend;
            api_keys::create_verify_and_serialize,
            api_keys::every_refusal_reason,
            api_keys::tags_and_environments,
            api_keys::arguments_are_checked,
            api_keys::api_key_user_ids_follow_the_key_store_rule,
            api_keys::repeated_wrong_secret_costs_no_bcrypt_and_ids_are_throttled,
            api_keys::threads_share_one_manager,
            api_keys::two_instances_on_one_file,
            api_keys::revocation_during_a_first_validation_is_not_lost,
            api_keys_lifecycle::quota_of_active_keys,
            api_keys_lifecycle::chained_rotations_in_grace_count_against_the_quota,
            api_keys_lifecycle::rotation_with_grace,
            api_keys_lifecycle::list_shows_metadata_only_and_last_use,
            api_keys_lifecycle::last_use_is_written_at_most_once_per_interval,
            api_keys_lifecycle::bcrypt_vectors_from_pyca_as_imported_legacy_keys,
            api_keys_lifecycle::legacy_import_checks_and_expiry,
            api_keys_lifecycle::revoked_legacy_key_variants_past_byte_72_are_refused,
            api_keys_lifecycle::imported_bcrypt_cost_above_16_is_refused,
            api_keys_lifecycle::legacy_import_caps_scopes_as_create_does,
            api_keys_storage::revocation_seen_while_connection_busy_with_a_write,
            api_keys_storage::revocation_seen_and_verify_not_blocked_while_a_flush_waits,
            api_keys_storage::unreadable_row_fails_closed_and_does_not_stop_the_catch_up,
            api_keys_storage::rate_limit_survives_cache_eviction,
            api_keys_storage::rate_limit_holds_for_concurrent_first_verifications,
            api_keys_storage::legacy_lookup_shared_by_many_keys,
            api_keys_storage::two_legacy_formats_under_one_prefix,
            api_keys_storage::legacy_format_imported_elsewhere_is_known_within_the_check_interval,
            api_keys_storage::last_use_lands_when_dropped_while_the_store_is_busy,
            api_keys_admin::update_changes_a_key_in_place_here_and_in_another_instance,
            api_keys_admin::a_new_rate_limit_applies_to_a_cached_key,
            api_keys_admin::disable_and_enable_reach_every_cache,
            api_keys_admin::a_wrong_secret_never_learns_disabled_or_missing_scopes,
            api_keys_admin::scope_requirements_all_and_any,
            api_keys_admin::delete_makes_the_key_unknown_everywhere,
            api_keys_admin::bad_admin_input_changes_nothing,
            api_keys_admin::reviving_an_expired_key_counts_against_the_quota,
            api_keys_admin::list_pages_filter_by_status_and_stay_stable_under_inserts,
            api_keys_admin::concurrent_refreshes_never_outlive_a_revocation,
            api_keys_async::async_api_under_tokio_current_thread_and_block_on,
            api_keys_async::cached_async_verify_is_ready_at_once,
            api_keys_verifier::a_tagged_key_costs_a_new_process_no_bcrypt_right_or_wrong,
            api_keys_verifier::an_untagged_key_is_tagged_after_one_bcrypt,
            api_keys_verifier::another_verifier_key_falls_back_to_bcrypt_and_rewrites_the_tag,
            api_keys_verifier::refusals_hold_on_the_fast_path,
            api_keys_verifier::imported_legacy_keys_are_tagged_as_bcrypt_reads_them,
            api_keys_verifier::a_verifier_key_derived_from_the_master_key_is_the_same_everywhere,
            api_keys_verifier::tag_writes_stay_out_of_the_change_feed,
            api_keys_import::keys_without_a_lookup_are_upgraded_at_first_use,
            api_keys_import::imported_keys_keep_their_fields,
            api_keys_import::reimports_are_idempotent_and_follow_upstream,
            api_keys_import::bad_import_input_changes_nothing,
            api_keys_import::keys_with_a_stored_lookup_need_no_upgrade,
            api_keys_import::the_upgrade_scan_is_bounded,
            api_keys_import::a_key_refused_before_its_import_is_valid_once_imported,
            api_keys_import::a_reimport_does_not_extend_a_rotated_keys_grace,
            api_keys_import::concurrent_imports_of_the_same_keys_both_finish,
            api_keys_import::a_pending_key_whose_expiry_is_lifted_here_is_valid,
            api_keys_fleet_limits::two_instances_share_one_limit,
            api_keys_fleet_limits::one_verification_leases_one_token,
            api_keys_fleet_limits::a_dropped_instance_hands_back_its_lease,
            api_keys_fleet_limits::a_dead_holders_lease_expires_with_its_period,
            api_keys_fleet_limits::store_writes_per_admitted_request_are_bounded,
            api_keys_fleet_limits::an_unreachable_store_fails_closed,
            api_keys_fleet_limits::lease_writes_stay_out_of_the_change_feed,
        );
    };
}

/// The API-key tests in which another client holds the write lock: for a backend whose other
/// client can also be another process.
#[macro_export]
macro_rules! api_keys_write_lock_suite {
    ($backend:expr) => {
        $crate::tests_for!(
            $backend;
            api_keys_storage::revocation_seen_while_connection_busy_with_a_write,
            api_keys_storage::revocation_seen_and_verify_not_blocked_while_a_flush_waits,
            api_keys_storage::unreadable_row_fails_closed_and_does_not_stop_the_catch_up,
            api_keys_storage::last_use_lands_when_dropped_while_the_store_is_busy,
        );
    };
}
