//! What an admin can tune, with the defaults documented in README.md. Values arrive already
//! typed from the shim (Prosody's typed option getters); `validate` checks the ranges.

pub use super::push::PushMode;

/// The `show` an account presents in a room while none of its sessions is joined there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `minimix_history_length`: messages replayed to a late session when it asks for no limit.
    pub history_length: usize,
    /// `minimix_history_max_messages`: messages kept per room for late sessions.
    pub history_max_messages: usize,
    /// `minimix_history_from_archive`: older history for late sessions comes from the archive.
    pub history_from_archive: bool,
    /// `minimix_history_max_bytes`: serialized bytes kept per room for late sessions.
    pub history_max_bytes: usize,
    /// `minimix_max_rooms`: rooms one account may be in.
    pub max_rooms: usize,
    /// `minimix_max_occupants`: occupant presences cached per room.
    pub max_occupants: usize,
    /// `minimix_max_joins_per_minute`: join requests one account's sessions may send a minute.
    pub max_joins_per_minute: usize,
    /// `minimix_max_pending_iqs`: iq id mappings kept per account.
    pub max_pending_iqs: usize,
    /// `minimix_iq_timeout`: seconds an iq id mapping lives.
    pub iq_timeout_ms: u64,
    /// `minimix_join_timeout`: seconds a join may stay unanswered before the sessions get an error.
    pub join_timeout_ms: u64,
    /// `minimix_leave_after`: seconds without a joined session before the account leaves; `None`: never.
    pub leave_after_ms: Option<u64>,
    /// `minimix_away_show`: the `<show/>` the account gets in a room while no session is joined.
    pub away_show: Option<String>,
    /// `minimix_away_status`: the `<status/>` text with it.
    pub away_status: Option<String>,
    /// `minimix_bookmark_sync`: clear a bookmark's autojoin when the account leaves for good.
    pub bookmark_sync: bool,
    /// `minimix_bookmark_joins`: bookmark (with autojoin) a room a session joins that is not bookmarked.
    pub bookmark_joins: bool,
    /// `minimix_max_bookmarks`: bookmarks remembered per account.
    pub max_bookmarks: usize,
    /// `minimix_ping_interval`: seconds between XEP-0410 self-pings of each room; `None`: never.
    pub ping_interval_ms: Option<u64>,
    /// `minimix_mam_max_skipped`: groupchat messages one page of a MAM query that leaves
    /// groupchat out may skip (past it the page keeps them, so paging stays complete).
    pub mam_max_skipped: usize,
    /// `minimix_push`: which groupchat messages notify the account's push services (XEP-0357)
    /// while none of its sessions is joined to the room.
    pub push: PushMode,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            history_length: 20,
            history_max_messages: 100,
            history_max_bytes: 256 * 1024,
            history_from_archive: true,
            max_rooms: 256,
            max_occupants: 2000,
            max_pending_iqs: 256,
            max_joins_per_minute: 60,
            iq_timeout_ms: 120_000,
            join_timeout_ms: 60_000,
            leave_after_ms: None,
            away_show: Some("xa".to_owned()),
            away_status: None,
            bookmark_sync: true,
            bookmark_joins: false,
            max_bookmarks: 1000,
            ping_interval_ms: Some(900_000),
            mam_max_skipped: 5000,
            push: PushMode::Mentions,
        }
    }
}

