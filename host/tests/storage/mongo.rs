//! The contract suite on MongoDB through the real driver, twice:
//!
//! - `emulator`: against the nx-27017 wire-protocol emulator named by
//!   `ORDERD_TEST_NX27017_URI` (the README test command starts one). It is standalone and does
//!   not isolate concurrent transactions, so these cases run one at a time, and the cases that
//!   depend on what it gets wrong (see `EMULATOR_GAPS` and docs/mongodb.md) are skipped with
//!   the reason printed.
//! - `replica_set`: every case against the real MongoDB replica set named by
//!   `ORDERD_TEST_MONGODB_URI`, when there is one.
//!
//! Each test uses a database of its own. Plus checks only this backend has: the stored types,
//! the refusal of a standalone server, idempotent setup, change-stream availability.

use std::sync::Arc;

use async_trait::async_trait;
use mongodb::bson::{Bson, Document, doc};
use orderd::domain::Id;
use orderd::storage::mongo::{MongoOptions, MongoStore, WatchError};
use orderd::storage::{ProductStore, Store, StoreError};
use tokio::sync::{Mutex, MutexGuard};

use crate::contract::{Harness, product};
use crate::support_skip::{Need, service_env, skip};

/// Names the emulator's server; unset → the emulator cases are skipped.
const EMULATOR_ENV: &str = "ORDERD_TEST_NX27017_URI";
/// Set to `1` to run the cases listed in `EMULATOR_GAPS` on the emulator anyway (to re-check
/// the list after upgrading the emulator).
const RUN_GAPS_ENV: &str = "ORDERD_TEST_NX27017_RUN_GAPS";
/// Names a real replica set; unset → the replica-set cases are skipped.
const REPLICA_SET_ENV: &str = "ORDERD_TEST_MONGODB_URI";

/// Contract cases the emulator cannot pass with code written for MongoDB, and why.
const EMULATOR_GAPS: &[(&str, &str)] = &[
    (
        "a_started_batch_moves_orders_to_processing_and_claims_their_emails",
        SET_DATES,
    ),
    (
        "a_completed_batch_records_sends_processes_orders_and_fills_the_inbox",
        SET_DATES_AND_PIPELINES,
    ),
    (
        "a_kept_claim_blocks_other_deliveries_until_it_expires_then_a_sent_email_is_never_resent",
        SET_DATES_AND_PIPELINES,
    ),
    (
        "an_order_cancelled_before_its_confirmation_gets_none_and_its_cancellation_gets_one",
        SET_DATES_AND_PIPELINES,
    ),
    (
        "completing_a_batch_twice_changes_nothing_the_second_time",
        SET_DATES_AND_PIPELINES,
    ),
    (
        "the_same_event_twice_in_one_batch_is_claimed_sent_and_processed_once",
        PIPELINES,
    ),
    (
        "the_items_of_a_batch_are_handled_in_order_each_seeing_the_earlier_ones",
        PIPELINES,
    ),
    (
        "a_batch_mixing_done_and_new_events_handles_each_on_its_own",
        SET_DATES_AND_PIPELINES,
    ),
    (
        "concurrent_batches_of_the_same_events_claim_each_send_once",
        CONCURRENT,
    ),
    (
        "two_hundred_concurrent_orders_never_oversell_fifty_units",
        CONCURRENT,
    ),
    ("unknown_and_expired_refresh_tokens_are_invalid", SET_DATES),
    (
        "a_prune_deletes_published_events_past_the_retention_but_never_unpublished_ones_or_a_failed_orders",
        SET_DATES,
    ),
    (
        "patching_a_product_changes_only_the_given_fields",
        SET_DATES,
    ),
    (
        "allowed_transitions_move_the_order_and_stamp_the_time",
        SET_DATES,
    ),
    (
        "cancelling_restocks_and_writes_the_event_together",
        SET_DATES,
    ),
    ("orders_are_counted_by_status", SET_DATES),
    (
        "a_claimed_event_is_leased_to_its_owner_until_the_lease_ends",
        SET_DATES,
    ),
    (
        "the_events_of_one_order_are_claimed_in_write_order",
        SET_DATES,
    ),
    (
        "a_dead_event_does_not_block_the_later_events_of_its_order",
        SET_DATES,
    ),
    (
        "failed_events_back_off_then_die_and_a_retry_revives_them",
        SET_DATES,
    ),
    (
        "an_email_claim_excludes_others_until_it_expires_or_is_released",
        SET_DATES,
    ),
    (
        "every_change_of_the_active_plugin_bumps_its_generation",
        SET_DATES,
    ),
    (
        "presenting_a_rotated_away_token_revokes_its_family",
        SET_BOOLEANS,
    ),
    ("a_revoked_family_accepts_none_of_its_tokens", SET_BOOLEANS),
    (
        "two_concurrent_rotations_of_one_token_rotate_exactly_once",
        SET_BOOLEANS,
    ),
    (
        "a_users_orders_come_newest_first_page_by_page",
        OBJECT_ID_EQUALITY,
    ),
    ("committed_data_survives_reopening_the_store", ID_INDEX),
    (
        "a_customers_orders_in_one_status_are_only_theirs",
        OBJECT_ID_EQUALITY,
    ),
    (
        "retrying_a_failed_order_makes_it_pending_and_republishes_its_created_event",
        SET_DATES,
    ),
    (
        "within_the_grace_window_a_rotated_token_yields_the_same_successor_and_after_it_revokes",
        SET_DATES,
    ),
    (
        "concurrent_rotations_asking_for_the_same_successor_both_get_it",
        SET_DATES,
    ),
    (
        "ending_sessions_bumps_the_token_version_and_revokes_every_family_of_the_user",
        OBJECT_ID_EQUALITY,
    ),
    (
        "an_order_beyond_the_open_order_cap_is_refused_and_writes_nothing",
        COUNT_IN_TRANSACTION,
    ),
    (
        "an_orders_trail_is_its_events_in_write_order_each_with_the_email_it_sent",
        SET_DATES,
    ),
    (
        "order_counts_are_the_orders_placed_and_processed_in_the_window",
        OBJECT_ID_RANGE,
    ),
];

