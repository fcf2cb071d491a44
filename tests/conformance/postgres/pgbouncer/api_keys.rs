//! The API-key suite through PgBouncer: `ApiKeys` and the other client both connect through
//! the pooler (the other client's lock is held inside one transaction, which keeps its
//! server connection).

use std::path::Path;

use keyseal::ApiKeys;

use crate::harness::Backend;
use crate::postgres::api_keys::{PgRaw, POSTGRES};

const THROUGH_PGBOUNCER: Backend = Backend {
    available: super::available,
    fresh: || Box::new(super::fresh()),
    try_open: |path, cfg| ApiKeys::open_with(path, cfg),
    open: |path, cfg| ApiKeys::open_with(path, cfg).unwrap(),
    raw: |path: &Path| Box::new(PgRaw::connect(path.to_str().unwrap())),
    sql: POSTGRES.sql,
};

crate::api_keys_suite!(THROUGH_PGBOUNCER);
