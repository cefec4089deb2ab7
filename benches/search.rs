//! Search benchmark (PROTOCOL.md 1.1 "Search", issue 12): over a database of 1,000,000
//! stored messages of chat-like Portuguese and English (word frequencies following Zipf's
//! law, 200 rooms of very different sizes, DMs between 50 accounts), how long a search
//! over one user's rooms and DMs takes, run as the search pool runs it (its own read-only
//! connection, reply encoded): p50 and p99 by kind of query. Then the sustained rate at
//! which the store commits messages to a file with the index and without it (its triggers
//! and table dropped), alternating, the median of a few runs each.
//!
//! Run: `cargo bench --bench search [-- --messages N --db PATH --runs R]`. The database is
//! built once into PATH (default /tmp/papo-search-bench/1m.db) and reused by later runs.

use papo::outbox;
use papo::store::search::SearchJob;
use papo::store::search_pool;
use papo::store::{MessageRecord, NewRoom, Store, StoreJob};
use rusqlite::{Connection, OpenFlags};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Jobs per transaction, as the store thread takes them when busy.
const BATCH: usize = 1024;
const ROOMS: i64 = 200;
const ACCOUNTS: i64 = 50;
/// The rooms the searching user has joined: the biggest, middling and small ones.
const MY_ROOMS: [i64; 8] = [1, 3, 8, 20, 45, 90, 150, 199];
/// The searching user's account (its DMs are searched too).
const ME: i64 = 1;

/// Common chat words, most frequent first (Portuguese and English mixed, as in a
/// Brazilian community chat).
const COMMON: &[&str] = &[
    "de",
    "que",
    "não",
    "o",
    "a",
    "é",
    "e",
    "eu",
    "the",
    "pra",
    "você",
    "um",
    "isso",
    "tá",
    "com",
    "mas",
    "se",
    "no",
    "na",
    "uma",
    "do",
    "da",
    "em",
    "to",
    "i",
    "sim",
    "aí",
    "kkk",
    "mais",
    "já",
    "tem",
    "por",
    "bem",
    "vai",
    "só",
    "muito",
    "quando",
    "agora",
    "hoje",
    "aqui",
    "você",
    "it",
    "and",
    "is",
    "you",
    "também",
    "então",
    "vamos",
    "bora",
    "jogar",
    "jogo",
    "amanhã",
    "ontem",
    "noite",
    "dia",
    "gente",
    "galera",
    "obrigado",
    "valeu",
    "legal",
    "massa",
    "acho",
    "sei",
    "fazer",
    "ver",
    "casa",
    "trabalho",
    "escola",
    "aula",
    "prova",
    "filme",
    "série",
    "música",
    "show",
    "festa",
    "comer",
    "pizza",
    "café",
    "ação",
    "função",
    "atenção",
    "informação",
    "computador",
    "código",
    "servidor",
    "erro",
    "problema",
    "resolver",
    "ajuda",
    "pergunta",
    "resposta",
    "mensagem",
    "sala",
    "grupo",
    "that",
    "this",
    "what",
    "for",
    "with",
    "have",
    "not",
    "are",
    "was",
    "but",
    "game",
    "play",
    "tonight",
    "tomorrow",
    "meeting",
    "project",
    "bug",
    "fix",
    "deploy",
    "release",
    "coffee",
    "lunch",
    "weekend",
    "sábado",
    "domingo",
    "segunda",
    "sexta",
    "feriado",
    "viagem",
    "praia",
    "chuva",
    "calor",
    "frio",
    "futebol",
    "time",
    "gol",
    "campeonato",
    "reunião",
    "projeto",
    "cliente",
    "entrega",
    "prazo",
    "semana",
    "mês",
    "ano",
];

/// Syllables rare words are made of: a long tail of tens of thousands of distinct words,
/// as names, places, slang and typos give real chat.
const SYLLABLES: &[&str] = &[
    "ba", "be", "bi", "bo", "bu", "ca", "ce", "ci", "co", "cu", "da", "de", "di", "do", "du", "fa",
    "fe", "fi", "fo", "ga", "gi", "go", "la", "le", "li", "lo", "lu", "ma", "me", "mi", "mo", "mu",
    "na", "ne", "ni", "no", "pa", "pe", "pi", "po", "ra", "re", "ri", "ro", "sa", "se", "si", "so",
    "ta", "te", "ti", "to", "tu", "va", "ve", "vi", "xa", "zu", "ção", "nh",
];

