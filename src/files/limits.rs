//! What one account may upload: files of at most `--max-upload-mb`, at most
//! `--upload-quota-mb` a day (a rolling 24 hours, counted from the uploads themselves, so a
//! restart forgets nothing), at most `UPLOADS_PER_WINDOW` uploads per `WINDOW`, and at most
//! `CONCURRENT` at once. Every refusal but size is a `429` with the seconds until it would
//! pass.

use crate::ratelimit::RateLimiter;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The quota counts uploads over this window.
pub const QUOTA_WINDOW_MS: u64 = 86_400_000;
/// Uploads one account may start per `WINDOW` (all at once if saved up): a person sharing
/// a photo album drops a few dozen at once; a script hammering the disk gets `429`.
pub const UPLOADS_PER_WINDOW: u32 = 60;
pub const WINDOW: Duration = Duration::from_secs(600);
/// Uploads of one account in progress at once.
pub const CONCURRENT: usize = 4;

/// The operator's limits.
#[derive(Debug, Clone, Copy)]
pub struct UploadPolicy {
    /// Largest file, in bytes (`--max-upload-mb`).
    pub max_bytes: u64,
    /// Bytes one account may upload per 24 hours; 0 = no quota (`--upload-quota-mb`).
    pub quota_bytes: u64,
}

/// Why an upload may not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Over the size limit: `413`.
    TooLarge,
    /// Over the quota or the rate: `429` after this many seconds.
    Limited { retry_after: u64, why: &'static str },
}

/// One account's recent uploads.
#[derive(Debug)]
struct Account {
    /// (when, bytes) of each upload in the quota window, oldest first.
    recent: VecDeque<(u64, u64)>,
    /// Bytes of `recent`.
    used: u64,
    /// Bytes promised to uploads in progress (their declared length, or what the quota
    /// leaves them), so parallel uploads cannot together pass the quota.
    reserved: u64,
    /// Uploads in progress.
    running: usize,
    /// Uploads it may still start.
    allowance: RateLimiter,
}

/// Every account's uploads; shared by the upload threads.
#[derive(Debug, Clone)]
pub struct UploadLimits {
    policy: UploadPolicy,
    accounts: Arc<Mutex<HashMap<i64, Account>>>,
}

/// An upload allowed to go on: releases its place and reservation when dropped, and
/// counts against the quota once `stored`.
#[derive(Debug)]
pub struct Permit {
    limits: UploadLimits,
    account: i64,
    /// Bytes reserved for it.
    reserved: u64,
    /// The most it may read: the size limit, or less when the quota leaves less.
    pub max_bytes: u64,
    /// Whether reading past `max_bytes` is the quota's doing (429) rather than the size
    /// limit's (413).
    pub quota_bound: bool,
}

impl UploadLimits {
    /// Limits starting from the uploads already stored: (owner, when, bytes).
    pub fn new(policy: UploadPolicy, stored: &[(i64, u64, u64)], now_ms: u64) -> UploadLimits {
        let limits = UploadLimits {
            policy,
            accounts: Arc::new(Mutex::new(HashMap::new())),
        };
        let mut sorted = stored.to_vec();
        sorted.sort_by_key(|&(_, when, _)| when);
        {
            let mut accounts = limits.lock();
            for (owner, when, size) in sorted {
                if when + QUOTA_WINDOW_MS > now_ms {
                    let account = accounts.entry(owner).or_insert_with(fresh);
                    account.recent.push_back((when, size));
                    account.used += size;
                }
            }
        }
        limits
    }

