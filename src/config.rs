//! Server settings: their defaults, and how flags and environment variables set them.

use std::fmt::Write as _;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// Everything an operator can tune. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on; 0 picks a free one (what tests use).
    pub port: u16,
    /// Largest WebSocket message a client may send, in payload bytes (close 1009 past it).
    pub max_message_bytes: usize,
    /// Browser origins let in besides the server's own (`https://chat.example.com`).
    pub allow_origins: Vec<String>,
    /// WebSocket connections served at once; upgrades past it get HTTP 503.
    pub max_connections: usize,
    /// Open sockets one client address may hold (request heads being read, plain HTTP and
    /// WebSocket connections alike), so one address cannot take every socket; 0 turns the
    /// limit off. IPv6 addresses count by their /64, a host's usual share.
    pub max_connections_per_ip: usize,
    /// Frames queued for one connection before it counts as a slow consumer (close 1008).
    pub queue_frames: usize,
    /// Bytes of frames queued for one connection before it counts as a slow consumer
    /// (close 1008): bounds what a client that does not read makes the server hold.
    pub queue_bytes: usize,
    /// Commands a second per connection; 0 turns rate limiting off.
    pub rate_limit: u32,
    /// Commands a connection may send in one burst above the rate.
    pub rate_burst: u32,
    /// Threads that write to sockets (each connection gets one of its own only while its
    /// socket is full).
    pub writer_threads: usize,
    /// How often the server pings each connection.
    pub ping_interval: Duration,
    /// How long a connection may stay silent (no frame, no pong) before it is closed.
    pub idle_timeout: Duration,
    /// Deadline for a client to send a whole HTTP request head.
    pub head_timeout: Duration,
    /// How long a kept-alive HTTP connection may wait for its next request before it is
    /// closed: each idle one holds a thread, so short (a page load reuses its connections
    /// within milliseconds; a later click opens a new one for the price of a handshake).
    pub http_idle_timeout: Duration,
    /// How long a room's presence changes are gathered into one event (at most 100 ms).
    pub presence_window: Duration,
    /// Rooms the server holds at most (`create` past it is `too_many_rooms`); 0 = no cap.
    pub max_rooms: usize,
    /// Rooms one connection may create per hour, all at once if saved up (`rate_limited`
    /// past it); 0 = no limit.
    pub rooms_per_connection: u32,
    /// Rooms one client address (an IPv6 /64) may create per hour, all at once if saved up;
    /// 0 = no limit (behind a proxy every client has the proxy's address).
    pub rooms_per_address: u32,
    /// A room with no members and no messages for this long is removed, with its history;
    /// `None` keeps every room for good.
    pub remove_empty_rooms_after: Option<Duration>,
    /// SQLite database file; `:memory:` keeps everything in memory.
    pub db: String,
    /// Log level name for the binary (`error`, `warn`, `info`, `debug`, `trace`, `off`).
    pub log_level: String,
    /// Threads that check and hash room passwords (argon2), off the hub.
    pub password_threads: usize,
    /// The nice value those threads run at (Linux), so routing wins the CPU from them.
    pub password_nice: i32,
    /// Failed room-password attempts a connection may make per minute; 0 = no limit.
    pub password_failures_per_connection: u32,
    /// Failed room-password attempts one client address (an IPv6 /64) may make per
    /// 3 minutes; 0 = no limit.
    pub password_failures_per_ip: u32,
    /// Guests, registration, sessions and the sign-in limits.
    pub accounts: crate::accounts::Policy,
    /// Take the client's address and https-ness from a reverse proxy's `X-Forwarded-For`
    /// (last hop) and `X-Forwarded-Proto`; without it both headers are ignored.
    pub trust_proxy: bool,
    /// Attachments: where their bytes live, the upload limits, the unattached sweep.
    pub files: FilesConfig,
    /// How long one of the moderation commands' `minutes` lasts (bans, suspensions): 60 s.
    /// Not a flag: tests shorten it to see bans end without waiting minutes.
    pub moderation_minute: Duration,
    /// Bans one room keeps in force at most (`kick` with a ban past it is `forbidden`);
    /// 0 = no cap. Every `join` looks through its room's bans, and a room's owner could
    /// otherwise pile up bans on guest names without end.
    pub max_bans_per_room: usize,
    /// With it, `GET /metrics` answers anyone who sends `Authorization: Bearer TOKEN`, and
    /// only them; without it, only clients on this machine that came through no proxy.
    pub metrics_token: Option<String>,
}

