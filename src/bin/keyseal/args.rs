//! The command line's shape: global options, commands and their flags (clap derive types).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use keyseal::{KeyStatus, RateLimit};

/// Keeps API keys and other secrets safe: encrypt secrets with per-user keys, issue and verify
/// API keys. Secrets are read from standard input, never from arguments.
#[derive(Parser)]
#[command(name = "keyseal", version, about, max_term_width = 100)]
pub struct Cli {
    /// The store (per-user data keys and API keys): a SQLite file, or a PostgreSQL URL
    /// (`postgres://USER@HOST:PORT/DATABASE?sslmode=…`; its password from `KEYSEAL_DB`,
    /// `PGPASSWORD` or a password file, never on the command line).
    #[arg(long, global = true, env = "KEYSEAL_DB", default_value = "keyseal.db")]
    pub db: PathBuf,
    /// A file holding the master key (base64); otherwise `API_KEY_MASTER_KEY` is used.
    #[arg(long, global = true, value_name = "PATH")]
    pub master_key_file: Option<PathBuf>,
    /// A file holding a previous master key (base64), used only to unwrap rows still wrapped
    /// under it during a rolling rotation; repeat for several. Also read from
    /// `KEYSEAL_PREVIOUS_MASTER_KEYS` (keys separated by commas or newlines).
    #[arg(long, global = true, value_name = "PATH")]
    pub previous_master_key_file: Vec<PathBuf>,
    /// A file holding the API keys' fast-verifier key (base64 of 32 bytes; also from
    /// `KEYSEAL_VERIFIER_KEY_FILE`, or the key itself in `KEYSEAL_VERIFIER_KEY`). Without
    /// one, keys are verified with bcrypt as always.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "KEYSEAL_VERIFIER_KEY_FILE"
    )]
    pub verifier_key_file: Option<PathBuf>,
    /// Print one JSON object instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
    /// bcrypt cost for new API keys (4-31). Verifying uses each key's own cost.
    #[arg(long, global = true, env = "KEYSEAL_BCRYPT_COST", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,
    /// Log what happens to stderr (-v info, -vv debug); never secrets.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Master key commands.
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// Encrypt standard input into a v2: token (one trailing newline is dropped).
    Encrypt(Target),
    /// Decrypt a v2: token read from standard input.
    Decrypt(Target),
    /// The lookup hash (hex SHA-256) of standard input (one trailing newline is dropped).
    Hash,
    /// API keys: create, verify, list, update, disable, enable, delete, revoke, rotate, import.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The store at a glance: backend, schema version, API keys by state, the change feed
    /// (how changes elsewhere arrive here, its position, how long a read takes), and, when a
    /// master key is given, the master keys and the pool key's versions. Secrets never shown.
    Status,
    /// Rewrap every user's data key under a new master key (all or nothing).
    RotateMaster {
        /// A file holding the new master key (base64).
        #[arg(long, value_name = "PATH")]
        new_master_key_file: PathBuf,
    },
    /// Add a new version of a user's key or of the pool key; new values use it, old ones still
    /// decrypt. Needs --force while the store is shared with the Python module, which reads only
    /// version 1.
    RotateKey {
        #[command(flatten)]
        target: Target,
        /// Rotate even though the Python module shares the store (it cannot read values
        /// written under the new version).
        #[arg(long)]
        force: bool,
    },
    /// List, disable, enable or destroy versions of a user's key or of the pool key.
    #[command(subcommand)]
    KeyVersion(KeyVersionCommand),
    /// Record whether the Python module shares this store (default yes): while it does,
    /// rotate-key needs --force.
    SharedWithPython {
        /// `yes` or `no`.
        #[arg(value_parser = ["yes", "no"])]
        shared: String,
    },
    /// Rewrap, under the current master key, the stored keys still wrapped under a previous
    /// one (rolling rotation; resumable, one transaction per batch).
    RewrapKeys {
        /// Keys per transaction.
        #[arg(long, value_name = "N", default_value_t = 1000,
              value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        batch: u32,
    },
    /// Re-encrypt the tokens of one column of one SQLite table in place: to the newest key
    /// version, or (--to-v3) to v3: tokens bound to their row.
    Rewrap(RewrapArgs),
    /// Encrypt the legacy plaintext values of one column of one table in place.
    Migrate(MigrateArgs),
    /// Database commands.
    #[command(subcommand)]
    Db(DbCommand),
    /// Copy the whole store at --db into a new, empty one (another backend too), then verify it.
    Copy(CopyArgs),
}