    pub fn policy(&self) -> UploadPolicy {
        self.policy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Account>> {
        self.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May `account` start an upload of `declared` bytes (`None`: not said, chunked)?
    pub fn begin(
        &self,
        account: i64,
        declared: Option<u64>,
        now_ms: u64,
    ) -> Result<Permit, Refusal> {
        if declared.is_some_and(|n| n > self.policy.max_bytes) {
            return Err(Refusal::TooLarge);
        }
        let mut accounts = self.lock();
        let entry = accounts.entry(account).or_insert_with(fresh);
        entry.expire(now_ms);
        if entry.running >= CONCURRENT {
            return Err(Refusal::Limited {
                retry_after: 1,
                why: "too many uploads at once",
            });
        }
        let (mut max_bytes, mut quota_bound) = (self.policy.max_bytes, false);
        let mut reserved = 0;
        if self.policy.quota_bytes > 0 {
            let want = declared.unwrap_or(1).max(1);
            let committed = entry.used + entry.reserved;
            if committed + want > self.policy.quota_bytes {
                return Err(Refusal::Limited {
                    retry_after: entry.seconds_until_fits(want, self.policy.quota_bytes, now_ms),
                    why: "over the daily upload quota",
                });
            }
            let left = self.policy.quota_bytes - committed;
            if left < max_bytes {
                (max_bytes, quota_bound) = (left, true);
            }
            reserved = declared.unwrap_or(max_bytes);
        }
        if !entry.allowance.allow(Instant::now()) {
            return Err(Refusal::Limited {
                retry_after: (WINDOW.as_secs() / u64::from(UPLOADS_PER_WINDOW)).max(1),
                why: "too many uploads; slow down",
            });
        }
        entry.running += 1;
        entry.reserved += reserved;
        Ok(Permit {
            limits: self.clone(),
            account,
            reserved,
            max_bytes,
            quota_bound,
        })
    }
}

fn fresh() -> Account {
    Account {
        recent: VecDeque::new(),
        used: 0,
        reserved: 0,
        running: 0,
        allowance: RateLimiter::per_window(UPLOADS_PER_WINDOW, WINDOW, Instant::now()),
    }
}

impl Account {
    fn expire(&mut self, now_ms: u64) {
        while let Some(&(when, size)) = self.recent.front() {
            if when + QUOTA_WINDOW_MS > now_ms {
                break;
            }
            self.recent.pop_front();
            self.used -= size;
        }
    }

    /// Whole seconds until `want` more bytes fit under `quota` as old uploads age out.
    fn seconds_until_fits(&self, want: u64, quota: u64, now_ms: u64) -> u64 {
        let mut committed = self.used + self.reserved;
        for &(when, size) in &self.recent {
            committed -= size;
            if committed + want <= quota {
                let at = when + QUOTA_WINDOW_MS;
                return at.saturating_sub(now_ms).div_ceil(1000).max(1);
            }
        }
        // It will not fit even when everything has aged out (uploads in progress, or more
        // than the quota at once): a day is the honest answer.
        QUOTA_WINDOW_MS / 1000
    }
}

impl Permit {
    /// The account uploading.
    pub fn account(&self) -> i64 {
        self.account
    }

    /// The upload is stored: its bytes count against the quota from `now_ms`.
    pub fn stored(self, size: u64, now_ms: u64) {
        let mut accounts = self.limits.lock();
        if let Some(entry) = accounts.get_mut(&self.account) {
            entry.recent.push_back((now_ms, size));
            entry.used += size;
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut accounts = self.limits.lock();
        if let Some(entry) = accounts.get_mut(&self.account) {
            entry.running = entry.running.saturating_sub(1);
            entry.reserved = entry.reserved.saturating_sub(self.reserved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn the_size_limit_and_the_quota_refuse_with_the_right_answers() {
        let limits = UploadLimits::new(
            UploadPolicy {
                max_bytes: 10 * MB,
                quota_bytes: 15 * MB,
            },
            &[(1, 1_000, 8 * MB)],
            2_000,
        );
        assert_eq!(
            limits.begin(1, Some(11 * MB), 2_000).unwrap_err(),
            Refusal::TooLarge
        );
        // 8 used: 7 left.
        match limits.begin(1, Some(8 * MB), 2_000).unwrap_err() {
            Refusal::Limited { retry_after, .. } => {
                assert_eq!(retry_after, (1_000 + QUOTA_WINDOW_MS - 2_000) / 1000)
            }
            other => panic!("{other:?}"),
        }
        let chunked = limits.begin(1, None, 2_000).unwrap();
        assert_eq!((chunked.max_bytes, chunked.quota_bound), (7 * MB, true));
        drop(chunked);
        let permit = limits.begin(1, Some(7 * MB), 2_000).unwrap();
        permit.stored(7 * MB, 2_000);
        assert!(limits.begin(1, Some(1), 3_000).is_err());
        // A day after the first upload its bytes free up; another account is untouched.
        assert!(limits
            .begin(1, Some(8 * MB), 1_000 + QUOTA_WINDOW_MS)
            .is_ok());
        assert!(limits.begin(2, Some(10 * MB), 2_000).is_ok());
    }

    #[test]
    fn a_quota_of_zero_is_off_and_uploads_at_once_are_bounded() {
        let limits = UploadLimits::new(
            UploadPolicy {
                max_bytes: MB,
                quota_bytes: 0,
            },
            &[],
            0,
        );
        let permits: Vec<Permit> = (0..CONCURRENT)
            .map(|_| limits.begin(1, Some(MB), 0).unwrap())
            .collect();
        assert!(matches!(
            limits.begin(1, Some(1), 0),
            Err(Refusal::Limited { .. })
        ));
        drop(permits);
        assert!(limits.begin(1, Some(1), 0).is_ok());
    }
}
