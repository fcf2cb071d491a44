//! `keyseal`: the command line, a thin layer over the library (CONTRACT §5).
//!
//! Secrets come on standard input, never as arguments. Exit 0 on success, 1 when refused or
//! failed (one line on stderr), 2 on bad usage (clap's message).

use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use keyseal::migrate::{migrate_column, verify_column, KeySource, MigrateOptions, Progress};
use keyseal::{
    api_key_hash, decrypt, encrypt, parse_master_key, ApiKeys, ApiKeysConfig, CreatedKey, DataKey,
    Error, KeyStore, MasterKey, NewKey, Verification, MASTER_KEY_ENV,
};

/// Keeps API keys and other secrets safe: encrypt secrets with per-user keys, issue and verify
/// API keys. Secrets are read from standard input, never from arguments.
#[derive(Parser)]
#[command(name = "keyseal", version, about, max_term_width = 100)]
struct Cli {
    /// The SQLite store (per-user data keys and API keys).
    #[arg(long, global = true, env = "KEYSEAL_DB", default_value = "keyseal.db")]
    db: PathBuf,
    /// A file holding the master key (base64); otherwise `API_KEY_MASTER_KEY` is used.
    #[arg(long, global = true, value_name = "PATH")]
    master_key_file: Option<PathBuf>,
    /// Print one JSON object instead of human output.
    #[arg(long, global = true)]
    json: bool,
    /// bcrypt cost for new API keys (4-31). Verifying uses each key's own cost.
    #[arg(long, global = true, env = "KEYSEAL_BCRYPT_COST", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    bcrypt_cost: u32,
    /// Log what happens to stderr (-v info, -vv debug); never secrets.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Master key commands.
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// Encrypt standard input into a v2: token (one trailing newline is dropped).
    Encrypt(Target),
    /// Decrypt a v2: token read from standard input.
    Decrypt(Target),
    /// The lookup hash (hex SHA-256) of standard input (one trailing newline is dropped).
    Hash,
    /// API keys: create, verify, list, revoke, rotate.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Rewrap every user's data key under a new master key (all or nothing).
    RotateMaster {
        /// A file holding the new master key (base64).
        #[arg(long, value_name = "PATH")]
        new_master_key_file: PathBuf,
    },
    /// Encrypt the legacy plaintext values of one column of one SQLite table in place.
    Migrate(MigrateArgs),
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Generate a new master key; writes it to --out (mode 0600) or prints it.
    Generate {
        /// Write the key to this new file (mode 0600) instead of standard output.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct Target {
    /// Use this user's data key (created on first use).
    #[arg(long, value_name = "ID")]
    user: Option<String>,
    /// Use the shared pool key derived from the master key.
    #[arg(long)]
    pool: bool,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Issue a new API key; it is shown once and never stored.
    Create {
        #[arg(long, value_name = "ID")]
        user: String,
        #[arg(long)]
        name: String,
        /// A scope (repeat for several).
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// Lifetime, e.g. 30d, 12h, 90m.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires_in: Option<Duration>,
    },
    /// Verify an API key read from standard input: exit 0 if valid, 1 if refused.
    Verify,
    /// List a user's keys (never secrets or hashes).
    List {
        #[arg(long, value_name = "ID")]
        user: String,
    },
    /// Revoke a key at once.
    Revoke {
        #[arg(long, value_name = "ID")]
        user: String,
        key_id: String,
    },
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

#[derive(Args)]
struct MigrateArgs {
    /// The table holding the values.
    #[arg(long)]
    table: String,
    /// The column to encrypt.
    #[arg(long)]
    column: String,
    /// The column that identifies rows (primary key).
    #[arg(long, value_name = "COLUMN")]
    id_column: String,
    /// The column with each row's user id (per-user keys).
    #[arg(
        long,
        value_name = "COLUMN",
        conflicts_with = "pool",
        required_unless_present = "pool"
    )]
    user_column: Option<String>,
    /// Encrypt every row with the pool key.
    #[arg(long)]
    pool: bool,
    /// Rows per transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Count what would be done; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// After migrating, decrypt every value and count.
    #[arg(long)]
    verify: bool,
    /// The database holding the table, when it is not the --db store.
    #[arg(long, value_name = "PATH")]
    data_db: Option<PathBuf>,
}

/// A failure to report: one line on stderr, exit 1.
struct Failure(String);

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure(err.to_string())
    }
}