/// A configuration value outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub option: &'static str,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.option, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks every limit; the shim refuses to load with the first error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |option: &'static str, v: usize| {
            if v == 0 {
                Err(ConfigError {
                    option,
                    reason: "must be at least 1".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("minimix_max_rooms", self.max_rooms)?;
        positive("minimix_max_occupants", self.max_occupants)?;
        positive("minimix_max_pending_iqs", self.max_pending_iqs)?;
        positive("minimix_max_joins_per_minute", self.max_joins_per_minute)?;
        positive("minimix_mam_max_skipped", self.mam_max_skipped)?;

        if let Some(show) = &self.away_show {
            if !matches!(show.as_str(), "away" | "xa" | "dnd" | "chat") {
                return Err(ConfigError {
                    option: "minimix_away_show",
                    reason: format!("'{show}' is not one of away, xa, dnd, chat"),
                });
            }
        }
        if let Some(status) = &self.away_status {
            if status.chars().any(char::is_control) {
                return Err(ConfigError {
                    option: "minimix_away_status",
                    reason: "must not contain control characters".into(),
                });
            }
            if status.len() > MAX_AWAY_STATUS_BYTES {
                return Err(ConfigError {
                    option: "minimix_away_status",
                    reason: format!("longer than {MAX_AWAY_STATUS_BYTES} bytes"),
                });
            }
        }
        within(
            "minimix_join_timeout",
            Some(self.join_timeout_ms),
            1,
            MAX_TIMEOUT_MS,
        )?;
        within(
            "minimix_iq_timeout",
            Some(self.iq_timeout_ms),
            1,
            MAX_TIMEOUT_MS,
        )?;
        within(
            "minimix_leave_after",
            self.leave_after_ms,
            0,
            MAX_LEAVE_AFTER_MS,
        )?;
        within(
            "minimix_ping_interval",
            self.ping_interval_ms,
            MIN_PING_INTERVAL_MS,
            MAX_PING_INTERVAL_MS,
        )?;
        Ok(())
    }
}

/// The longest `minimix_join_timeout` / `minimix_iq_timeout`: a day.
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// The longest `minimix_leave_after`: a year.
pub const MAX_LEAVE_AFTER_MS: u64 = 365 * 86_400_000;
/// `minimix_ping_interval` between a second (a shorter one would keep the timer busy) and a week.
pub const MIN_PING_INTERVAL_MS: u64 = 1_000;
pub const MAX_PING_INTERVAL_MS: u64 = 7 * 86_400_000;
/// The longest `minimix_away_status`.
pub const MAX_AWAY_STATUS_BYTES: usize = 1024;

/// A duration option (when set) within `min..=max` milliseconds, or an error in seconds.
fn within(option: &'static str, ms: Option<u64>, min: u64, max: u64) -> Result<(), ConfigError> {
    match ms {
        Some(v) if v < min || v > max => Err(ConfigError {
            option,
            reason: format!(
                "{} s is outside {}..={} s",
                v as f64 / 1000.0,
                min as f64 / 1000.0,
                max / 1000
            ),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(config: Config) -> Option<&'static str> {
        config.validate().err().map(|e| e.option)
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(error_of(Config::default()), None);
    }

    #[test]
    fn an_away_status_with_control_characters_or_too_long_is_refused() {
        for status in ["away\nnow", "a\u{0}b", "\u{1b}[31m", &"x".repeat(1025)] {
            let config = Config {
                away_status: Some(status.to_owned()),
                ..Config::default()
            };
            assert_eq!(error_of(config), Some("minimix_away_status"), "{status:?}");
        }
        let fine = Config {
            away_status: Some("Away from all devices — back soon ☕".to_owned()),
            ..Config::default()
        };
        assert_eq!(error_of(fine), None);
    }

    #[test]
    fn timeouts_beyond_their_maxima_or_zero_are_refused_with_the_option_named() {
        let cases = [
            (
                Config {
                    join_timeout_ms: MAX_TIMEOUT_MS + 1,
                    ..Config::default()
                },
                "minimix_join_timeout",
            ),
            (
                Config {
                    join_timeout_ms: 0,
                    ..Config::default()
                },
                "minimix_join_timeout",
            ),
            (
                Config {
                    iq_timeout_ms: u64::MAX,
                    ..Config::default()
                },
                "minimix_iq_timeout",
            ),
            (
                Config {
                    leave_after_ms: Some(MAX_LEAVE_AFTER_MS + 1),
                    ..Config::default()
                },
                "minimix_leave_after",
            ),
            (
                Config {
                    ping_interval_ms: Some(0),
                    ..Config::default()
                },
                "minimix_ping_interval",
            ),
            (
                Config {
                    ping_interval_ms: Some(MAX_PING_INTERVAL_MS + 1),
                    ..Config::default()
                },
                "minimix_ping_interval",
            ),
        ];
        for (config, option) in cases {
            assert_eq!(error_of(config), Some(option));
        }
        let limits = Config {
            join_timeout_ms: MAX_TIMEOUT_MS,
            iq_timeout_ms: 1,
            leave_after_ms: Some(0),
            ping_interval_ms: None,
            ..Config::default()
        };
        assert_eq!(error_of(limits), None);
    }
}
