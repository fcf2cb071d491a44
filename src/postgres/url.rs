//! PostgreSQL locations: which texts select PostgreSQL, how a URL is read, and how it is
//! shown (never with its password).
//!
//! A location selects PostgreSQL when its text starts with `postgres://` or `postgresql://`
//! (libpq's `key=value` conninfo is not accepted: URLs only). The URL is libpq's: user,
//! password, host (or `host=` a socket folder), port, database, and the parameters
//! `tokio-postgres` reads (`host`, `hostaddr`, `port`, `options`, `application_name`,
//! `connect_timeout`, `keepalives…`, `target_session_attrs`, `channel_binding`, …), plus
//! `sslmode` (`disable`, `prefer` (the default), `require`, `verify-full`) and `sslrootcert`
//! (the CA certificates, PEM, that `verify-full` checks the server's certificate against),
//! which keyseal handles itself; as with libpq, `sslmode` is ignored over a unix socket
//! (`host=/socket/folder`). Without a password in the URL, `PGPASSWORD` is used, then the
//! password file as libpq reads it (`passfile=FILE` in the URL, else `PGPASSFILE`, else
//! `~/.pgpass`: lines `host:port:database:user:password`, `*` matching anything, ignored
//! unless only its owner may read it); without a user, `PGUSER`, then `USER`.

use std::path::PathBuf;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::Error;

pub(crate) use crate::db_path::is_postgres;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, not verified (libpq's default).
    Prefer,
    /// TLS always, the certificate not verified.
    Require,
    /// TLS, the certificate chained to `sslrootcert` and naming the host.
    VerifyFull,
}

/// A parsed PostgreSQL URL.
pub(crate) struct PgUrl {
    /// The driver's configuration (password included, never displayed).
    pub(crate) config: tokio_postgres::Config,
    pub(crate) ssl: SslMode,
    pub(crate) root_cert: Option<PathBuf>,
    /// `statement_cache=on`: named prepared statements, cached per connection (faster; not
    /// behind a transaction-mode pooler).
    pub(crate) statement_cache: bool,
    /// The URL with its password replaced by `***`.
    pub(crate) display: String,
}

fn invalid(what: impl Into<String>) -> Error {
    Error::InvalidArgument { what: what.into() }
}

/// `url` with the password (in the user info, or a `password=` parameter) replaced by
/// `***`: the form every message, log and `Debug` shows.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{host}", &userinfo[..colon]),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

/// Decodes `%XX` escapes.
fn percent_decode(s: &str) -> Result<String, Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid("a PostgreSQL URL holds a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("a PostgreSQL URL parameter is not UTF-8"))
}

/// `statement_cache`'s value: `on`/`true` or `off`/`false`.
fn on_off(display: &str, value: &str) -> Result<bool, Error> {
    match percent_decode(value)?.as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        other => Err(invalid(format!(
            "{display}: unknown statement_cache {other:?} (on or off)"
        ))),
    }
}

