//! The HTTP API under `/api/` (PROTOCOL.md 1.1, "The HTTP API" and "Accounts and
//! sessions"): register, login, logout, the session list, revoke, password change; and
//! `POST /api/invites`, the admin's way to make an invite code ("a valid single-use code
//! from the operator or the admin").
//!
//! Requests arrive on tiny_http's one request thread, which must never wait on argon2:
//! the cheap questions (is this cookie a session? may this address try again?) go to the
//! hub and come back in microseconds; the password work is handed, with the request
//! itself (tiny_http's `Request` is `Send` and answers from any thread), to the hashing
//! pool, which answers the client when it is done. The body is already whole when the
//! request gets here: the listener read it, at most 16 KiB, under the head's deadline.

use super::calls::{AccountCall, ApiError, Client, RevokeTarget, SignedIn};
use super::hashing::{self, HashPool};
use super::{strong_enough, token, Policy};
use crate::protocol::user_name;
use crossbeam_channel::Sender;
use serde_json::{json, Map, Value};
use std::io::Read;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response};

/// The largest request body the API reads.
pub const MAX_BODY: usize = 16 * 1024;

/// Headers the listener adds to every request it passes on (after removing any a client
/// sent): the client's address, and whether it reached us over https.
pub const CLIENT_HEADER: &str = "x-papo-client";
pub const HTTPS_HEADER: &str = "x-papo-https";
/// How long a request waits for the hub's answer before it is told to try again.
const HUB_WAIT: Duration = Duration::from_secs(5);
/// The longest `User-Agent` kept for the session list.
const AGENT_CHARS: usize = 200;

/// How long a `429` for a sign-in or a registration is held before it is sent. A client
/// over its limit that keeps asking (a script guessing passwords in a loop) then asks at
/// most once a second per connection, instead of churning connections as fast as the
/// machine allows and taking CPU from everyone's messages.
const TARPIT: Duration = Duration::from_secs(1);
/// Refusals held at once at most; past it they are sent at once.
const TARPIT_QUEUE: usize = 4096;

/// What the API needs from the server around it.
pub struct Api {
    /// Puts a call on the hub's queue; false if the hub is gone.
    pub hub: Box<dyn Fn(AccountCall) -> bool + Send + Sync>,
    pub pool: HashPool,
    pub policy: Policy,
    /// Browser origins let in besides the server's own.
    pub allow_origins: Vec<String>,
    /// Holds back refusals over the failure limits (see `TARPIT`).
    pub tarpit: Tarpit,
}

/// One thread that sends held-back answers when their time comes. The delay is the same
/// for all, so they come due in the order they were held: a queue, not a heap.
pub struct Tarpit {
    held: Sender<(std::time::Instant, Request, Answer)>,
}

impl Tarpit {
    pub fn start() -> std::io::Result<Tarpit> {
        let (held, queue) =
            crossbeam_channel::bounded::<(std::time::Instant, Request, Answer)>(TARPIT_QUEUE);
        std::thread::Builder::new()
            .name("papo-tarpit".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                while let Ok((due, request, answer)) = queue.recv() {
                    let wait = due.saturating_duration_since(std::time::Instant::now());
                    std::thread::sleep(wait);
                    respond(request, answer);
                }
            })?;
        Ok(Tarpit { held })
    }

    /// Sends `answer` after `TARPIT`, or now if too many are held already.
    fn hold(&self, request: Request, answer: Answer) {
        let due = std::time::Instant::now() + TARPIT;
        if let Err(e) = self.held.try_send((due, request, answer)) {
            let (_, request, answer) = e.into_inner();
            respond(request, answer);
        }
    }
}

/// Answers an error, holding a limit's refusal back (see `TARPIT`).
fn refuse(api: &Api, request: Request, e: ApiError) {
    if e.status == 429 {
        api.tarpit.hold(request, e.into());
    } else {
        respond(request, e.into());
    }
}

/// What one request carries that the handlers need, read before the request is moved.
struct Incoming {
    /// Its address (limits count by it) and `User-Agent` (the session list shows it).
    client: Client,
    /// Reached over https: the cookie gets `Secure`.
    https: bool,
    /// SHA-256 of the session cookie's token, if there is one.
    session: Option<[u8; 32]>,
}