#[derive(Subcommand)]
pub enum DbCommand {
    /// Create or upgrade the store's tables: on PostgreSQL, with a role that may create
    /// tables (the servers can then use one that only reads and writes rows); a SQLite file
    /// needs nothing (its tables are made when first opened).
    Migrate,
}

#[derive(Args)]
pub struct CopyArgs {
    /// The new store: a SQLite file or a PostgreSQL URL; it must be empty. A URL with a
    /// password goes in `KEYSEAL_COPY_TO`.
    #[arg(long, env = "KEYSEAL_COPY_TO", value_name = "URL_OR_PATH")]
    pub to: PathBuf,
}

#[derive(Subcommand)]
pub enum MasterKeyCommand {
    /// Generate a new master key; writes it to --out (mode 0600) or prints it.
    Generate {
        /// Write the key to this new file (mode 0600) instead of standard output.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// The store's master keys (ids, never keys): which one is current, retired, and how many
    /// stored keys each wraps; and the live pool key versions.
    Status,
    /// Retire a master key by id (refused while stored keys still need it).
    Retire {
        /// The id shown by `master-key status`.
        id: String,
    },
}

/// Whose data key encrypts or decrypts: one user's, or the shared pool key.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// Use this user's data key (created on first use).
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Use the shared pool key derived from the master key.
    #[arg(long)]
    pub pool: bool,
}

#[derive(Subcommand)]
pub enum KeyVersionCommand {
    /// The versions and their states (active, disabled, destroyed).
    List(Target),
    /// Refuse decryption under a version (reversible).
    Disable(VersionArgs),
    /// Allow a disabled version again.
    Enable(VersionArgs),
    /// Delete a disabled version's key for good (a user's version 1 cannot be destroyed).
    Destroy(VersionArgs),
}

#[derive(Args)]
pub struct VersionArgs {
    #[command(flatten)]
    pub target: Target,
    /// The version number.
    pub version: u32,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Issue a new API key; it is shown once and never stored.
    Create(CreateArgs),
    /// Change a key in place (its key and hash never change).
    Update(UpdateArgs),
    /// Disable a key (refused as `disabled` until enabled again).
    Disable {
        #[arg(long, value_name = "ID")]
        user: String,
        key_id: String,
    },
    /// Enable a disabled key (a revoked key cannot be enabled).
    Enable {
        #[arg(long, value_name = "ID")]
        user: String,
        key_id: String,
    },
    /// Delete a key for good (refused as `unknown` from then on).
    Delete {
        #[arg(long, value_name = "ID")]
        user: String,
        key_id: String,
    },
    /// Verify an API key read from standard input: exit 0 if valid, 1 if refused.
    Verify {
        /// A scope the key must have (repeat: it must have all of them); refused as
        /// `forbidden` otherwise.
        #[arg(long = "require-scope", value_name = "S")]
        require_scopes: Vec<String>,
    },
    /// List one user's keys, or every key (never secrets or hashes).
    List {
        #[command(flatten)]
        whose: Whose,
        /// Only keys in this status: active, disabled, revoked, expired or rotated.
        #[arg(long, value_name = "S", value_parser = parse_status)]
        status: Option<KeyStatus>,
    },
    /// Revoke a key at once.
    Revoke {
        #[arg(long, value_name = "ID")]
        user: String,
        key_id: String,
    },
    /// Import keys from the systems keyseal replaces, without reissuing them: the same keys
    /// keep working. Re-running it updates what changed upstream; nothing is duplicated. Bad
    /// input refuses the whole import before anything is written, naming the line (the
    /// Keycloak user and key, the egregore row id) and the field, never a hash.
    Import(ImportArgs),
    /// Replace a key by a new one; the old one keeps working during --grace.
    Rotate {
        #[arg(long, value_name = "ID")]
        user: String,
        key_id: String,
        /// How long the old key keeps working, e.g. 24h; 0 ends it at once.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "24h")]
        grace: Duration,
    },
}