/// The operator's settings for attachments.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Directory of the files' bytes; `None` is `<db>.files` beside the database (a
    /// throwaway directory for `:memory:`).
    pub dir: Option<String>,
    /// Largest upload in bytes (`--max-upload-mb`).
    pub max_upload_bytes: u64,
    /// Bytes one account may upload per 24 hours; 0 = no quota (`--upload-quota-mb`).
    pub upload_quota_bytes: u64,
    /// A file no message refers to is deleted once this old (24 h; tests shorten it with
    /// the hidden `--files-unattached-secs`).
    pub unattached_after: Duration,
    /// How often unattached files are looked for (hidden `--files-sweep-secs`).
    pub sweep_every: Duration,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            dir: None,
            max_upload_bytes: 10 << 20,
            upload_quota_bytes: 500 << 20,
            unattached_after: DAY,
            sweep_every: Duration::from_secs(600),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 8080,
            max_message_bytes: 65_536,
            allow_origins: Vec::new(),
            max_connections: 10_000,
            // A school class behind one NAT, 30 pupils with two tabs each, holds 60
            // WebSockets and, while everyone loads the page at once, up to ~4 short page
            // requests per tab: ~300 sockets at the very peak, ~60 a moment later; 256 keeps
            // such a class in, while one address holds at most a fortieth of the 10,256
            // sockets the default connection limit allows. Behind a reverse proxy every
            // connection comes from the proxy's address: there, 0 (and a per-client limit in
            // the proxy).
            max_connections_per_ip: 256,
            queue_frames: 1024,
            queue_bytes: QUEUE_BYTES,
            rate_limit: 20,
            rate_burst: 50,
            writer_threads: std::thread::available_parallelism()
                .map(|n| n.get().min(8))
                .unwrap_or(2),
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            head_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(5),
            presence_window: Duration::from_millis(50),
            max_rooms: 10_000,
            rooms_per_connection: 10,
            rooms_per_address: 30,
            remove_empty_rooms_after: Some(DAY * 90),
            db: "papo.db".into(),
            log_level: "info".into(),
            password_threads: crate::password::default_threads(),
            password_nice: crate::password::DEFAULT_NICE,
            password_failures_per_connection: crate::password::AttemptLimits::CONNECTION_FAILURES,
            password_failures_per_ip: crate::password::AttemptLimits::ADDRESS_FAILURES,
            accounts: crate::accounts::Policy::default(),
            trust_proxy: false,
            files: FilesConfig::default(),
            moderation_minute: Duration::from_secs(60),
            max_bans_per_room: 10_000,
            metrics_token: None,
        }
    }
}

/// The default `--queue-bytes`, 4 MiB. It must hold the largest single reply: a `history`
/// of 100 messages of 4,000 code points is 1.6 MB when every character takes four bytes,
/// and at most about 2.5 MB when every one is a control character that JSON escapes to six
/// (`\u0001`); 4 MiB leaves room for that plus the frames already waiting. A client that
/// stops reading then pins at most this plus one writer batch (see writer.rs), so three
/// such clients stay near 20 MB rather than the ~800 MB a 1,024-frame bound let each earn.
pub const QUEUE_BYTES: usize = 4 << 20;

/// What the command line asked for.
#[derive(Debug)]
pub enum Invocation {
    /// Run the server.
    Serve(Config),
    /// Copy the database to a file while it may be in use (`papo backup OUT.db`).
    Backup { config: Config, out: String },
    /// An operator's command on the accounts in the database (`papo user …`).
    User {
        config: Config,
        command: UserCommand,
    },
    /// Make a single-use invite code (`papo invite`).
    Invite { config: Config },
    /// Print the newest moderation actions (`papo audit [--limit N]`).
    Audit { config: Config, limit: usize },
    /// Ask a running server's `/healthz` on this machine (`papo healthcheck`): exit 0 when it
    /// answers 200. For container health checks, where the image has no curl.
    Healthcheck { config: Config },
    /// Print the help text.
    Help,
}

/// Audit entries `papo audit` prints without `--limit`.
pub const AUDIT_DEFAULT_LIMIT: usize = 50;

/// `papo user …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Add an account; its password is read from standard input.
    Add(String),
    /// Set an account's password (read from standard input); its sessions end.
    Passwd(String),
    /// Make an account the admin, or (`false`) not.
    Admin(String, bool),
    Del(String),
    List,
}