/// A small, fast, deterministic random source (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks 0..n with probability proportional to 1/(k+1)^s.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|k| {
                total += 1.0 / ((k + 1) as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        Zipf(cumulative.into_iter().map(|c| c / total).collect())
    }
    fn pick(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.0.partition_point(|&c| c < u).min(self.0.len() - 1)
    }
}

/// The rare word number `k`: two to four syllables, deterministic.
fn rare_word(k: u64) -> String {
    let n = SYLLABLES.len() as u64;
    let mut word = String::new();
    let mut x = k;
    let syllables = 2 + k % 3;
    for _ in 0..syllables {
        word.push_str(SYLLABLES[(x % n) as usize]);
        x = x / n + 7 * k + 3;
    }
    word
}

/// Makes message texts: mostly common words, one in five from the long tail.
struct Texts {
    rng: Rng,
    common: Zipf,
    rare: Zipf,
}

impl Texts {
    fn new(seed: u64) -> Texts {
        Texts {
            rng: Rng(seed),
            common: Zipf::new(COMMON.len(), 1.0),
            rare: Zipf::new(50_000, 1.1),
        }
    }
    fn next(&mut self) -> String {
        let words = 3 + self.rng.below(16);
        let mut text = String::new();
        for i in 0..words {
            if i > 0 {
                text.push(' ');
            }
            if self.rng.below(5) == 0 {
                text.push_str(&rare_word(self.rare.pick(&mut self.rng) as u64));
            } else {
                let word = COMMON[self.common.pick(&mut self.rng)];
                if i == 0 && self.rng.below(3) == 0 {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        text.extend(first.to_uppercase());
                        text.push_str(chars.as_str());
                    }
                } else {
                    text.push_str(word);
                }
            }
        }
        if self.rng.below(4) == 0 {
            text.push(['?', '!', '.'][self.rng.below(3) as usize]);
        }
        text
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let messages: u64 = arg("--messages")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
    let db = arg("--db").unwrap_or_else(|| {
        let dir = std::env::temp_dir().join("papo-search-bench");
        std::fs::create_dir_all(&dir).expect("bench dir");
        dir.join(if messages == 1_000_000 {
            "1m.db".to_string()
        } else {
            format!("{messages}.db")
        })
        .to_string_lossy()
        .into_owned()
    });
    println!(
        "papo search benchmark ({}), load: {}",
        std::env::consts::ARCH,
        loadavg()
    );