const COUNT_IN_TRANSACTION: &str = "the emulator cannot count documents inside a transaction (it answers \"No session specified\"), and matches no document on equality with an ObjectId field other than _id";

const CONCURRENT: &str = "the emulator does not isolate concurrent transactions";
const SET_DATES: &str = "the emulator stores dates written by $set as strings, so they no longer read back or compare as dates";
const PIPELINES: &str = "the emulator cannot run an update with an aggregation pipeline (it answers \"'list' object has no attribute 'keys'\")";
const SET_DATES_AND_PIPELINES: &str = "the emulator stores dates written by $set as strings, and cannot run an update with an aggregation pipeline";
const SET_BOOLEANS: &str = "the emulator stores booleans written by $set as the integer 1";
const ID_INDEX: &str = "reopening builds the orders index on (userId, _id), which the emulator cannot build over existing documents";
const OBJECT_ID_RANGE: &str = "the emulator matches no document on a range ($gte/$lt) of ObjectIds";
const OBJECT_ID_EQUALITY: &str =
    "the emulator matches no document on equality with an ObjectId field other than _id";

/// The emulator runs one test at a time: its transactions share one connection.
static EMULATOR_TURN: Mutex<()> = Mutex::const_new(());

/// The enclosing function's path (the contract macro expands one function per case, named
/// after the case), read from the type name of an item declared inside it.
macro_rules! enclosing_fn {
    () => {{
        fn here() {}
        std::any::type_name_of_val(&here)
    }};
}

/// The test's name as the harness prints it (`mongo::emulator::case`) from the path
/// [`enclosing_fn!`] read.
fn test_name(path: &str) -> String {
    path.split("::")
        .skip(1)
        .filter(|segment| *segment != "here" && *segment != "{{closure}}")
        .collect::<Vec<_>>()
        .join("::")
}

/// A database of its own on one MongoDB server, dropped when the test ends.
pub struct MongoHarness {
    /// The server, for reconnecting.
    uri: String,
    /// This test's own database.
    db_name: String,
    /// How the store was opened (the standalone opt-out on the emulator).
    options: MongoOptions,
    /// The store under test.
    store: MongoStore,
    /// Held for the whole test on the emulator.
    _turn: Option<MutexGuard<'static, ()>>,
}

impl MongoHarness {
    async fn open(
        uri: String,
        options: MongoOptions,
        turn: Option<MutexGuard<'static, ()>>,
    ) -> Self {
        let db_name = format!("orderd_test_{}", Id::new());
        let emulated = turn.is_some();
        let store = connect(&uri, &db_name, &options, emulated).await;
        Self {
            uri,
            db_name,
            options,
            store,
            _turn: turn,
        }
    }