/// One flag: its name, value placeholder, environment variable, and help line.
struct Flag {
    name: &'static str,
    value: &'static str,
    env: Option<&'static str>,
    help: &'static str,
}

const FLAGS: &[Flag] = &[
    Flag {
        name: "--host",
        value: "ADDR",
        env: Some("HOST"),
        help: "address to listen on",
    },
    Flag {
        name: "--port",
        value: "PORT",
        env: Some("PORT"),
        help: "port to listen on (0 picks a free one)",
    },
    Flag {
        name: "--db",
        value: "PATH",
        env: Some("PAPO_DB"),
        help: "SQLite database file (:memory: keeps nothing)",
    },
    Flag {
        name: "--log-level",
        value: "LEVEL",
        env: Some("PAPO_LOG"),
        help: "error, warn, info, debug, trace or off",
    },
    Flag {
        name: "--max-message-bytes",
        value: "N",
        env: None,
        help: "largest client message in bytes (close 1009 past it)",
    },
    Flag {
        name: "--allow-origin",
        value: "ORIGIN",
        env: None,
        help: "also accept browsers from ORIGIN (repeatable)",
    },
    Flag {
        name: "--max-connections",
        value: "N",
        env: None,
        help: "WebSocket connections at once (HTTP 503 past it)",
    },
    Flag {
        name: "--max-connections-per-ip",
        value: "N",
        env: None,
        help: "sockets one client address may hold (HTTP 429 past it, 0 = off)",
    },
    Flag {
        name: "--queue-frames",
        value: "N",
        env: None,
        help: "frames queued per connection before close 1008",
    },
    Flag {
        name: "--queue-bytes",
        value: "N",
        env: None,
        help: "bytes queued per connection before close 1008 (fit a full history)",
    },
    Flag {
        name: "--rate-limit",
        value: "N",
        env: None,
        help: "commands a second per connection (0 = off)",
    },
    Flag {
        name: "--rate-burst",
        value: "N",
        env: None,
        help: "commands allowed in one burst",
    },
    Flag {
        name: "--max-rooms",
        value: "N",
        env: None,
        help: "rooms the server holds at most (0 = no cap)",
    },
    Flag {
        name: "--max-bans-per-room",
        value: "N",
        env: None,
        help: "bans one room keeps in force at most (0 = no cap)",
    },
    Flag {
        name: "--rooms-per-connection",
        value: "N",
        env: None,
        help: "rooms one connection may create per hour (0 = no limit)",
    },
    Flag {
        name: "--rooms-per-address",
        value: "N",
        env: None,
        help: "rooms one client address may create per hour (0 = no limit)",
    },
    Flag {
        name: "--remove-empty-rooms-after",
        value: "DAYS",
        env: None,
        help: "remove a room with no members and no messages for DAYS (0 = never)",
    },
    Flag {
        name: "--writer-threads",
        value: "N",
        env: None,
        help: "threads that write to sockets (one per core, at most 8)",
    },
    Flag {
        name: "--password-threads",
        value: "N",
        env: None,
        help: "threads that check room passwords (half the cores, 1 to 4)",
    },
    Flag {
        name: "--password-nice",
        value: "N",
        env: None,
        help: "nice value of those threads, 0 to 19 (0 on a machine shared with busy programs)",
    },
    Flag {
        name: "--password-failures-per-connection",
        value: "N",
        env: None,
        help: "wrong room passwords a connection may try a minute (0 = no limit)",
    },
    Flag {
        name: "--password-failures-per-ip",
        value: "N",
        env: None,
        help: "wrong room passwords an address may try per 3 minutes (0 = no limit)",
    },
    Flag {
        name: "--ping-interval",
        value: "SECS",
        env: None,
        help: "seconds between server pings",
    },
    Flag {
        name: "--idle-timeout",
        value: "SECS",
        env: None,
        help: "seconds of client silence before closing",
    },
    Flag {
        name: "--http-idle-timeout",
        value: "SECS",
        env: None,
        help: "seconds a kept-alive HTTP connection waits for its next request",
    },
    Flag {
        name: "--guests",
        value: "on|off",
        env: None,
        help: "allow name-only sign-in (guests)",
    },
    Flag {
        name: "--registration",
        value: "MODE",
        env: None,
        help: "open, invite (a code from papo invite) or closed (papo user add only)",
    },
    Flag {
        name: "--session-days",
        value: "N",
        env: None,
        help: "a session unused this many days ends",
    },
    Flag {
        name: "--sign-in-failures",
        value: "N",
        env: None,
        help: "failed sign-ins per address per 3 minutes (0 = off)",
    },
    Flag {
        name: "--registrations-per-hour",
        value: "N",
        env: None,
        help: "registrations per address per hour (0 = off)",
    },
    Flag {
        name: "--files-dir",
        value: "PATH",
        env: None,
        help: "directory of uploaded files (DB.files beside --db)",
    },
    Flag {
        name: "--max-upload-mb",
        value: "N",
        env: None,
        help: "largest upload in MiB",
    },
    Flag {
        name: "--upload-quota-mb",
        value: "N",
        env: None,
        help: "MiB one account may upload per day (0 = no quota)",
    },
    Flag {
        name: "--trust-proxy",
        value: "",
        env: None,
        help: "take client address and https from X-Forwarded-For/-Proto",
    },
    Flag {
        name: "--metrics-token",
        value: "TOKEN",
        env: Some("PAPO_METRICS_TOKEN"),
        help: "serve /metrics to anyone with Authorization: Bearer TOKEN (else loopback only)",
    },
];