/// `keys create`'s flags.
#[derive(Args)]
pub struct CreateArgs {
    #[arg(long, value_name = "ID")]
    pub user: String,
    #[arg(long)]
    pub name: String,
    /// A scope (repeat for several).
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// Lifetime, e.g. 30d, 12h, 90m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expires_in: Option<Duration>,
    /// A per-key rate limit: N/s, N/min or N/h (e.g. 100/min).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub rate_limit: Option<RateLimit>,
    /// Metadata: a JSON object (at most 4 KiB).
    #[arg(long, value_name = "JSON", value_parser = parse_metadata)]
    pub metadata: Option<serde_json::Value>,
    /// A test key (`_test_` marker) instead of a live one.
    #[arg(long)]
    pub test: bool,
}

/// `keys import`'s flags: one input, and how to import it.
#[derive(Args)]
#[command(group(ArgGroup::new("from").required(true).args(["jsonl", "egregore", "keycloak_users"])))]
pub struct ImportArgs {
    /// A file with one key per line, a JSON object with exactly these fields: `user_id`,
    /// `name`, `scopes` (array of strings), `tag` (what the key starts with before its `_`,
    /// e.g. "mhu"), `bcrypt_hash` (of the whole key), and optionally `lookup` (the
    /// characters after the tag that the old store kept in clear), `expires_at` (ISO-8601 or
    /// null), `enabled` (default true), `created_at`, `last_used_at`, `rate_limit` ("100/min"
    /// or null), `source_id` (the key's id in the old system).
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// The egregore relay's PostgreSQL database: its whole `api_clients` table is read (`eg_`
    /// keys). Its password from `KEYSEAL_EGREGORE_URL` (the whole URL), `PGPASSWORD` or a
    /// password file, never on the command line.
    #[arg(long, value_name = "URL", env = "KEYSEAL_EGREGORE_URL")]
    pub egregore: Option<String>,
    /// With --egregore: who owns each key, the row's `client_id` (the default) or its
    /// `name`.
    #[arg(long, value_name = "COLUMN", value_parser = ["client_id", "name"],
          conflicts_with_all = ["jsonl", "keycloak_users"])]
    pub user_from: Option<String>,
    /// The Keycloak system's users as its admin API exports them (a JSON array of user
    /// representations): keys from their `apiKeys` attributes, owned by `user:{username}`,
    /// disabled when their user is. The file must hold every user: keys imported before and
    /// missing from it are deleted.
    #[arg(long, value_name = "FILE")]
    pub keycloak_users: Option<PathBuf>,
    /// With --keycloak-users: the kind of every key in the export, `mcpkey_live` (the
    /// default: that system only issues `mcpkey_live_` keys) or `mcpkey_test` (an export known
    /// to hold only `mcpkey_test_` keys).
    #[arg(long, value_name = "TAG", value_parser = ["mcpkey_live", "mcpkey_test"],
          conflicts_with_all = ["jsonl", "egregore"])]
    pub keycloak_tag: Option<String>,
    /// The name a re-import recognises the keys by (default: jsonl, egregore or keycloak);
    /// give each JSONL export of a different system its own.
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// With --jsonl: the file holds every key of its source, so keys imported from it before
    /// and missing now are deleted. --egregore and --keycloak-users are always complete: keys
    /// gone upstream are deleted.
    #[arg(long, conflicts_with_all = ["egregore", "keycloak_users"])]
    pub complete: bool,
    /// Count what would be created, updated, left unchanged and deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `keys update`'s flags.
#[derive(Args)]
pub struct UpdateArgs {
    #[arg(long, value_name = "ID")]
    pub user: String,
    pub key_id: String,
    /// A new name.
    #[arg(long)]
    pub name: Option<String>,
    /// The new set of scopes, replacing the whole old set (repeat for several).
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// A new lifetime from now, e.g. 30d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          conflicts_with = "no_expiry")]
    pub expires_in: Option<Duration>,
    /// Never expires.
    #[arg(long)]
    pub no_expiry: bool,
    /// A new rate limit: N/s, N/min or N/h.
    #[arg(long, value_name = "RATE", value_parser = parse_rate,
          conflicts_with = "no_rate_limit")]
    pub rate_limit: Option<RateLimit>,
    /// No rate limit.
    #[arg(long)]
    pub no_rate_limit: bool,
    /// New metadata, replacing the old: a JSON object (at most 4 KiB; `{}` clears it).
    #[arg(long, value_name = "JSON", value_parser = parse_metadata)]
    pub metadata: Option<serde_json::Value>,
}

