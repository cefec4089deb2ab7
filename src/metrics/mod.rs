//! The operator's numbers, served as `GET /metrics` in the Prometheus (OpenMetrics) text
//! format: one registry per server, whose counters and gauges every layer updates with a
//! single relaxed atomic operation (no lock, no allocation) from its hot path.
//!
//! Each handle is resolved once here (a labelled family's member included), so the hub,
//! the store and the listener hold plain `Counter`/`Gauge` clones and never look a label up
//! while routing messages. The hub's queue depth is read when scraped, not kept current.
//!
//! Areas that land later call one method each: uploads `Metrics::upload(bytes)`, moderation
//! `Metrics::moderation(action)`.

pub mod access;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};

/// The content type of the answer: OpenMetrics text, which Prometheus scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label set with one fixed key and a value from a short, known list.
type Kind = [(&'static str, &'static str); 1];
/// A label set whose value comes from another area (moderation actions).
type Action = [(&'static str, String); 1];

/// The moderation commands of PROTOCOL.md 1.1, and `ban` (a kick with minutes).
const MODERATION_ACTIONS: [&str; 8] = [
    "edit",
    "delete",
    "kick",
    "ban",
    "unban",
    "delete_room",
    "suspend",
    "unsuspend",
];

/// What a WebSocket reader or the limits refuse as too much, for `papo_rate_limited_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// A connection's commands over `--rate-limit`/`--rate-burst`.
    Commands,
    /// Sign-in attempts (login, `hello` with a password, password change) over the
    /// failure limits.
    SignIn,
    /// Registrations over `--registrations-per-hour`.
    Registration,
    /// Wrong room passwords over their limits.
    RoomPassword,
    /// `create` over the per-connection or per-address allowance.
    RoomCreation,
    /// A new socket from an address at `--max-connections-per-ip`.
    AddressSockets,
}

impl Limit {
    const ALL: [Limit; 6] = [
        Limit::Commands,
        Limit::SignIn,
        Limit::Registration,
        Limit::RoomPassword,
        Limit::RoomCreation,
        Limit::AddressSockets,
    ];

    fn label(self) -> &'static str {
        match self {
            Limit::Commands => "commands",
            Limit::SignIn => "sign_in",
            Limit::Registration => "registration",
            Limit::RoomPassword => "room_password",
            Limit::RoomCreation => "room_creation",
            Limit::AddressSockets => "address_sockets",
        }
    }
}

/// Which kind of client connection is open, for `papo_connections_open`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnKind {
    /// An upgraded WebSocket, from the `101` to its close.
    WebSocket,
    /// A plain HTTP request being answered (page, API, health, metrics).
    Http,
}

/// Every metric of one server, and the registry that names them.
pub struct Metrics {
    /// Names, help texts and types, for encoding; holds clones of the handles below.
    registry: Registry,
    /// Open WebSocket connections (a gauge moved by `OpenConnection`).
    websockets_open: Gauge,
    /// Plain HTTP connections being served.
    http_open: Gauge,
    /// Users online: guests plus accounts (an account with three tabs is one user), as the
    /// hub last counted them.
    pub users_online: Gauge,
    /// Rooms the hub holds.
    pub rooms: Gauge,
    /// Room messages and DMs accepted.
    pub messages_in: Counter,
    /// Copies of those messages queued for recipients (a room message to 100 members is
    /// 100 deliveries).
    pub deliveries_out: Counter,
    /// Successful sign-ins with a password (login, `hello` with a password) and
    /// registrations; a connection resuming by its session cookie is not one.
    pub sign_ins: Counter,
    /// Sign-ins refused for a wrong name or password.
    pub sign_in_failures: Counter,
    /// Refusals under each limit, resolved per kind (in `Limit::ALL` order).
    rate_limited: [Counter; Limit::ALL.len()],
    /// Connections closed as slow consumers (1008).
    pub slow_consumer_drops: Counter,
    /// Files uploaded, and their bytes.
    uploads: Counter,
    upload_bytes: Counter,
    /// How long each store transaction took, from begin to commit (fsync included).
    pub store_commit_seconds: Histogram,
    /// Inputs waiting on the hub's channel; set from `hub_queue_len` when scraped.
    hub_queue_depth: Gauge,
    /// Reads the hub channel's length; set once the channel exists.
    hub_queue_len: OnceLock<Box<dyn Fn() -> usize + Send + Sync>>,
    /// Moderation actions by action (`kick`, `ban`, `delete`, …): its labels are the
    /// moderation area's own words, so it stays a family.
    moderation: Family<Action, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("papo");
        let connections = Family::<Kind, Gauge>::default();
        registry.register(
            "connections_open",
            "Client connections open now, by kind (ws: WebSockets, http: requests being served)",
            connections.clone(),
        );
        let websockets_open = connections.get_or_create_owned(&[("kind", "ws")]);
        let http_open = connections.get_or_create_owned(&[("kind", "http")]);

