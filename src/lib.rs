//! papo: a real-time web chat with rooms in one binary. `start` runs a server on a
//! `Config` and returns a handle to stop it; the binary and the tests both use it.
//!
//! A message's path: `listener` accepts and routes the connection, `ws` reads a frame and
//! `protocol` parses it into a command, the `hub` decides and queues encoded frames on
//! each recipient's `outbox`, and the `writer` pool sends them.

pub mod accounts;
mod address_limit;
mod capacity;
pub mod config;
pub mod files;
mod frame;
mod head;
pub mod healthcheck;
mod http;
pub mod hub;
pub mod ids;
mod listener;
mod memory;
pub mod metrics;
pub mod outbox;
pub mod password;
pub mod protocol;
mod ratelimit;
pub mod room;
pub mod store;
mod threads;
mod upgrade;
mod writer;
mod ws;

pub use config::Config;

use hub::{Hub, HubInput};
use listener::Shared;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use store::Store;
use threads::ThreadCount;

/// Commands waiting for the hub; a full queue makes readers wait, which slows senders.
const HUB_QUEUE: usize = 65_536;
/// How long shutdown lets connections close politely before cutting them.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
    hub_thread: Option<JoinHandle<()>>,
    password_threads: Vec<JoinHandle<()>>,
    store_thread: Option<JoinHandle<()>>,
    /// The search pool's threads: they end once the store thread, which feeds them, has.
    search_threads: Vec<JoinHandle<()>>,
    /// Hands memory freed after bursts of big frames back to the system; stops on drop.
    _trimmer: memory::Trimmer,
}