impl PgUrl {
    /// Reads `url`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a URL the driver cannot read, a `statement_cache`
    /// other than `on`/`off`, an unknown `sslmode`
    /// (`verify-ca` included: use `verify-full`), or `verify-full` without `sslrootcert`;
    /// the message shows the URL without its password.
    pub(crate) fn parse(url: &str) -> Result<PgUrl, Error> {
        let display = redact(url);
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut ssl = SslMode::Prefer;
        let mut root_cert = None;
        let mut passfile = None;
        let mut statement_cache = false;
        let mut kept = Vec::new();
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key {
                "sslmode" => {
                    ssl = match percent_decode(value)?.as_str() {
                        "disable" => SslMode::Disable,
                        "prefer" | "allow" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-full" => SslMode::VerifyFull,
                        "verify-ca" => {
                            return Err(invalid(format!(
                                "{display}: sslmode=verify-ca is not supported: use \
                                 sslmode=verify-full (which also checks the host name)"
                            )))
                        }
                        other => {
                            return Err(invalid(format!(
                                "{display}: unknown sslmode {other:?} (disable, prefer, \
                                 require or verify-full)"
                            )))
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(value)?)),
                "passfile" => passfile = Some(PathBuf::from(percent_decode(value)?)),
                "statement_cache" => statement_cache = on_off(&display, value)?,
                _ => kept.push(param),
            }
        }
        if ssl == SslMode::VerifyFull && root_cert.is_none() {
            return Err(invalid(format!(
                "{display}: sslmode=verify-full needs sslrootcert=FILE (the CA certificates, PEM, \
                 that signed the server's certificate)"
            )));
        }
        let rebuilt = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        // The driver's own messages may quote the URL: its error is not passed on.
        let mut config = tokio_postgres::Config::from_str(&rebuilt).map_err(|_| {
            invalid(format!(
                "{display} is not a PostgreSQL URL keyseal can read \
                 (postgres://USER@HOST:PORT/DATABASE?sslmode=…)"
            ))
        })?;
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                let password = Zeroizing::new(password);
                config.password(password.as_bytes());
            }
        }
        if config.get_user().is_none() {
            if let Some(user) = ["PGUSER", "USER"]
                .iter()
                .find_map(|v| std::env::var(v).ok())
            {
                config.user(&user);
            }
        }
        if config.get_dbname().is_none() {
            return Err(invalid(format!(
                "{display} names no database (postgres://USER@HOST:PORT/DATABASE)"
            )));
        }
        if config.get_password().is_none() {
            let file = passfile
                .or_else(|| std::env::var_os("PGPASSFILE").map(PathBuf::from))
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")));
            if let Some(password) = file.and_then(|f| passfile_password(&f, &config)) {
                config.password(password.as_bytes());
            }
        }
        // As libpq: no TLS over a unix socket (local, and the driver cannot name its peer).
        let hosts = config.get_hosts();
        if !hosts.is_empty()
            && hosts
                .iter()
                .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)))
        {
            ssl = SslMode::Disable;
        }
        config.application_name("keyseal");
        // A server that does not answer is an error after this long, not a hang.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        Ok(PgUrl {
            config,
            ssl,
            root_cert,
            statement_cache,
            display,
        })
    }

    /// Where the URL points, for messages: `user@host:port/database`.
    pub(crate) fn target(&self) -> String {
        let host = self
            .config
            .get_hosts()
            .first()
            .map_or_else(String::new, |h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            });
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}@{host}:{port}/{}",
            self.config.get_user().unwrap_or("?"),
            self.config.get_dbname().unwrap_or("?")
        )
    }
}

/// The password a libpq password file gives for `config`'s first host, port, database and
/// user: the first matching line. `None` when the file is missing, unreadable, or (on Unix)
/// readable by others than its owner, which libpq ignores too.
fn passfile_password(
    file: &std::path::Path,
    config: &tokio_postgres::Config,
) -> Option<Zeroizing<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "password file {} ignored: others may read it (chmod 0600)",
                file.display()
            );
            return None;
        }
    }
    let text = Zeroizing::new(std::fs::read_to_string(file).ok()?);
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(name)) => name.clone(),
        // libpq matches a socket connection as `localhost`.
        _ => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        config.get_dbname().unwrap_or_default(),
        config.get_user().unwrap_or_default(),
    ];
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let fields = passfile_fields(line);
            if fields.len() != 5 {
                return None;
            }
            let matches = wanted
                .iter()
                .zip(fields.iter())
                .all(|(want, field)| field.as_str() == "*" || field.as_str() == *want);
            matches.then(|| Zeroizing::new(fields[4].to_string()))
        })
}