/// An answer: status, JSON body (none for 204), and extra headers.
struct Answer {
    /// The HTTP status.
    status: u16,
    /// The JSON body; `None` for `204`.
    body: Option<Value>,
    /// `Set-Cookie`, `Retry-After`, `Allow`.
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    fn empty() -> Answer {
        Answer {
            status: 204,
            body: None,
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: String) -> Answer {
        self.headers.push((name, value));
        self
    }
}

impl From<ApiError> for Answer {
    fn from(e: ApiError) -> Answer {
        let mut body = json!({"code": e.code, "message": e.message});
        let mut answer = Answer::json(e.status, Value::Null);
        if let Some(secs) = e.retry_after {
            body["retry_after"] = json!(secs);
            answer = answer.with("Retry-After", secs.to_string());
        }
        if let Some(until) = e.until {
            body["until"] = json!(until);
        }
        answer.body = Some(body);
        answer
    }
}

fn header_value<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Answers one `/api/` request, now or (for password work) from a pool thread.
pub fn handle(api: &Arc<Api>, mut request: Request) {
    let incoming = Incoming {
        client: Client {
            addr: header_value(&request, CLIENT_HEADER)
                .and_then(|a| a.parse::<IpAddr>().ok())
                .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
            agent: header_value(&request, "user-agent")
                .unwrap_or("")
                .chars()
                .take(AGENT_CHARS)
                .collect(),
        },
        https: header_value(&request, HTTPS_HEADER) == Some("1"),
        session: header_value(&request, "cookie")
            .and_then(token::from_cookie_header)
            .map(token::digest),
    };
    let origin = header_value(&request, "origin");
    let host = header_value(&request, "host");
    if !crate::upgrade::origin_allowed(origin, host, &api.allow_origins) {
        let e = ApiError::new(403, "forbidden_origin", "this origin may not use the API");
        return respond(request, e.into());
    }
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let method = request.method().clone();
    let post = method == Method::Post;
    let known_post = matches!(
        path.as_str(),
        "/api/register"
            | "/api/login"
            | "/api/logout"
            | "/api/sessions/revoke"
            | "/api/password"
            | "/api/invites"
    );
    if path == "/api/session" {
        if method != Method::Get && method != Method::Head {
            return respond(request, method_not_allowed("GET"));
        }
        let answer = session(api, &incoming);
        return respond(request, answer);
    }
    if !known_post {
        let e = ApiError::new(404, "not_found", "no such API");
        return respond(request, e.into());
    }
    if !post {
        return respond(request, method_not_allowed("POST"));
    }
    let json_type = header_value(&request, "content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        let e = ApiError::new(415, "bad_request", "the body must be application/json");
        return respond(request, e.into());
    }
    let body = match read_body(&mut request) {
        Ok(body) => body,
        Err(e) => return respond(request, e.into()),
    };
    let answer = match path.as_str() {
        "/api/register" => return register(api, request, body, incoming),
        "/api/login" => return login(api, request, body, incoming),
        "/api/password" => return change_password(api, request, body, incoming),
        "/api/logout" => logout(api, &incoming),
        "/api/invites" => invite(api, &incoming),
        _ => revoke(api, &body, &incoming),
    };
    respond(request, answer)
}

fn method_not_allowed(allow: &'static str) -> Answer {
    Answer::from(ApiError::new(405, "bad_request", "method not allowed"))
        .with("Allow", allow.into())
}

/// The body as a JSON object (`bad_request` otherwise).
fn read_body(request: &mut Request) -> Result<Map<String, Value>, ApiError> {
    let mut bytes = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut bytes);
    if read.is_err() {
        return Err(ApiError::new(400, "bad_request", "cannot read the body"));
    }
    if bytes.len() > MAX_BODY {
        return Err(ApiError::new(413, "too_large", "the body is over 16 KiB"));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::new(
            400,
            "bad_request",
            "the body must be a JSON object",
        )),
    }
}

fn string_field(body: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    match body.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::new(
            400,
            "bad_request",
            format!("\"{key}\" must be a string"),
        )),
        None => Err(ApiError::new(
            400,
            "bad_request",
            format!("missing field \"{key}\""),
        )),
    }
}

fn optional_string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string_field(body, key).map(Some),
    }
}