    /// A harness on the emulator, or `None` (with the reason printed) when this case cannot
    /// run there.
    pub async fn emulator(case_path: &str) -> Option<Self> {
        let test = &test_name(case_path);
        let uri = service_env(EMULATOR_ENV, test)?;
        let segments: Vec<&str> = case_path.split("::").collect();
        let run_gaps = std::env::var(RUN_GAPS_ENV).is_ok_and(|v| v == "1");
        if let Some((_, why)) = EMULATOR_GAPS
            .iter()
            .find(|(case, _)| segments.contains(case))
            && !run_gaps
        {
            skip(test, Need::Unavailable(&format!("on the emulator: {why}")));
            return None;
        }
        let turn = EMULATOR_TURN.lock().await;
        Some(Self::open(uri, emulator_options(), Some(turn)).await)
    }

    /// A harness on the real replica set, or `None` (with the reason printed) without one.
    pub async fn replica_set(case_path: &str) -> Option<Self> {
        let Ok(uri) = std::env::var(REPLICA_SET_ENV) else {
            skip(
                &test_name(case_path),
                Need::Unavailable("needs a real MongoDB replica set (ORDERD_TEST_MONGODB_URI)"),
            );
            return None;
        };
        Some(Self::open(uri, MongoOptions::default(), None).await)
    }
}

impl Drop for MongoHarness {
    fn drop(&mut self) {
        let db = self.store.database().clone();
        // The contract cases run on multi-threaded runtimes, where blocking here is allowed.
        tokio::task::block_in_place(|| {
            if let Err(err) = tokio::runtime::Handle::current().block_on(async { db.drop().await })
            {
                eprintln!("could not drop the test database {}: {err}", self.db_name);
            }
        });
    }
}

/// The emulator answers as a standalone server.
fn emulator_options() -> MongoOptions {
    MongoOptions {
        allow_standalone: true,
        ..MongoOptions::default()
    }
}

#[async_trait]
impl Harness for MongoHarness {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    async fn reopen(&self) -> Arc<dyn Store> {
        Arc::new(
            connect(
                &self.uri,
                &self.db_name,
                &self.options,
                self._turn.is_some(),
            )
            .await,
        )
    }
}

/// Connects as the service does. On the emulator, the indexes that contain `_id` next to
/// another key (a user's orders, orders by status, a slot's versions, all newest first) are
/// then dropped: the
/// emulator refuses every later insert into a collection with such an index. They only speed
/// up queries, so the cases stay meaningful without them.
async fn connect(uri: &str, db_name: &str, options: &MongoOptions, emulated: bool) -> MongoStore {
    let store = MongoStore::connect(uri, db_name, options.clone())
        .await
        .expect("connect to MongoDB");
    if emulated {
        use futures::TryStreamExt;
        for collection in ["orders", "plugin_versions"] {
            let coll = store.database().collection::<Document>(collection);
            let indexes: Vec<_> = coll
                .list_indexes()
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            for index in indexes {
                let name = index.options.and_then(|o| o.name).unwrap_or_default();
                if name != "_id_" {
                    coll.drop_index(name)
                        .await
                        .expect("drop an index the emulator cannot maintain");
                }
            }
        }
    }
    store
}

contract_tests!(
    emulator,
    match crate::mongo::MongoHarness::emulator(enclosing_fn!()).await {
        Some(harness) => harness,
        None => return,
    }
);

contract_tests!(
    replica_set,
    match crate::mongo::MongoHarness::replica_set(enclosing_fn!()).await {
        Some(harness) => harness,
        None => return,
    }
);

#[test]
fn every_emulator_gap_names_a_contract_case() {
    let cases = include_str!("contract/mod.rs");
    for (case, _) in EMULATOR_GAPS {
        assert!(
            cases.contains(&format!("::{case},")),
            "{case} is not a contract case"
        );
    }
}

/// A store on a fresh database of the emulator, holding the emulator's turn.
async fn on_emulator() -> Option<MongoHarness> {
    MongoHarness::emulator(enclosing_fn!()).await
}