/// A password file line's fields: `:` separates, `\` escapes `:` and `\`.
fn passfile_fields(line: &str) -> Vec<Zeroizing<String>> {
    let mut fields = vec![Zeroizing::new(String::new())];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(field)) = (chars.next(), fields.last_mut()) {
                    field.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(Zeroizing::new(String::new())),
            _ => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn postgres_locations_are_recognised_by_scheme_only() {
        for yes in ["postgres://h/db", "postgresql://u@h/db", "POSTGRES://h/d"] {
            assert!(is_postgres(Path::new(yes)), "{yes}");
        }
        for no in [
            "keys.db",
            "file:keys.db",
            "postgres:/x",
            "/tmp/postgres://x",
            "",
        ] {
            assert!(!is_postgres(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn passwords_are_redacted_wherever_they_are() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/keys?sslmode=require"),
            "postgres://app:***@db:5432/keys?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://app:p%40ss:w@db/keys"),
            "postgresql://app:***@db/keys"
        );
        assert_eq!(
            redact("postgres://app@db/keys?password=s3cret&x=1"),
            "postgres://app@db/keys?password=***&x=1"
        );
        assert_eq!(redact("postgres://db/keys"), "postgres://db/keys");
    }

    #[test]
    fn statement_cache_is_off_unless_asked_and_checked() {
        assert!(!PgUrl::parse("postgres://u@h/db").unwrap().statement_cache);
        let on = PgUrl::parse("postgres://u@h/db?statement_cache=on&sslmode=disable").unwrap();
        assert!(on.statement_cache);
        assert!(
            !PgUrl::parse("postgres://u@h/db?statement_cache=off")
                .unwrap()
                .statement_cache
        );
        let Err(err) = PgUrl::parse("postgres://u:s3cret@h/db?statement_cache=maybe") else {
            panic!("statement_cache=maybe accepted");
        };
        assert!(err.to_string().contains("statement_cache"), "{err}");
        assert!(!err.to_string().contains("s3cret"));
    }

    #[test]
    fn bad_urls_are_refused_without_the_password() {
        for (url, says) in [
            ("postgres://u:s3cret@h/db?sslmode=verify-ca", "verify-full"),
            ("postgres://u:s3cret@h/db?sslmode=bogus", "unknown sslmode"),
            (
                "postgres://u:s3cret@h/db?sslmode=verify-full",
                "sslrootcert",
            ),
            ("postgres://u:s3cret@h:notaport/db", "not a PostgreSQL URL"),
        ] {
            let Err(Error::InvalidArgument { what }) = PgUrl::parse(url) else {
                panic!("{url} accepted");
            };
            assert!(what.contains(says), "{what}");
            assert!(!what.contains("s3cret"), "{what}");
        }
        let url = PgUrl::parse("postgres://u@/db?host=/run/pg&port=6000&sslmode=require").unwrap();
        assert_eq!(url.ssl, SslMode::Disable, "no TLS over a unix socket");
        assert_eq!(url.target(), "u@/run/pg:6000/db");
        let url = PgUrl::parse("postgres://u:s3cret@h:6000/db?sslmode=require").unwrap();
        assert_eq!(url.ssl, SslMode::Require);
        assert_eq!(url.target(), "u@h:6000/db");
        assert!(!format!("{:?}", url.config).contains("s3cret"));
    }

    #[test]
    fn the_password_file_fills_a_missing_password_and_is_ignored_when_others_can_read_it() {
        use std::os::unix::fs::PermissionsExt;
        if std::env::var_os("PGPASSWORD").is_some() {
            eprintln!("note: skipped: PGPASSWORD is set, and it comes before the password file");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\notherhost:*:*:*:wrong\nh:6000:db:u:pa\\:ss\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let url = format!("postgres://u@h:6000/db?passfile={}", file.display());
        let parsed = PgUrl::parse(&url).unwrap();
        assert_eq!(parsed.config.get_password(), Some(&b"pa:ss"[..]));
        let other = format!("postgres://u@h:6001/db?passfile={}", file.display());
        let parsed = PgUrl::parse(&other).unwrap();
        assert_eq!(parsed.config.get_password(), Some(&b"fallback"[..]));
        // A password in the URL wins.
        let given = format!("postgres://u:mine@h:6000/db?passfile={}", file.display());
        let parsed = PgUrl::parse(&given).unwrap();
        assert_eq!(parsed.config.get_password(), Some(&b"mine"[..]));
        // Readable by the group: ignored, as libpq does.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let parsed = PgUrl::parse(&url).unwrap();
        assert_eq!(parsed.config.get_password(), None);
    }
}