/// Asks the hub and waits (bounded) for its answer.
fn ask<T>(
    api: &Api,
    make: impl FnOnce(Sender<Result<T, ApiError>>) -> AccountCall,
) -> Result<T, ApiError> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    if !(api.hub)(make(tx)) {
        return Err(ApiError::unavailable());
    }
    rx.recv_timeout(HUB_WAIT)
        .unwrap_or_else(|_| Err(ApiError::unavailable()))
}

/// Runs `work` on the hashing pool, which then answers the request; if the pool is full,
/// answers "try again" at once.
fn on_pool(api: &Api, request: Request, work: impl FnOnce() -> Answer + Send + 'static) {
    // The request travels in a slot so it can be answered here if the pool refuses the job.
    let slot = Arc::new(Mutex::new(Some(request)));
    let job_slot = slot.clone();
    let submitted = api.pool.submit(Box::new(move || {
        let answer = work();
        if let Some(request) = take(&job_slot) {
            respond(request, answer);
        }
    }));
    if submitted.is_err() {
        if let Some(request) = take(&slot) {
            respond(request, ApiError::rate_limited(1).into());
        }
    }
}

fn take(slot: &Mutex<Option<Request>>) -> Option<Request> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

fn signed_in_answer(status: u16, who: SignedIn, token: &str, api: &Api, https: bool) -> Answer {
    let max_age = api.policy.session_days * 86_400;
    Answer::json(status, json!({"name": who.name, "admin": who.admin}))
        .with("Set-Cookie", token::set_cookie(token, max_age, https))
}

fn register(api: &Arc<Api>, request: Request, body: Map<String, Value>, incoming: Incoming) {
    let https = incoming.https;
    let checked = (|| -> Result<_, ApiError> {
        let (name, password) = (
            string_field(&body, "name")?,
            string_field(&body, "password")?,
        );
        let invite = optional_string(&body, "invite")?;
        let name = user_name(&name).map_err(|r| ApiError::new(400, "invalid_name", r.message))?;
        if !strong_enough(&password) {
            return Err(ApiError::new(
                400,
                "weak_password",
                "a password is 8 to 128 characters",
            ));
        }
        ask(api, |reply| AccountCall::CheckRegister {
            name: name.clone(),
            invite: invite.clone(),
            client: incoming.client.clone(),
            reply,
        })?;
        Ok((name, password, invite))
    })();
    let (name, password, invite) = match checked {
        Ok(ok) => ok,
        Err(e) => return refuse(api, request, e),
    };
    let api2 = api.clone();
    on_pool(api, request, move || {
        let phc = hashing::hash(&password);
        let token = token::new_token();
        let registered = ask(&api2, |reply| AccountCall::Register {
            name,
            phc,
            invite,
            client: incoming.client,
            token_hash: token::digest(&token),
            reply,
        });
        match registered {
            Ok(who) => signed_in_answer(201, who, &token, &api2, https),
            Err(e) => e.into(),
        }
    });
}

fn login(api: &Arc<Api>, request: Request, body: Map<String, Value>, incoming: Incoming) {
    let https = incoming.https;
    let begun = (|| -> Result<_, ApiError> {
        let (name, password) = (
            string_field(&body, "name")?,
            string_field(&body, "password")?,
        );
        let ticket = ask(api, |reply| AccountCall::BeginSignIn {
            name,
            client: incoming.client.clone(),
            reply,
        })?;
        Ok((ticket, password))
    })();
    let (ticket, password) = match begun {
        Ok(ok) => ok,
        Err(e) => return refuse(api, request, e),
    };
    let api2 = api.clone();
    on_pool(api, request, move || {
        // An unknown name is checked against the dummy hash: the same work, the same time.
        let ok = hashing::verify_ticket(&ticket, &password);
        let token = token::new_token();
        let signed_in = ask(&api2, |reply| AccountCall::FinishSignIn {
            ticket,
            ok,
            client: incoming.client,
            token_hash: token::digest(&token),
            reply,
        });
        match signed_in {
            Ok(who) => signed_in_answer(200, who, &token, &api2, https),
            Err(e) => e.into(),
        }
    });
}