/// Binds the port and starts serving on it.
pub fn start(mut config: Config) -> io::Result<Server> {
    if let Some((room, why)) = capacity::websocket_capacity() {
        if config.max_connections > room {
            // Only an explicit request the machine cannot meet deserves a warning; the
            // default simply adapts.
            let level = if config.max_connections == Config::default().max_connections {
                log::Level::Info
            } else {
                log::Level::Warn
            };
            log::log!(
                level,
                "--max-connections {} is more than this machine allows ({why}): serving at most {room}",
                config.max_connections
            );
            config.max_connections = room;
        }
    }
    let mut store = Store::open(&config.db)
        .map_err(|e| io::Error::other(format!("database {}: {e}", config.db)))?;
    let metrics = Arc::new(metrics::Metrics::new());
    store.observe_commits(metrics.store_commit_seconds.clone());
    let loaded = store
        .load(room::RECENT_CAPACITY)
        .map_err(|e| io::Error::other(format!("database {}: {e}", config.db)))?;
    log::info!(
        "database {}: {} rooms, last message id {}",
        config.db,
        loaded.rooms.len(),
        loaded.last_message_id
    );
    // The files' bytes, beside the database; what no row stands for (a crash mid-upload)
    // goes now, before anyone can upload.
    let files_dir = Arc::new(
        files::storage::FileDir::open(&config.db, config.files.dir.as_deref())
            .map_err(|e| io::Error::other(format!("files directory: {e}")))?,
    );
    let file_index = files::index::FileIndex::from_loaded(&loaded.files);
    let orphans = files_dir.collect_garbage(Duration::ZERO, |id| file_index.get(id).is_some());
    log::info!(
        "files in {}: {} stored{}",
        files_dir.path().display(),
        file_index.len(),
        match orphans {
            0 => String::new(),
            n => format!(", {n} left over without a row deleted"),
        }
    );
    {
        let (dir, index) = (files_dir.clone(), file_index.clone());
        store.on_files_removed(move |ids| {
            index.remove(&ids);
            dir.remove(&ids);
        });
    }
    let upload_limits = files::limits::UploadLimits::new(
        files::limits::UploadPolicy {
            max_bytes: config.files.max_upload_bytes,
            quota_bytes: config.files.upload_quota_bytes,
        },
        &file_index.uploads_since(hub::now_millis().saturating_sub(files::limits::QUOTA_WINDOW_MS)),
        hub::now_millis(),
    );
    let listener = TcpListener::bind((config.host.as_str(), config.port))?;
    let local_addr = listener.local_addr()?;
    // Made once here, so no sign-in ever waits for it (and the hub never makes it).
    accounts::hashing::dummy_phc();
    let (hash_pool, _hash_threads) =
        accounts::hashing::HashPool::start(accounts::hashing::default_threads())?;
    let (hub_tx, hub_rx) = crossbeam_channel::bounded(HUB_QUEUE);
    let queued = hub_rx.clone();
    metrics.watch_hub_queue(move || queued.len());
    let api_hub = hub_tx.clone();
    let http = http::HttpServer::start(
        Arc::new(accounts::api::Api {
            // Never blocks the HTTP thread: a hub too far behind to take a call is "busy".
            hub: Box::new(move |call| api_hub.try_send(HubInput::Account(call)).is_ok()),
            pool: hash_pool.clone(),
            policy: config.accounts.clone(),
            allow_origins: config.allow_origins.clone(),
            tarpit: accounts::api::Tarpit::start()?,
        }),
        store.health(),
        metrics.clone(),
        config.metrics_token.clone(),
    )?;

    let (store_tx, store_rx) = store::queue();
    let uploads_hub = hub_tx.clone();
    let uploads = Arc::new(files::upload::Uploads {
        dir: files_dir.clone(),
        index: file_index.clone(),
        limits: upload_limits,
        pool: files::process::ProcessPool::start(files::process::default_threads())?,
        store: std::sync::Mutex::new(Some(store_tx.clone())),
        hub: Box::new(move |call| uploads_hub.try_send(HubInput::Account(call)).is_ok()),
    });
    let last_change = loaded.accounts.last_change;
    let changes_hub = hub_tx.clone();
    let (stored_tx, stored_rx) = crossbeam_channel::unbounded();
    // Searches read the file on connections of their own; a `:memory:` database has no
    // file to open twice, and its store thread answers them itself.
    let search_threads = if config.db == ":memory:" {
        Vec::new()
    } else {
        let answers = stored_tx.clone();
        let pool = store::search_pool::start(
            &config.db,
            store::search_pool::default_threads(),
            move |answer| {
                let _ = answers.send(store::StoreDone::Searched(answer));
            },
        )?;
        // The store holds the only sender: the pool ends when the store thread does.
        store.use_search_pool(pool.jobs);
        pool.threads
    };
    let store_thread = std::thread::Builder::new()
        .name("papo-store".into())
        .spawn(move || {
            store::run(
                store,
                store_rx,
                last_change,
                |changes| {
                    // Bounded: the hub may itself be waiting for this thread's queue.
                    let sent = changes_hub.send_timeout(
                        HubInput::AccountsChanged(changes),
                        std::time::Duration::from_secs(5),
                    );
                    if sent.is_err() {
                        log::warn!("account changes from the command line wait for a restart");
                    }
                },
                |done| {
                    let _ = stored_tx.send(done);
                },
            )
        })?;
    let (password_tx, password_rx) = password::queue(config.password_threads);
    let limits = password::AttemptLimits::with_failures(
        config.password_failures_per_connection,
        config.password_failures_per_ip,
    );
    let hub = Hub::new(config.presence_window, password_tx, store_tx, loaded)
        .with_room_rules(hub::RoomRules::from_config(&config))
        .with_attempt_limits(limits)
        .with_moderation_minute(config.moderation_minute)
        .with_max_bans_per_room(config.max_bans_per_room)
        .with_accounts(
            config.accounts.clone(),
            Some(hash_pool),
            Some(hub_tx.clone()),
        )
        .with_files(
            file_index,
            hub::files::FileSweep::new(config.files.unattached_after, config.files.sweep_every),
        )
        .with_metrics(metrics.clone());
    let hub_thread = std::thread::Builder::new()
        .name("papo-hub".into())
        .spawn(move || hub::run(hub, hub_rx, stored_rx))?;
    let answers = hub_tx.clone();
    let password_threads = password::start_pool(
        config.password_threads,
        config.password_nice,
        password_rx,
        move |done| {
            let _ = answers.send(HubInput::Password(done));
        },
    )?;

    let threads = ThreadCount::default();
    // A connection has a writer thread of its own only while its socket is full; the
    // capacity check above counts those threads too.
    let writers = writer::WriterPool::start(
        config.writer_threads,
        capacity::backlog_threads(config.max_connections),
        &threads,
    )?;
    let trimmer = memory::Trimmer::start(memory::TRIM_PERIOD)?;
    let shared = Arc::new(Shared::new(
        config, hub_tx, threads, http, writers, uploads, metrics,
    ));
    let accepting = shared.clone();
    let accept_thread = std::thread::Builder::new()
        .name("papo-accept".into())
        .spawn(move || listener::accept_loop(listener, accepting))?;
    log::info!("papo listening on {local_addr}");
    Ok(Server {
        local_addr,
        shared,
        accept_thread: Some(accept_thread),
        hub_thread: Some(hub_thread),
        password_threads,
        store_thread: Some(store_thread),
        search_threads,
        _trimmer: trimmer,
    })
}

impl Server {
    /// The address the server listens on (its real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes every connection (with close code 1001), and joins every
    /// thread the server started.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(accept_thread) = self.accept_thread.take() else {
            return;
        };
        self.shared.stop_accepting();
        // accept() has no timeout: a connection of our own wakes it to see the flag.
        let mut wake = self.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let _ = accept_thread.join();

        // Uploads still running are told the store is gone, so its queue can close.
        self.shared.uploads.close();
        // The hub queues a close frame for every connection and ends; the password pool
        // ends when the hub drops its queue.
        let _ = self.shared.hub.send(HubInput::Shutdown);
        if let Some(t) = self.hub_thread.take() {
            let _ = t.join();
        }
        for t in self.password_threads.drain(..) {
            let _ = t.join();
        }
        // With the hub gone the store's queue closes: it commits what is left and ends.
        if let Some(t) = self.store_thread.take() {
            let _ = t.join();
        }
        for t in self.search_threads.drain(..) {
            let _ = t.join();
        }
        if !self.shared.threads.wait(CLOSE_GRACE) {
            self.shared.close_all_sockets();
            if !self.shared.threads.wait(Duration::from_secs(10)) {
                log::warn!(
                    "{} connection threads still running after shutdown",
                    self.shared.threads.live()
                );
            }
        }
        self.shared.writers.stop();
        log::info!("papo on {} stopped", self.local_addr);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