    let writes_only = args.iter().any(|a| a == "--writes-only");
    let (mut p50, mut p99, mut stored) = (0.0, 0.0, 0);
    if !writes_only {
        let built = build(&db, messages);
        let reader = Connection::open_with_flags(
            &db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("read-only connection");
        stored = reader
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        let mine: i64 = reader
            .query_row(
                &format!(
                    "SELECT count(*) FROM messages WHERE room_id IN ({})",
                    MY_ROOMS.map(|r| r.to_string()).join(",")
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        match built {
            Some(took) => println!(
                "built {db}: {stored} messages in {:.0} s ({:.0}/s, through Store::apply)",
                took.as_secs_f64(),
                stored as f64 / took.as_secs_f64()
            ),
            None => println!("reusing {db}: {stored} messages"),
        }
        println!(
            "the searching user: {} rooms holding {mine} messages, and account {ME}'s DMs",
            MY_ROOMS.len()
        );

        let kinds: &[(&str, &[&str])] = &[
            ("common word", &["de", "que", "não", "the", "pra", "você"]),
            ("common prefix", &["co", "pr", "jog", "mens", "tra", "se"]),
            (
                "rare word",
                &[
                    &rare_word(20_000),
                    &rare_word(31_337),
                    &rare_word(45_000),
                    "xadrez",
                ],
            ),
            ("rare prefix", &["zuxa", "vive", "xaxa", "calo"]),
            (
                "two words",
                &["bora jogar", "erro servidor", "the game", "acao hoje"],
            ),
            ("one letter", &["a", "e", "x"]),
            (
                "common word 4+",
                &["isso", "você", "quando", "jogar", "muito", "agora"],
            ),
        ];
        // Wall time is what a person waits; the thread's CPU time is the same search without
        // the time other programs on a shared machine took the core from it.
        println!(
            "{:<16} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "query", "found", "p50 ms", "p99 ms", "max ms", "cpu p50", "cpu p99"
        );
        let (mut all, mut all_cpu) = (Vec::new(), Vec::new());
        for (kind, queries) in kinds {
            let (mut times, mut cpu) = (Vec::new(), Vec::new());
            let mut found = 0;
            for round in 0..40 {
                for q in queries.iter() {
                    let (took, used, n) = one_search(&reader, q);
                    if round == 0 {
                        found += n;
                    }
                    // The first round warms the cache, as a running server's would be.
                    if round > 0 {
                        times.push(took);
                        cpu.push(used);
                    }
                }
            }
            all.extend(times.iter().copied());
            all_cpu.extend(cpu.iter().copied());
            let (p50, p99, max) = percentiles(&mut times);
            let (c50, c99, _) = percentiles(&mut cpu);
            println!(
                "{kind:<16} {found:>6} {p50:>9.3} {p99:>9.3} {max:>9.3} {c50:>9.3} {c99:>9.3}"
            );
        }
        let max;
        (p50, p99, max) = percentiles(&mut all);
        let (c50, c99, _) = percentiles(&mut all_cpu);
        println!(
            "{:<16} {:>6} {p50:>9.3} {p99:>9.3} {max:>9.3} {c50:>9.3} {c99:>9.3}",
            "all", ""
        );
        drop(reader);
    }
    // Write rate, with and without the index, alternating so machine load hits both alike.
    let dir = std::path::Path::new(&db).parent().unwrap().to_path_buf();
    let file = dir.join("write.db").to_string_lossy().into_owned();
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let (mut with_cpu, mut without_cpu) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (rate, cpu) = write_rate(&file, 200_000, true);
        with.push(rate);
        with_cpu.push(cpu);
        let (rate, cpu) = write_rate(&file, 200_000, false);
        without.push(rate);
        without_cpu.push(cpu);
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{file}{suffix}"));
    }
    for v in [&mut with, &mut without, &mut with_cpu, &mut without_cpu] {
        v.sort_by(f64::total_cmp);
    }
    let (w, wo) = (with[runs / 2], without[runs / 2]);
    let (wc, woc) = (with_cpu[runs / 2], without_cpu[runs / 2]);
    println!("messages committed/s, file (WAL, sync FULL), batches of {BATCH}, {runs} runs each:");
    println!("  without the index: median {wo:.0}/s  (runs {without:.0?})");
    println!("  with the index:    median {w:.0}/s  (runs {with:.0?})");
    println!("  cost of the index: {:.1} %", (1.0 - w / wo) * 100.0);
    println!(
        "  CPU of the store's thread per message: {woc:.2} µs without, {wc:.2} µs with the index"
    );
    println!("load after: {}", loadavg());
    println!(
        "{{\"bench\":\"search\",\"messages\":{stored},\"p50_ms\":{p50:.3},\"p99_ms\":{p99:.3},\
         \"write_with_index\":{w:.0},\"write_without_index\":{wo:.0}}}"
    );
}

/// One search as the pool runs it; its wall time, its thread's CPU time, and how many it
/// found.
fn one_search(conn: &Connection, q: &str) -> (Duration, Duration, usize) {
    let job = SearchJob {
        conn: 1,
        q: q.into(),
        terms: papo::protocol::search_terms(q).expect("a valid q"),
        rooms: MY_ROOMS
            .iter()
            .map(|&r| (r, Arc::from(format!("sala{r}"))))
            .collect(),
        account: Some(ME),
        limit: 20,
        reference: None,
    };
    let (start, cpu) = (Instant::now(), thread_cpu());
    let answer = search_pool::run(conn, &job);
    let (took, used) = (start.elapsed(), thread_cpu() - cpu);
    let json = answer.frame.json();
    assert!(json.starts_with("{\"type\":\"search\""), "{json}");
    (took, used, json.matches("\"id\":").count())
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn percentiles(times: &mut [Duration]) -> (f64, f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(times[times.len() / 2]),
        ms(times[(times.len() * 99 / 100).min(times.len() - 1)]),
        ms(times[times.len() - 1]),
    )
}

/// Builds the database unless it is there already; how long it took if it built it.
fn build(db: &str, messages: u64) -> Option<Duration> {
    if std::path::Path::new(db).exists() {
        return None;
    }
    let partial = format!("{db}.partial");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{partial}{suffix}"));
    }
    let start = Instant::now();
    let mut store = Store::open(&partial).expect("open");
    fts_variant(&mut store);
    store.apply(
        (1..=ROOMS)
            .map(|id| {
                StoreJob::CreateRoom(NewRoom {
                    id,
                    name: format!("sala{id}"),
                    key: format!("sala{id}"),
                    password_hash: None,
                    creator: "bench".into(),
                    created_at: 0,
                })
            })
            .collect(),
    );
    let rooms = Zipf::new(ROOMS as usize, 1.0);
    let mut texts = Texts::new(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(12345);
    append(&mut store, messages, |_| {
        let text = texts.next();
        if rng.below(100) < 3 {
            let from = 1 + rng.below(ACCOUNTS as u64) as i64;
            let to = 1 + (from + rng.below(ACCOUNTS as u64 - 1) as i64) % ACCOUNTS;
            (None, Some((from, to)), text)
        } else {
            (Some(1 + rooms.pick(&mut rng) as i64), None, text)
        }
    });
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::rename(format!("{partial}{suffix}"), format!("{db}{suffix}"));
    }
    Some(start.elapsed())
}

/// What a message is: its room, or its DM's accounts; and its text.
type Made = (Option<i64>, Option<(i64, i64)>, String);

/// Appends `count` messages in batches of `BATCH` through `Store::apply`.
fn append(store: &mut Store, count: u64, mut make: impl FnMut(u64) -> Made) {
    let sender: Arc<str> = "Ana".into();
    // No ack is asked for, so nothing reaches this queue unless a write fails.
    let (author, _inbox) = outbox::channel(16);
    let mut id = 1;
    while id <= count {
        let end = (id + BATCH as u64).min(count + 1);
        let jobs = (id..end)
            .map(|i| {
                let (room_id, dm, text) = make(i);
                StoreJob::Append {
                    record: MessageRecord {
                        id: i,
                        room_id,
                        sender: sender.clone(),
                        recipient: dm.map(|_| "Beto".into()),
                        sender_account: dm.map(|d| d.0),
                        recipient_account: dm.map(|d| d.1),
                        text,
                        ts: 1_764_000_000_000 + i,
                        files: Vec::new(),
                    },
                    author: author.clone(),
                    ack: None,
                }
            })
            .collect();
        store.apply(jobs);
        id = end;
    }
}

/// Messages a second committed through `Store::apply`, with or without the index, and the
/// CPU time (µs) this thread spent per message.
fn write_rate(path: &str, count: u64, index: bool) -> (f64, f64) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let mut store = Store::open(path).expect("open");
    if index {
        fts_variant(&mut store);
    }
    if !index {
        store
            .connection()
            .execute_batch(
                "DROP TRIGGER message_search_insert; DROP TRIGGER message_search_delete;
                 DROP TRIGGER message_search_update_old; DROP TRIGGER message_search_update_new;
                 DROP TABLE message_search;",
            )
            .expect("drop the index");
    }
    store.apply(vec![StoreJob::CreateRoom(NewRoom {
        id: 1,
        name: "sala".into(),
        key: "sala".into(),
        password_hash: None,
        creator: "bench".into(),
        created_at: 0,
    })]);
    let mut texts = Texts::new(7);
    let (start, cpu) = (Instant::now(), thread_cpu());
    append(&mut store, count, |_| (Some(1), None, texts.next()));
    // Counted too: the messages still waiting for the index, indexed as the idle store
    // thread would, so the rate is of messages committed and indexed.
    while store.has_unindexed() {
        store.index_while_idle();
    }
    let used = thread_cpu() - cpu;
    (
        count as f64 / start.elapsed().as_secs_f64(),
        used.as_secs_f64() * 1e6 / count as f64,
    )
}

/// Experiment only: `PAPO_BENCH_FTS="prefix='3', columnsize=0"` recreates the index with
/// other FTS5 options before anything is written.
fn fts_variant(store: &mut Store) {
    if let Ok(options) = std::env::var("PAPO_BENCH_FTS") {
        store
            .connection()
            .execute_batch(&format!(
                "DROP TABLE message_search;
                 CREATE VIRTUAL TABLE message_search USING fts5(text, scope,
                     content = 'message_search_source', content_rowid = 'id',
                     tokenize = 'unicode61 remove_diacritics 2', {options});"
            ))
            .expect("fts variant");
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
