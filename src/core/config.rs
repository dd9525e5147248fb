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
        if self.join_timeout_ms == 0 || self.iq_timeout_ms == 0 {
            return Err(ConfigError {
                option: "minimix_join_timeout",
                reason: "timeouts must be positive".into(),
            });
        }
        Ok(())
    }
}