type Outcome = Result<ExitCode, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.verbose > 0 {
        let level = if cli.verbose > 1 {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        };
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .init();
    }
    match run(&cli) {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("keyseal: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Outcome {
    match &cli.command {
        Command::MasterKey(MasterKeyCommand::Generate { out }) => generate(cli, out.as_deref()),
        Command::Encrypt(target) => {
            let plaintext = read_stdin_line()?;
            let key = data_key(cli, target)?;
            let token = encrypt(&plaintext, &key)?;
            Ok(print(cli, &json!({ "token": token }), &token))
        }
        Command::Decrypt(target) => {
            let token = read_stdin_line()?;
            let key = existing_data_key(cli, target)?;
            let plaintext = Zeroizing::new(decrypt(token.trim(), &key)?);
            Ok(print(cli, &json!({ "plaintext": *plaintext }), &plaintext))
        }
        Command::Hash => {
            let input = read_stdin_line()?;
            let hash = api_key_hash(&input);
            Ok(print(cli, &json!({ "hash": hash }), &hash))
        }
        Command::Keys(command) => keys(cli, command),
        Command::RotateMaster {
            new_master_key_file,
        } => rotate_master(cli, new_master_key_file),
        Command::Migrate(args) => migrate(cli, args),
    }
}

/// Standard input as UTF-8, without one trailing newline (what `echo` adds).
fn read_stdin_line() -> Result<Zeroizing<String>, Failure> {
    if std::io::stdin().is_terminal() {
        eprintln!("keyseal: reading the secret from standard input (end with Ctrl-D)");
    }
    // Room up front so that a usual secret is never reallocated (which would leave copies).
    let mut text = Zeroizing::new(String::with_capacity(64 * 1024));
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Failure(format!("cannot read standard input as UTF-8 text: {e}")))?;
    let end = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .map(str::len);
    if let Some(end) = end {
        text.truncate(end);
    }
    Ok(text)
}

/// Prints the JSON object with `--json`, else the human text; success.
fn print(cli: &Cli, value: &Value, human: &str) -> ExitCode {
    if cli.json {
        println!("{value}");
    } else {
        println!("{human}");
    }
    ExitCode::SUCCESS
}

fn master_key(cli: &Cli) -> Result<MasterKey, Failure> {
    if let Some(path) = &cli.master_key_file {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Failure(format!(
                "cannot read master key file {}: {e}",
                path.display()
            ))
        })?);
        return parse_master_key(&text)
            .map_err(|e| Failure(format!("master key file {}: {e}", path.display())));
    }
    match std::env::var(MASTER_KEY_ENV) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            parse_master_key(&text).map_err(|e| Failure(format!("{MASTER_KEY_ENV}: {e}")))
        }
        Err(_) => Err(Failure(format!(
            "no master key: set {MASTER_KEY_ENV} or pass --master-key-file PATH \
             (make one with `keyseal master-key generate --out PATH`)"
        ))),
    }
}

fn open_store(cli: &Cli) -> Result<KeyStore, Failure> {
    let master = master_key(cli)?;
    KeyStore::open(&cli.db, master).map_err(|e| Failure(format!("{}: {e}", cli.db.display())))
}

fn data_key(cli: &Cli, target: &Target) -> Result<DataKey, Failure> {
    let store = open_store(cli)?;
    match &target.user {
        Some(user) => Ok(store.get_or_create_user_key(user)?),
        None => Ok(store.pool_key()),
    }
}

/// Like [`data_key`], but never creates a user's key: decrypting for an unknown user (a typo)
/// is refused without writing to the store.
fn existing_data_key(cli: &Cli, target: &Target) -> Result<DataKey, Failure> {
    let store = open_store(cli)?;
    match &target.user {
        Some(user) => store.get_user_key(user)?.ok_or_else(|| {
            Failure(format!(
                "user {user:?} has no key in {}: nothing was ever encrypted for them here",
                cli.db.display()
            ))
        }),
        None => Ok(store.pool_key()),
    }
}

fn generate(cli: &Cli, out: Option<&Path>) -> Outcome {
    let key = MasterKey::generate()?;
    let text = Zeroizing::new(key.to_base64());
    let Some(path) = out else {
        return Ok(print(cli, &json!({ "master_key": *text }), &text));
    };
    write_new_secret_file(path, &text)?;
    Ok(print(
        cli,
        &json!({ "path": path.display().to_string() }),
        &format!("wrote a new master key to {} (mode 0600)", path.display()),
    ))
}