/// Whose keys a listing shows: one user's, or everyone's.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Whose {
    /// This user's keys.
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Every user's keys (read page by page).
    #[arg(long)]
    pub all: bool,
}

/// `100/min`, `5/s`, `1000/h`.
fn parse_rate(text: &str) -> Result<RateLimit, String> {
    RateLimit::parse(text).map_err(|e| e.to_string())
}

/// A JSON object of at most 4 KiB (the library checks the bound again).
fn parse_metadata(text: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("metadata must be a JSON object".into()),
        Err(e) => Err(format!("metadata is not JSON: {e}")),
    }
}

fn parse_status(text: &str) -> Result<KeyStatus, String> {
    KeyStatus::parse(text)
        .ok_or_else(|| format!("{text:?}: one of active, disabled, revoked, expired, rotated"))
}

#[derive(Args)]
#[allow(clippy::struct_excessive_bools)] // Independent command line flags.
pub struct RewrapArgs {
    /// The table holding the tokens.
    #[arg(long)]
    pub table: String,
    /// The column of tokens.
    #[arg(long)]
    pub column: String,
    /// The column that identifies rows (primary key).
    #[arg(long, value_name = "COLUMN")]
    pub id_column: String,
    /// The column with each row's user id (per-user keys).
    #[arg(
        long,
        value_name = "COLUMN",
        conflicts_with = "pool",
        required_unless_present = "pool"
    )]
    pub user_column: Option<String>,
    /// Every row uses the pool key.
    #[arg(long)]
    pub pool: bool,
    /// Write v3: tokens bound to (table, context columns' values, column); the Python module
    /// cannot read them.
    #[arg(long)]
    pub to_v3: bool,
    /// The columns whose values bind each token to its row (default: the id column).
    #[arg(
        long,
        value_name = "COLUMNS",
        value_delimiter = ',',
        requires = "to_v3"
    )]
    pub context_columns: Vec<String>,
    /// --to-v3 even though the Python module shares the store (it cannot read v3: tokens).
    #[arg(long, requires = "to_v3")]
    pub force: bool,
    /// Rows per transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Count what would be done; change nothing in the table.
    #[arg(long, conflicts_with = "verify")]
    pub dry_run: bool,
    /// After rewrapping, decrypt every value and count.
    #[arg(long)]
    pub verify: bool,
    /// The database holding the table, when it is not the --db store: a SQLite file or a
    /// PostgreSQL URL (a URL with a password goes in `KEYSEAL_DATA_DB`).
    #[arg(long, env = "KEYSEAL_DATA_DB", value_name = "PATH_OR_URL")]
    pub data_db: Option<PathBuf>,
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The table holding the values.
    #[arg(long)]
    pub table: String,
    /// The column to encrypt.
    #[arg(long)]
    pub column: String,
    /// The column that identifies rows (primary key).
    #[arg(long, value_name = "COLUMN")]
    pub id_column: String,
    /// The column with each row's user id (per-user keys).
    #[arg(
        long,
        value_name = "COLUMN",
        conflicts_with = "pool",
        required_unless_present = "pool"
    )]
    pub user_column: Option<String>,
    /// Encrypt every row with the pool key.
    #[arg(long)]
    pub pool: bool,
    /// Rows per transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Count what would be done; change nothing on disk (the key store is not opened).
    #[arg(long, conflicts_with = "verify")]
    pub dry_run: bool,
    /// After migrating, decrypt every value and count.
    #[arg(long)]
    pub verify: bool,
    /// The database holding the table, when it is not the --db store: a SQLite file or a
    /// PostgreSQL URL (a URL with a password goes in `KEYSEAL_DATA_DB`).
    #[arg(long, env = "KEYSEAL_DATA_DB", value_name = "PATH_OR_URL")]
    pub data_db: Option<PathBuf>,
}

/// `30d`, `12h`, `90m`, `45s` or `0`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: add a unit: s, m, h or d (e.g. 30d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number then s, m, h or d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(seconds)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: too long (at most 100 years)"))
}