async fn raw(store: &MongoStore, collection: &str, id: Id) -> Document {
    store
        .database()
        .collection::<Document>(collection)
        .find_one(doc! { "_id": id.as_object_id() })
        .await
        .expect("read a raw document")
        .expect("the document exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_is_stored_as_int64_ids_as_object_ids_and_times_as_dates() {
    let Some(h) = on_emulator().await else { return };
    let mut tea = product(3_000_000_000, 1_000_000_000_000);
    tea.description = None;

    h.store.create_product(&tea).await.unwrap();

    let stored = raw(&h.store, "products", tea.id).await;
    assert_eq!(
        stored.get("_id"),
        Some(&Bson::ObjectId(tea.id.as_object_id()))
    );
    assert_eq!(stored.get("price"), Some(&Bson::Int64(1_000_000_000_000)));
    assert_eq!(stored.get("stock"), Some(&Bson::Int64(3_000_000_000)));
    assert!(
        matches!(stored.get("createdAt"), Some(Bson::DateTime(_))),
        "{stored}"
    );
    assert_eq!(stored.get("description"), Some(&Bson::Null));
    assert_eq!(h.store.product(tea.id).await.unwrap(), Some(tea));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_document_is_reported_as_a_backend_error() {
    let Some(h) = on_emulator().await else { return };
    let tea = product(5, 100);
    h.store.create_product(&tea).await.unwrap();
    h.store
        .database()
        .collection::<Document>("products")
        .update_one(
            doc! { "_id": tea.id.as_object_id() },
            doc! { "$set": { "currency": "not money" } },
        )
        .await
        .unwrap();

    let err = h.store.product(tea.id).await.unwrap_err();

    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_server_is_refused_with_the_fix_unless_allowed() {
    let Some(h) = on_emulator().await else { return };

    let refused = MongoStore::connect(&h.uri, &h.db_name, MongoOptions::default()).await;

    let message = format!(
        "{:#}",
        refused.err().expect("a standalone server is refused")
    );
    assert!(
        message.contains("replica set") && message.contains("docker compose"),
        "{message}"
    );
    // The store opened with the opt-out works (the harness itself connected with it).
    h.store.ping().await.unwrap();
    assert_eq!(h.store.backend_name(), "mongodb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_again_finds_the_collections_and_indexes_in_place() {
    let Some(h) = on_emulator().await else { return };
    let tea = product(5, 100);
    h.store.create_product(&tea).await.unwrap();

    let again = MongoStore::connect(&h.uri, &h.db_name, emulator_options())
        .await
        .unwrap();

    assert_eq!(again.product(tea.id).await.unwrap(), Some(tea));
    let indexes: Vec<Document> = {
        use futures::TryStreamExt;
        again
            .database()
            .collection::<Document>("users")
            .list_indexes()
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .map(|model| model.keys)
            .collect()
    };
    assert!(indexes.contains(&doc! { "email": 1 }), "{indexes:?}");
    assert!(indexes.contains(&doc! { "username": 1 }), "{indexes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_streams_are_reported_unavailable_on_a_standalone_server() {
    let Some(h) = on_emulator().await else { return };

    let outbox = h.store.watch_outbox().await;
    let plugins = h.store.watch_active_plugins().await;

    assert!(
        matches!(outbox, Err(WatchError::Unavailable(_))),
        "{:?}",
        outbox.err()
    );
    assert!(
        matches!(plugins, Err(WatchError::Unavailable(_))),
        "{:?}",
        plugins.err()
    );
    // The forwarding task gives up at once instead of retrying: its caller polls.
    let notify = Arc::new(tokio::sync::Notify::new());
    let task = h.store.spawn_wakeups(
        orderd::storage::mongo::WatchTarget::Outbox,
        Arc::clone(&notify),
        tokio_util::sync::CancellationToken::new(),
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("the wake-up task ends")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stored_without_a_republication_count_reads_as_never_republished() {
    let Some(h) = on_emulator().await else { return };
    let store: Arc<dyn Store> = Arc::new(h.store.clone());
    let tea = crate::contract::stocked(&store, 1, 10).await.remove(0);
    let (_, event) = crate::contract::place(&store, Id::new(), &[(&tea, 1)]).await;
    let stored = raw(&h.store, "outbox", event.id).await;
    // Written as Int64; the emulator reads small integers back as Int32.
    assert!(
        matches!(
            stored.get("republished"),
            Some(Bson::Int64(0) | Bson::Int32(0))
        ),
        "{stored}"
    );

    // As written before failed orders could be retried.
    h.store
        .database()
        .collection::<Document>("outbox")
        .update_one(
            doc! { "_id": event.id.as_object_id() },
            doc! { "$unset": { "republished": "" } },
        )
        .await
        .unwrap();

    let stored = raw(&h.store, "outbox", event.id).await;
    assert!(stored.get("republished").is_none(), "{stored}");
    let pending = store
        .list_outbox(orderd::domain::OutboxStatus::Pending, 10)
        .await
        .unwrap();
    assert_eq!(pending, vec![event]);
    assert_eq!(pending[0].republished, 0);
}