fn change_password(api: &Arc<Api>, request: Request, body: Map<String, Value>, incoming: Incoming) {
    let begun = (|| -> Result<_, ApiError> {
        let token_hash = incoming.session.ok_or_else(ApiError::not_signed_in)?;
        let (current, new) = (string_field(&body, "current")?, string_field(&body, "new")?);
        if !strong_enough(&new) {
            return Err(ApiError::new(
                400,
                "weak_password",
                "a password is 8 to 128 characters",
            ));
        }
        let ticket = ask(api, |reply| AccountCall::BeginPasswordChange {
            token_hash,
            client: incoming.client.clone(),
            reply,
        })?;
        Ok((token_hash, ticket, current, new))
    })();
    let (token_hash, ticket, current, new) = match begun {
        Ok(ok) => ok,
        Err(e) => return refuse(api, request, e),
    };
    let api2 = api.clone();
    on_pool(api, request, move || {
        let ok = hashing::verify_ticket(&ticket, &current);
        let new_phc = ok.then(|| hashing::hash(&new));
        let changed = ask(&api2, |reply| AccountCall::FinishPasswordChange {
            token_hash,
            ticket,
            new_phc,
            client: incoming.client,
            reply,
        });
        match changed {
            Ok(()) => Answer::empty(),
            Err(e) => e.into(),
        }
    });
}

fn session(api: &Api, incoming: &Incoming) -> Answer {
    let Some(token_hash) = incoming.session else {
        return ApiError::not_signed_in().into();
    };
    match ask(api, |reply| AccountCall::Session { token_hash, reply }) {
        Ok(view) => Answer::json(200, serde_json::to_value(view).unwrap_or(Value::Null)),
        Err(e) => e.into(),
    }
}

fn logout(api: &Api, incoming: &Incoming) -> Answer {
    let Some(token_hash) = incoming.session else {
        return ApiError::not_signed_in().into();
    };
    match ask(api, |reply| AccountCall::Logout { token_hash, reply }) {
        Ok(()) => Answer::empty().with("Set-Cookie", token::clear_cookie(incoming.https)),
        Err(e) => e.into(),
    }
}

fn invite(api: &Api, incoming: &Incoming) -> Answer {
    let Some(token_hash) = incoming.session else {
        return ApiError::not_signed_in().into();
    };
    let code = token::new_invite_code();
    let expires = crate::hub::now_millis() + super::cli::INVITE_DAYS * 86_400_000;
    let made = ask(api, |reply| AccountCall::CreateInvite {
        token_hash,
        code_hash: token::digest(&code),
        expires,
        reply,
    });
    match made {
        Ok(()) => Answer::json(201, json!({"code": code, "expires": expires})),
        Err(e) => e.into(),
    }
}

fn revoke(api: &Api, body: &Map<String, Value>, incoming: &Incoming) -> Answer {
    let Some(token_hash) = incoming.session else {
        return ApiError::not_signed_in().into();
    };
    let target = match (body.get("id"), body.get("others")) {
        (Some(id), None) => match id.as_i64() {
            Some(id) => RevokeTarget::One(id),
            None => return ApiError::new(400, "bad_request", "\"id\" must be an integer").into(),
        },
        (None, Some(Value::Bool(true))) => RevokeTarget::Others,
        _ => {
            return ApiError::new(400, "bad_request", "revoke needs \"id\" or \"others\":true")
                .into()
        }
    };
    match ask(api, |reply| AccountCall::Revoke {
        token_hash,
        target,
        reply,
    }) {
        Ok(()) => Answer::empty(),
        Err(e) => e.into(),
    }
}

fn respond(request: Request, answer: Answer) {
    let body = answer
        .body
        .map(|b| b.to_string().into_bytes())
        .unwrap_or_default();
    let mut response = Response::from_data(body).with_status_code(answer.status);
    if answer.status != 204 {
        response = response.with_header(header("Content-Type", "application/json"));
    }
    response = response
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"));
    for (name, value) in answer.headers {
        response = response.with_header(header(name, &value));
    }
    if let Err(e) = request.respond(response) {
        log::debug!("API response not sent: {e}");
    }
}

fn header(name: &str, value: &str) -> Header {
    // Names are constants; values are numbers, cookies of hex digits, and method lists.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|_| {
        Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).expect("constant header")
    })
}