/// Flags for tests, not in `--help`: they shorten the day the unattached-file sweep waits
/// (`--files-unattached-secs N`) and how often it looks (`--files-sweep-secs N`).
const HIDDEN_FLAGS: &[&str] = &["--files-unattached-secs", "--files-sweep-secs"];

/// The text `papo --help` prints, with every flag's default.
pub fn help_text() -> String {
    let d = Config::default();
    let default_of = |name: &str| -> String {
        match name {
            "--host" => d.host.clone(),
            "--port" => d.port.to_string(),
            "--db" => d.db.clone(),
            "--log-level" => d.log_level.clone(),
            "--max-message-bytes" => d.max_message_bytes.to_string(),
            "--allow-origin" => "none".into(),
            "--max-connections" => d.max_connections.to_string(),
            "--max-connections-per-ip" => d.max_connections_per_ip.to_string(),
            "--queue-frames" => d.queue_frames.to_string(),
            "--queue-bytes" => d.queue_bytes.to_string(),
            "--rate-limit" => d.rate_limit.to_string(),
            "--rate-burst" => d.rate_burst.to_string(),
            "--max-rooms" => d.max_rooms.to_string(),
            "--max-bans-per-room" => d.max_bans_per_room.to_string(),
            "--rooms-per-connection" => d.rooms_per_connection.to_string(),
            "--rooms-per-address" => d.rooms_per_address.to_string(),
            "--remove-empty-rooms-after" => d
                .remove_empty_rooms_after
                .map_or(0, |after| after.as_secs() / DAY.as_secs())
                .to_string(),
            "--writer-threads" => d.writer_threads.to_string(),
            "--password-threads" => d.password_threads.to_string(),
            "--password-nice" => d.password_nice.to_string(),
            "--password-failures-per-connection" => d.password_failures_per_connection.to_string(),
            "--password-failures-per-ip" => d.password_failures_per_ip.to_string(),
            "--ping-interval" => d.ping_interval.as_secs().to_string(),
            "--idle-timeout" => d.idle_timeout.as_secs().to_string(),
            "--http-idle-timeout" => d.http_idle_timeout.as_secs().to_string(),
            "--guests" => if d.accounts.guests { "on" } else { "off" }.into(),
            "--registration" => "open".into(),
            "--session-days" => d.accounts.session_days.to_string(),
            "--sign-in-failures" => d.accounts.sign_in_failures.to_string(),
            "--registrations-per-hour" => d.accounts.registrations_per_hour.to_string(),
            "--trust-proxy" => "off".into(),
            "--files-dir" => "DB.files".into(),
            "--max-upload-mb" => (d.files.max_upload_bytes >> 20).to_string(),
            "--upload-quota-mb" => (d.files.upload_quota_bytes >> 20).to_string(),
            "--metrics-token" => "none".into(),
            _ => String::new(),
        }
    };
    let mut out = String::from(
        "papo: real-time web chat with rooms, in one binary\n\n\
         Usage: papo [FLAGS]                   serve the chat\n       \
         papo backup OUT.db [FLAGS]     copy the database (safe while serving)\n       \
         papo user add NAME [FLAGS]     add an account (password on standard input)\n       \
         papo user passwd NAME          set its password (standard input); ends its sessions\n       \
         papo user admin NAME [--off]   make it the admin, or not\n       \
         papo user del NAME             delete an account\n       \
         papo user list                 list the accounts\n       \
         papo invite                    print a single-use registration code (7 days)\n       \
         papo audit [--limit N]         the newest N moderation actions (default 50), newest first\n       \
         papo healthcheck [FLAGS]       exit 0 if the server on --port answers /healthz\n\n\
         Commands on the database work while the server runs; it applies them within seconds.\n\nFlags:\n",
    );
    // The help texts start in one column, two spaces past the widest flag and its value.
    let width = FLAGS
        .iter()
        .map(|f| f.name.len() + 1 + f.value.len() + 2)
        .max()
        .unwrap_or(0);
    for f in FLAGS {
        let left = format!("{} {}", f.name, f.value);
        let env = f.env.map(|e| format!(", env {e}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {left:<width$}{} (default: {}{env})",
            f.help,
            default_of(f.name)
        );
    }
    let _ = writeln!(out, "  {:<width$}print this help", "-h, --help");
    out
}

/// Parses the command line (without the program name) and the environment.
/// Flags win over environment variables. The error is one line for the user.
pub fn parse<I, E>(args: I, env: E) -> Result<Invocation, String>
where
    I: IntoIterator<Item = String>,
    E: Fn(&str) -> Option<String>,
{
    let mut config = Config::default();
    for flag in FLAGS {
        if let Some(value) = flag.env.and_then(&env) {
            if !value.is_empty() {
                apply(&mut config, flag.name, &value)
                    .map_err(|e| format!("{e} (from ${})", flag.env.unwrap_or("")))?;
            }
        }
    }
    let mut args = args.into_iter().peekable();
    let mut backup_out = None;
    let mut user_command = None;
    let mut invite = false;
    let mut audit = None;
    let mut healthcheck = false;
    match args.peek().map(String::as_str) {
        Some("backup") => {
            args.next();
            match args.next() {
                Some(out) if !out.starts_with('-') => backup_out = Some(out),
                _ => return Err("backup needs the output file: papo backup OUT.db".into()),
            }
        }
        Some("user") => {
            args.next();
            user_command = Some(parse_user_command(&mut args)?);
        }
        Some("invite") => {
            args.next();
            invite = true;
        }
        Some("audit") => {
            args.next();
            audit = Some(AUDIT_DEFAULT_LIMIT);
        }
        Some("healthcheck") => {
            args.next();
            healthcheck = true;
        }
        _ => {}
    }
    let mut admin_off = false;
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Invocation::Help);
        }
        if arg == "--trust-proxy" {
            config.trust_proxy = true;
            continue;
        }
        if arg == "--off" && matches!(user_command, Some(UserCommand::Admin(..))) {
            admin_off = true;
            continue;
        }
        if audit.is_some() && (arg == "--limit" || arg.starts_with("--limit=")) {
            let value = match arg.split_once('=') {
                Some((_, v)) => Some(v.to_string()),
                None => args.next(),
            };
            let value = value.ok_or("--limit needs a value")?;
            audit = Some(number("--limit", &value, 1, 1_000_000)? as usize);
            continue;
        }
        let (name, inline_value) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        if !FLAGS.iter().any(|f| f.name == name) && !HIDDEN_FLAGS.contains(&name.as_str()) {
            return Err(format!("unknown argument '{arg}' (see papo --help)"));
        }
        let value = match inline_value.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(format!("{name} needs a value")),
        };
        apply(&mut config, &name, &value)?;
    }
    if let Some(mut command) = user_command {
        if let UserCommand::Admin(_, on) = &mut command {
            *on = !admin_off;
        }
        return Ok(Invocation::User { config, command });
    }
    if invite {
        return Ok(Invocation::Invite { config });
    }
    if let Some(limit) = audit {
        return Ok(Invocation::Audit { config, limit });
    }
    if healthcheck {
        return Ok(Invocation::Healthcheck { config });
    }
    Ok(match backup_out {
        Some(out) => Invocation::Backup { config, out },
        None => Invocation::Serve(config),
    })
}

