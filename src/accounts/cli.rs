//! The operator's commands on the database file: `papo user add|passwd|admin|del|list`
//! and `papo invite`. They work while a server runs on the same file (SQLite in WAL mode
//! takes one writer at a time and the server's reads go on); each change is logged in
//! `account_changes`, which the running server reads within a second or two.

use super::{hashing, strong_enough, token};
use crate::config::UserCommand;
use crate::protocol::{fold, user_name};
use crate::store::accounts::{self as stored, StoredAccount};
use crate::store::Store;
use std::io::BufRead;

/// How long an invite code stays valid.
pub const INVITE_DAYS: u64 = 7;

/// Runs a `papo user …` command; `Ok` is what to print on standard output.
pub fn user(db: &str, command: &UserCommand, stdin: &mut dyn BufRead) -> Result<String, String> {
    let mut store = Store::open(db).map_err(|e| format!("database {db}: {e}"))?;
    let conn = store.connection();
    let failed = |e: rusqlite::Error| format!("database {db}: {e}");
    match command {
        UserCommand::Add(name) => {
            let name = user_name(name).map_err(|r| r.message)?;
            let password = read_password(stdin)?;
            let account = StoredAccount {
                id: token::random_id(),
                name: name.clone(),
                password_hash: hashing::hash(&password),
                admin: false,
                created_at: now_ms(),
            };
            if !stored::add(conn, &account).map_err(failed)? {
                return Err(format!("{name} already has an account"));
            }
            let admin = stored::find(conn, &fold(&name))
                .map_err(failed)?
                .is_some_and(|a| a.admin);
            Ok(format!(
                "added {name}{}",
                if admin {
                    " (admin: the first account)"
                } else {
                    ""
                }
            ))
        }
        UserCommand::Passwd(name) => {
            let password = read_password(stdin)?;
            let phc = hashing::hash(&password);
            if !stored::set_password(conn, &fold(name), &phc).map_err(failed)? {
                return Err(format!("{name} has no account"));
            }
            Ok(format!("password of {name} changed; its sessions ended"))
        }
        UserCommand::Admin(name, on) => {
            if !stored::set_admin(conn, &fold(name), *on).map_err(failed)? {
                return Err(format!("{name} has no account"));
            }
            Ok(format!(
                "{name} {} the admin",
                if *on { "is now" } else { "is no longer" }
            ))
        }
        UserCommand::Del(name) => {
            if !stored::delete(conn, &fold(name)).map_err(failed)? {
                return Err(format!("{name} has no account"));
            }
            Ok(format!("deleted {name}"))
        }
        UserCommand::List => {
            let mut out = String::new();
            for a in stored::list(conn).map_err(failed)? {
                out.push_str(&a.name);
                if a.admin {
                    out.push_str("\tadmin");
                }
                out.push('\n');
            }
            Ok(out.trim_end().to_string())
        }
    }
}

/// Makes an invite code, keeps its hash, and returns the code itself (printed alone).
pub fn invite(db: &str) -> Result<String, String> {
    let mut store = Store::open(db).map_err(|e| format!("database {db}: {e}"))?;
    let code = token::new_invite_code();
    let expires = now_ms() + INVITE_DAYS * 86_400_000;
    stored::add_invite(store.connection(), token::digest(&code), expires)
        .map_err(|e| format!("database {db}: {e}"))?;
    Ok(code)
}

/// One line from standard input, without its line ending, checked as an account password.
fn read_password(stdin: &mut dyn BufRead) -> Result<String, String> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if !strong_enough(&password) {
        return Err("a password is 8 to 128 characters".into());
    }
    Ok(password)
}

fn now_ms() -> u64 {
    crate::hub::now_millis()
}