/// Creates `path` (refusing to overwrite) readable by its owner only, and writes `text`.
fn write_new_secret_file(path: &Path, text: &str) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| Failure(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))
}

fn open_api_keys(cli: &Cli) -> Result<ApiKeys, Failure> {
    let config = ApiKeysConfig::default().bcrypt_cost(cli.bcrypt_cost);
    ApiKeys::open_with(&cli.db, config).map_err(|e| Failure(format!("{}: {e}", cli.db.display())))
}

/// The library's own JSON form of a value (the CONTRACT §5 fields).
fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn created_human(created: &CreatedKey, what: &str) -> String {
    format!(
        "{what} key {} for user {} ({}), scopes [{}], expires {}\n\
         {}\n\
         This key is shown once and is not stored; keep it now.",
        created.key_id,
        created.user_id,
        created.name,
        created.scopes.join(", "),
        created
            .expires_at
            .map_or_else(|| "never".into(), |t| t.to_string()),
        created.key,
    )
}

fn keys(cli: &Cli, command: &KeysCommand) -> Outcome {
    let api_keys = open_api_keys(cli)?;
    match command {
        KeysCommand::Create {
            user,
            name,
            scopes,
            expires_in,
        } => {
            let mut new = NewKey::new(user.as_str(), name.as_str()).scopes(scopes.iter().cloned());
            if let Some(life) = expires_in {
                new = new.expires_in(*life);
            }
            let created = api_keys.create(&new)?;
            Ok(print(
                cli,
                &to_json(&created),
                &created_human(&created, "created"),
            ))
        }
        KeysCommand::Verify => verify_key(cli, &api_keys),
        KeysCommand::List { user } => list_keys(cli, &api_keys, user),
        KeysCommand::Revoke { user, key_id } => {
            let info = api_keys.revoke(user, key_id)?;
            Ok(print(
                cli,
                &to_json(&info),
                &format!("revoked key {} of user {}", info.key_id, info.user_id),
            ))
        }
        KeysCommand::Rotate {
            user,
            key_id,
            grace,
        } => {
            let created = api_keys.rotate(user, key_id, *grace)?;
            let what = format!(
                "rotated {key_id} (old key valid for {}s more); new",
                grace.as_secs()
            );
            Ok(print(
                cli,
                &to_json(&created),
                &created_human(&created, &what),
            ))
        }
    }
}