        let users_online = Gauge::default();
        registry.register(
            "users_online",
            "Users online: guests and accounts (an account on several connections counts once)",
            users_online.clone(),
        );
        let rooms = Gauge::default();
        registry.register("rooms", "Rooms the server holds", rooms.clone());
        let messages_in = Counter::default();
        registry.register(
            "messages_in",
            "Room messages and direct messages accepted",
            messages_in.clone(),
        );
        let deliveries_out = Counter::default();
        registry.register(
            "deliveries_out",
            "Copies of messages queued for their recipients",
            deliveries_out.clone(),
        );
        let sign_ins = Counter::default();
        registry.register(
            "sign_ins",
            "Successful sign-ins with a password (login, hello with a password) and registrations",
            sign_ins.clone(),
        );
        let sign_in_failures = Counter::default();
        registry.register(
            "sign_in_failures",
            "Sign-ins refused for a wrong name or password (a password change's current one too)",
            sign_in_failures.clone(),
        );
        let limited = Family::<Kind, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by a limit, by kind",
            limited.clone(),
        );
        let rate_limited = Limit::ALL.map(|l| limited.get_or_create_owned(&[("kind", l.label())]));
        let slow_consumer_drops = Counter::default();
        registry.register(
            "slow_consumer_drops",
            "Connections closed because they did not read fast enough (1008 slow consumer)",
            slow_consumer_drops.clone(),
        );
        let uploads = Counter::default();
        registry.register("uploads", "Files uploaded", uploads.clone());
        let upload_bytes = Counter::default();
        registry.register(
            "upload_bytes",
            "Bytes of files uploaded",
            upload_bytes.clone(),
        );
        // 100 µs to ~3.3 s: a batch commit is a fsync, fast on an SSD, slow on a busy disk.
        let store_commit_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "store_commit_seconds",
            "Time each database transaction took, from begin to commit",
            store_commit_seconds.clone(),
        );
        let hub_queue_depth = Gauge::default();
        registry.register(
            "hub_queue_depth",
            "Inputs waiting for the hub thread (its channel's length)",
            hub_queue_depth.clone(),
        );
        let moderation = Family::<Action, Counter>::default();
        registry.register(
            "moderation_actions",
            "Moderation actions carried out, by action (the command's type; a kick with minutes is a ban)",
            moderation.clone(),
        );
        // Shown at 0 from the start, so a dashboard's rate() has a series before the first.
        for action in MODERATION_ACTIONS {
            moderation.get_or_create_owned(&[("action", action.to_string())]);
        }
        Metrics {
            registry,
            websockets_open,
            http_open,
            users_online,
            rooms,
            messages_in,
            deliveries_out,
            sign_ins,
            sign_in_failures,
            rate_limited,
            slow_consumer_drops,
            uploads,
            upload_bytes,
            store_commit_seconds,
            hub_queue_depth,
            hub_queue_len: OnceLock::new(),
            moderation,
        }
    }

    /// Tells the metrics how to read the hub's queue length (once, at start).
    pub fn watch_hub_queue(&self, len: impl Fn() -> usize + Send + Sync + 'static) {
        let _ = self.hub_queue_len.set(Box::new(len));
    }

    /// Counts a connection open until the returned guard is dropped.
    pub fn open(self: &Arc<Self>, kind: ConnKind) -> OpenConnection {
        let gauge = match kind {
            ConnKind::WebSocket => &self.websockets_open,
            ConnKind::Http => &self.http_open,
        };
        gauge.inc();
        OpenConnection(gauge.clone())
    }

    /// Counts one refusal under `limit`.
    pub fn rate_limited(&self, limit: Limit) {
        if let Some(i) = Limit::ALL.iter().position(|&l| l == limit) {
            self.rate_limited[i].inc();
        }
    }

    /// Counts one uploaded file of `bytes` bytes: the upload handler calls this once the
    /// file is kept.
    pub fn upload(&self, bytes: u64) {
        self.uploads.inc();
        self.upload_bytes.inc_by(bytes);
    }

    /// Counts one moderation action carried out (`edit`, `delete`, `kick`, `ban`, `unban`,
    /// `delete_room`, `suspend`, `unsuspend`): the moderation code calls this once an action
    /// has succeeded. Not a hot path, so the label is looked up each time.
    pub fn moderation(&self, action: &str) {
        self.moderation
            .get_or_create(&[("action", action.to_string())])
            .inc();
    }

    /// The exposition: every metric, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        if let Some(len) = self.hub_queue_len.get() {
            self.hub_queue_depth
                .set(i64::try_from(len()).unwrap_or(i64::MAX));
        }
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// One open connection in `papo_connections_open`; counted out when dropped.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_named_in_the_exposition() {
        let metrics = Arc::new(Metrics::new());
        metrics.watch_hub_queue(|| 7);
        let _ws = metrics.open(ConnKind::WebSocket);
        metrics.messages_in.inc();
        metrics.rate_limited(Limit::SignIn);
        metrics.upload(1000);
        metrics.moderation("kick");
        metrics.store_commit_seconds.observe(0.002);
        let text = metrics.render();
        for line in [
            "papo_connections_open{kind=\"ws\"} 1",
            "papo_connections_open{kind=\"http\"} 0",
            "papo_users_online 0",
            "papo_rooms 0",
            "papo_messages_in_total 1",
            "papo_deliveries_out_total 0",
            "papo_sign_ins_total 0",
            "papo_sign_in_failures_total 0",
            "papo_rate_limited_total{kind=\"sign_in\"} 1",
            "papo_rate_limited_total{kind=\"commands\"} 0",
            "papo_slow_consumer_drops_total 0",
            "papo_uploads_total 1",
            "papo_upload_bytes_total 1000",
            "papo_store_commit_seconds_count 1",
            "papo_hub_queue_depth 7",
            "papo_moderation_actions_total{action=\"kick\"} 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_connection_is_counted_out_when_its_guard_drops() {
        let metrics = Arc::new(Metrics::new());
        let open = metrics.open(ConnKind::Http);
        assert_eq!(metrics.http_open.get(), 1);
        drop(open);
        assert_eq!(metrics.http_open.get(), 0);
    }
}