/// The words after `papo user`.
fn parse_user_command(
    args: &mut std::iter::Peekable<impl Iterator<Item = String>>,
) -> Result<UserCommand, String> {
    let usage = "usage: papo user add|passwd|admin|del NAME, or papo user list";
    let verb = args.next().ok_or(usage)?;
    if verb == "list" {
        return Ok(UserCommand::List);
    }
    let name = match args.next() {
        Some(name) if !name.starts_with("--") => name,
        _ => return Err(usage.into()),
    };
    Ok(match verb.as_str() {
        "add" => UserCommand::Add(name),
        "passwd" => UserCommand::Passwd(name),
        "admin" => UserCommand::Admin(name, true),
        "del" => UserCommand::Del(name),
        _ => return Err(usage.into()),
    })
}

fn apply(config: &mut Config, name: &str, value: &str) -> Result<(), String> {
    match name {
        "--host" => config.host = non_empty(name, value)?,
        "--port" => config.port = number(name, value, 0, u16::MAX as u64)? as u16,
        "--db" => config.db = non_empty(name, value)?,
        "--log-level" => {
            let level = value.to_ascii_lowercase();
            if !["error", "warn", "info", "debug", "trace", "off"].contains(&level.as_str()) {
                return Err(format!(
                    "{name}: '{value}' is not one of error, warn, info, debug, trace, off"
                ));
            }
            config.log_level = level;
        }
        "--max-message-bytes" => {
            config.max_message_bytes = number(name, value, 64, 16 << 20)? as usize
        }
        "--allow-origin" => config.allow_origins.push(non_empty(name, value)?),
        "--max-connections" => config.max_connections = number(name, value, 1, 1_000_000)? as usize,
        "--max-connections-per-ip" => {
            config.max_connections_per_ip = number(name, value, 0, 1_000_000)? as usize
        }
        "--queue-frames" => config.queue_frames = number(name, value, 1, 1_000_000)? as usize,
        "--queue-bytes" => config.queue_bytes = number(name, value, 65_536, 1 << 30)? as usize,
        "--rate-limit" => config.rate_limit = number(name, value, 0, 1_000_000)? as u32,
        "--rate-burst" => config.rate_burst = number(name, value, 1, 1_000_000)? as u32,
        "--max-rooms" => config.max_rooms = number(name, value, 0, 100_000_000)? as usize,
        "--max-bans-per-room" => {
            config.max_bans_per_room = number(name, value, 0, 100_000_000)? as usize
        }
        "--rooms-per-connection" => {
            config.rooms_per_connection = number(name, value, 0, 1_000_000)? as u32
        }
        "--rooms-per-address" => {
            config.rooms_per_address = number(name, value, 0, 1_000_000)? as u32
        }
        "--remove-empty-rooms-after" => {
            let days = number(name, value, 0, 36_500)?;
            config.remove_empty_rooms_after = (days > 0).then(|| DAY * days as u32);
        }
        "--writer-threads" => config.writer_threads = number(name, value, 1, 64)? as usize,
        "--password-threads" => config.password_threads = number(name, value, 1, 64)? as usize,
        "--password-nice" => config.password_nice = number(name, value, 0, 19)? as i32,
        "--password-failures-per-connection" => {
            config.password_failures_per_connection = number(name, value, 0, 1_000_000)? as u32
        }
        "--password-failures-per-ip" => {
            config.password_failures_per_ip = number(name, value, 0, 1_000_000)? as u32
        }
        "--ping-interval" => {
            config.ping_interval = Duration::from_secs(number(name, value, 1, 3600)?)
        }
        "--idle-timeout" => {
            config.idle_timeout = Duration::from_secs(number(name, value, 1, 86_400)?)
        }
        "--http-idle-timeout" => {
            config.http_idle_timeout = Duration::from_secs(number(name, value, 1, 3600)?)
        }
        "--guests" => {
            config.accounts.guests = match value {
                "on" => true,
                "off" => false,
                _ => return Err(format!("{name}: '{value}' is not on or off")),
            }
        }
        "--registration" => {
            use crate::accounts::Registration;
            config.accounts.registration = match value {
                "open" => Registration::Open,
                "invite" => Registration::Invite,
                "closed" => Registration::Closed,
                _ => return Err(format!("{name}: '{value}' is not open, invite or closed")),
            }
        }
        "--session-days" => config.accounts.session_days = number(name, value, 1, 3650)?,
        "--sign-in-failures" => {
            config.accounts.sign_in_failures = number(name, value, 0, 1_000_000)? as u32
        }
        "--registrations-per-hour" => {
            config.accounts.registrations_per_hour = number(name, value, 0, 1_000_000)? as u32
        }
        "--files-dir" => config.files.dir = Some(non_empty(name, value)?),
        "--max-upload-mb" => config.files.max_upload_bytes = number(name, value, 1, 1 << 20)? << 20,
        "--upload-quota-mb" => {
            config.files.upload_quota_bytes = number(name, value, 0, 1 << 30)? << 20
        }
        "--files-unattached-secs" => {
            config.files.unattached_after = Duration::from_secs(number(name, value, 0, 1 << 32)?)
        }
        "--files-sweep-secs" => {
            config.files.sweep_every = Duration::from_secs(number(name, value, 1, 1 << 32)?)
        }
        "--metrics-token" => {
            // A header value: visible ASCII only, and long enough not to be guessed.
            let ok = value.len() >= 16 && value.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(format!(
                    "{name}: a token is at least 16 visible ASCII characters (no spaces)"
                ));
            }
            config.metrics_token = Some(value.to_string());
        }
        _ => return Err(format!("unknown flag {name}")),
    }
    Ok(())
}