fn verify_key(cli: &Cli, api_keys: &ApiKeys) -> Outcome {
    let key = read_stdin_line()?;
    let verdict = api_keys.verify(key.trim())?;
    // Recording the last use is best effort: a busy or read-only store must not turn a valid
    // key into a failure.
    if let Err(err) = api_keys.flush() {
        tracing::warn!("could not record the key's last use: {err}");
    }
    let json = to_json(&verdict);
    match &verdict {
        Verification::Valid(ok) => Ok(print(
            cli,
            &json,
            &format!(
                "valid: key {} of user {}, scopes [{}], expires {}",
                ok.key_id,
                ok.user_id,
                ok.scopes.join(", "),
                ok.expires_at
                    .map_or_else(|| "never".into(), |t| t.to_string())
            ),
        )),
        refused => {
            if cli.json {
                println!("{json}");
            } else {
                let reason = refused.refusal().map_or("refused", |r| r.reason());
                eprintln!("keyseal: refused: {reason}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn list_keys(cli: &Cli, api_keys: &ApiKeys, user: &str) -> Outcome {
    let list = api_keys.list(user)?;
    if cli.json {
        let keys: Vec<Value> = list.iter().map(to_json).collect();
        println!("{}", json!({ "user_id": user, "keys": keys }));
    } else if list.is_empty() {
        println!("user {user} has no keys");
    } else {
        println!(
            "{:<28} {:<20} {:<9} {:<24} {:<24} SCOPES",
            "KEY ID", "NAME", "STATUS", "CREATED", "EXPIRES"
        );
        for info in &list {
            println!(
                "{:<28} {:<20} {:<9} {:<24} {:<24} {}",
                info.key_id,
                info.name,
                format!("{:?}", info.status).to_lowercase(),
                info.created_at.to_string(),
                info.expires_at
                    .map_or_else(|| "never".into(), |t| t.to_string()),
                info.scopes.join(",")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress on stderr: a bar on a terminal, a plain line per step otherwise.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    label: &'static str,
    last_line: Instant,
}

impl Reporter {
    fn new(label: &'static str, quiet: bool) -> Reporter {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} rows, {per_sec}, ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(label);
            bar
        });
        Reporter {
            bar,
            started: Instant::now(),
            label,
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, done: u64, total: u64, quiet: bool) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        } else if !quiet && (self.last_line.elapsed() >= Duration::from_secs(1) || done == total) {
            self.last_line = Instant::now();
            #[allow(clippy::cast_precision_loss)]
            let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            eprintln!("{}: {done}/{total} rows ({rate:.0} rows/s)", self.label);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn rotate_master(cli: &Cli, new_file: &Path) -> Outcome {
    let text = Zeroizing::new(
        std::fs::read_to_string(new_file)
            .map_err(|e| Failure(format!("cannot read {}: {e}", new_file.display())))?,
    );
    let new_master = parse_master_key(&text)
        .map_err(|e| Failure(format!("new master key file {}: {e}", new_file.display())))?;
    // Opening checks the current key against the store before anything is touched.
    let store = open_store(cli)?;
    let mut reporter = Reporter::new("rotate-master", cli.json);
    let report = store.rotate_master_key_with_progress(new_master, |done, total| {
        reporter.update(done as u64, total as u64, cli.json);
    })?;
    reporter.finish();
    // The pool key is derived from the master key: values encrypted with --pool under the old
    // key no longer decrypt with the new one.
    eprintln!(
        "keyseal: note: the pool key changed with the master key; re-encrypt any values that \
         were encrypted with --pool (decrypt with the old key file, encrypt with the new one)"
    );
    Ok(print(
        cli,
        &json!({ "rewrapped": report.rewrapped }),
        &format!(
            "rewrapped {} user keys under the new master key; use {} from now on",
            report.rewrapped,
            new_file.display()
        ),
    ))
}

fn migrate(cli: &Cli, args: &MigrateArgs) -> Outcome {
    let keys = match &args.user_column {
        Some(column) => KeySource::UserColumn(column.clone()),
        None => KeySource::Pool,
    };
    let options = MigrateOptions::new(&args.table, &args.column, &args.id_column, keys)
        .batch(args.batch as usize)
        .dry_run(args.dry_run);
    let data_db = args.data_db.as_deref().unwrap_or(&cli.db);
    let store = open_store(cli)?;

    let mut reporter = Reporter::new("migrate", cli.json);
    let started = Instant::now();
    let report = migrate_column(data_db, &store, &options, |p: Progress| {
        reporter.update(p.done, p.total, cli.json);
    })?;
    reporter.finish();
    let seconds = started.elapsed().as_secs_f64();
    let mut out = json!({
        "dry_run": args.dry_run,
        "migrated": report.migrated,
        "skipped": report.skipped,
        "failed": report.failed,
        "seconds": (seconds * 1000.0).round() / 1000.0,
    });
    let mut human = format!(
        "{}migrated {}, skipped {} (already encrypted or empty), failed {} in {seconds:.2}s",
        if args.dry_run {
            "dry run: would have "
        } else {
            ""
        },
        report.migrated,
        report.skipped,
        report.failed
    );
    if args.verify {
        let mut reporter = Reporter::new("verify", cli.json);
        let check = verify_column(data_db, &store, &options, |p: Progress| {
            reporter.update(p.done, p.total, cli.json);
        })?;
        reporter.finish();
        out["verify"] = json!({
            "ok": check.ok,
            "plaintext": check.plaintext,
            "null": check.null,
            "failed": check.failed,
        });
        let _ = write!(
            human,
            "\nverify: {} decrypt, {} still plaintext, {} empty, {} fail",
            check.ok, check.plaintext, check.null, check.failed
        );
        if check.failed > 0 {
            print(cli, &out, &human);
            return Err(Failure(format!("{} values do not decrypt", check.failed)));
        }
    }
    print(cli, &out, &human);
    if report.failed > 0 {
        return Err(Failure(format!(
            "{} values were left as they were (not text, no usable user id, or changed meanwhile)",
            report.failed
        )));
    }
    Ok(ExitCode::SUCCESS)
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