fn non_empty(name: &str, value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err(format!("{name} needs a non-empty value"))
    } else {
        Ok(value.to_string())
    }
}

fn number(name: &str, value: &str, min: u64, max: u64) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{name}: '{value}' is not a whole number from {min} to {max}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Invocation, String> {
        parse(args.iter().map(|s| s.to_string()), |_| None)
    }

    #[test]
    fn defaults_without_arguments() {
        let Invocation::Serve(c) = parse_args(&[]).unwrap() else {
            panic!("expected serve")
        };
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8080));
        assert_eq!(c.queue_frames, 1024);
        assert_eq!(c.queue_bytes, 4 << 20);
        assert_eq!(c.max_connections_per_ip, 256);
    }

    #[test]
    fn the_file_flags_set_the_limits_and_the_sweep() {
        let Invocation::Serve(c) = parse_args(&[]).unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(c.files.max_upload_bytes, 10 << 20);
        assert_eq!(c.files.upload_quota_bytes, 500 << 20);
        assert_eq!(c.files.unattached_after, DAY);
        let Invocation::Serve(c) = parse_args(&[
            "--max-upload-mb",
            "2",
            "--upload-quota-mb",
            "0",
            "--files-dir",
            "/tmp/f",
            "--files-unattached-secs",
            "1",
            "--files-sweep-secs",
            "1",
        ])
        .unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(c.files.max_upload_bytes, 2 << 20);
        assert_eq!(c.files.upload_quota_bytes, 0);
        assert_eq!(c.files.dir.as_deref(), Some("/tmp/f"));
        assert_eq!(c.files.unattached_after, Duration::from_secs(1));
        assert_eq!(c.files.sweep_every, Duration::from_secs(1));
        assert!(parse_args(&["--max-upload-mb", "0"]).is_err());
        assert!(!help_text().contains("--files-sweep-secs"));
        assert!(help_text().contains("--max-upload-mb"));
    }

    #[test]
    fn the_per_address_limit_can_be_turned_off() {
        let Invocation::Serve(c) = parse_args(&["--max-connections-per-ip", "0"]).unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(c.max_connections_per_ip, 0);
        assert!(parse_args(&["--max-connections-per-ip", "-1"]).is_err());
    }

    #[test]
    fn flags_override_environment() {
        let env = |k: &str| match k {
            "PORT" => Some("9000".to_string()),
            "HOST" => Some("0.0.0.0".to_string()),
            _ => None,
        };
        let args = [
            "--port",
            "9100",
            "--allow-origin",
            "https://a.example",
            "--allow-origin=https://b.example",
        ];
        let Invocation::Serve(c) = parse(args.iter().map(|s| s.to_string()), env).unwrap() else {
            panic!()
        };
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 9100));
        assert_eq!(
            c.allow_origins,
            vec!["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn bad_values_are_one_line_errors() {
        for args in [
            &["--port", "70000"][..],
            &["--rate-limit", "-1"],
            &["--queue-frames"],
            &["--queue-bytes", "1000"],
            &["--nope"],
            &["--log-level", "loud"],
        ] {
            let err = parse_args(args).unwrap_err();
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn backup_takes_an_output_file() {
        match parse_args(&["backup", "out.db", "--db", "x.db"]).unwrap() {
            Invocation::Backup { config, out } => {
                assert_eq!((config.db.as_str(), out.as_str()), ("x.db", "out.db"))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_args(&["backup"]).is_err());
    }

    #[test]
    fn room_limits_take_zero_for_none() {
        let Invocation::Serve(c) = parse_args(&[]).unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(
            (c.max_rooms, c.rooms_per_connection, c.rooms_per_address),
            (10_000, 10, 30)
        );
        assert_eq!(c.remove_empty_rooms_after, Some(DAY * 90));
        let args = [
            "--max-rooms",
            "0",
            "--rooms-per-address=0",
            "--remove-empty-rooms-after",
            "0",
        ];
        let Invocation::Serve(c) = parse_args(&args).unwrap() else {
            panic!("expected serve")
        };
        assert_eq!((c.max_rooms, c.rooms_per_address), (0, 0));
        assert_eq!(c.remove_empty_rooms_after, None);
        let Invocation::Serve(c) = parse_args(&["--remove-empty-rooms-after", "7"]).unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(c.remove_empty_rooms_after, Some(DAY * 7));
        assert!(parse_args(&["--remove-empty-rooms-after", "-1"]).is_err());
    }

    #[test]
    fn account_flags_and_commands_parse() {
        let Invocation::Serve(c) = parse_args(&[
            "--guests",
            "off",
            "--registration=invite",
            "--session-days",
            "7",
            "--sign-in-failures",
            "0",
            "--registrations-per-hour",
            "2",
            "--trust-proxy",
        ])
        .unwrap() else {
            panic!("expected serve")
        };
        assert!(!c.accounts.guests && c.trust_proxy);
        assert_eq!(
            c.accounts.registration,
            crate::accounts::Registration::Invite
        );
        assert_eq!(
            (
                c.accounts.session_days,
                c.accounts.sign_in_failures,
                c.accounts.registrations_per_hour
            ),
            (7, 0, 2)
        );
        assert!(parse_args(&["--guests", "maybe"]).is_err());
        assert!(parse_args(&["--registration", "sometimes"]).is_err());
        match parse_args(&["user", "admin", "Ana", "--off", "--db", "x.db"]).unwrap() {
            Invocation::User { config, command } => {
                assert_eq!(command, UserCommand::Admin("Ana".into(), false));
                assert_eq!(config.db, "x.db");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_args(&["user", "add", "Ana"]).unwrap(),
            Invocation::User {
                command: UserCommand::Add(_),
                ..
            }
        ));
        assert!(matches!(
            parse_args(&["invite"]).unwrap(),
            Invocation::Invite { .. }
        ));
        assert!(parse_args(&["user", "fly", "Ana"]).is_err());
        assert!(parse_args(&["user"]).is_err());
    }

    #[test]
    fn audit_takes_a_limit_and_the_database() {
        match parse_args(&["audit", "--limit", "5", "--db", "x.db"]).unwrap() {
            Invocation::Audit { config, limit } => {
                assert_eq!((config.db.as_str(), limit), ("x.db", 5))
            }
            other => panic!("{other:?}"),
        }
        match parse_args(&["audit", "--limit=7"]).unwrap() {
            Invocation::Audit { limit, .. } => assert_eq!(limit, 7),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_args(&["audit"]).unwrap(),
            Invocation::Audit {
                limit: AUDIT_DEFAULT_LIMIT,
                ..
            }
        ));
        assert!(parse_args(&["audit", "--limit", "0"]).is_err());
        assert!(parse_args(&["audit", "--limit"]).is_err());
        assert!(
            parse_args(&["--limit", "5"]).is_err(),
            "--limit is only for audit"
        );
    }

    #[test]
    fn healthcheck_and_the_metrics_token_parse() {
        match parse_args(&["healthcheck", "--port", "9000"]).unwrap() {
            Invocation::Healthcheck { config } => assert_eq!(config.port, 9000),
            other => panic!("{other:?}"),
        }
        let Invocation::Serve(c) = parse_args(&["--metrics-token", "0123456789abcdef"]).unwrap()
        else {
            panic!("expected serve")
        };
        assert_eq!(c.metrics_token.as_deref(), Some("0123456789abcdef"));
        assert!(parse_args(&["--metrics-token", "short"]).is_err());
        assert!(parse_args(&["--metrics-token", "with a space in it!"]).is_err());
        let from_env = parse(std::iter::empty(), |k| {
            (k == "PAPO_METRICS_TOKEN").then(|| "fedcba9876543210".to_string())
        });
        let Ok(Invocation::Serve(c)) = from_env else {
            panic!("expected serve")
        };
        assert_eq!(c.metrics_token.as_deref(), Some("fedcba9876543210"));
    }

    #[test]
    fn help_lists_every_flag() {
        let help = help_text();
        for f in FLAGS {
            assert!(help.contains(f.name), "{}", f.name);
        }
    }
}
