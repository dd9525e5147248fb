//! `minimix_*` options (read by the shim with Prosody's typed getters) into `core::Config`.

use mlua::{FromLua, Table};

use crate::core::push::PushMode;
use crate::core::Config;

fn opt<T: FromLua>(t: &Table, key: &str) -> Result<Option<T>, String> {
    t.get::<Option<T>>(key).map_err(|e| format!("{key}: {e}"))
}

fn seconds_to_ms(key: &str, v: f64) -> Result<u64, String> {
    if v.is_finite() && v >= 0.0 {
        Ok((v * 1000.0) as u64)
    } else {
        Err(format!("{key}: expected a number of seconds, got {v}"))
    }
}

/// Builds a `Config` from a table keyed by option name without the `minimix_` prefix.
/// Missing keys keep their defaults; the core validates ranges.
pub fn config_from_lua(t: &Table) -> Result<Config, String> {
    let mut c = Config::default();
    if let Some(v) = opt::<usize>(t, "history_length")? {
        c.history_length = v;
    }
    if let Some(v) = opt::<usize>(t, "history_max_messages")? {
        c.history_max_messages = v;
    }
    if let Some(v) = opt::<bool>(t, "history_from_archive")? {
        c.history_from_archive = v;
    }
    if let Some(v) = opt::<usize>(t, "history_max_bytes")? {
        c.history_max_bytes = v;
    }
    if let Some(v) = opt::<usize>(t, "max_rooms")? {
        c.max_rooms = v;
    }
    if let Some(v) = opt::<usize>(t, "max_occupants")? {
        c.max_occupants = v;
    }
    if let Some(v) = opt::<usize>(t, "max_joins_per_minute")? {
        c.max_joins_per_minute = v;
    }
    if let Some(v) = opt::<usize>(t, "max_pending_iqs")? {
        c.max_pending_iqs = v;
    }
    if let Some(v) = opt::<f64>(t, "iq_timeout")? {
        c.iq_timeout_ms = seconds_to_ms("iq_timeout", v)?;
    }
    if let Some(v) = opt::<f64>(t, "join_timeout")? {
        c.join_timeout_ms = seconds_to_ms("join_timeout", v)?;
    }
    if let Some(v) = opt::<f64>(t, "leave_after")? {
        c.leave_after_ms = if v.is_infinite() {
            None
        } else {
            Some(seconds_to_ms("leave_after", v)?)
        };
    }
    if let Some(v) = opt::<String>(t, "away_show")? {
        c.away_show = if v == "none" || v.is_empty() {
            None
        } else {
            Some(v)
        };
    }
    if let Some(v) = opt::<bool>(t, "bookmark_sync")? {
        c.bookmark_sync = v;
    }
    if let Some(v) = opt::<bool>(t, "bookmark_joins")? {
        c.bookmark_joins = v;
    }
    if let Some(v) = opt::<usize>(t, "max_bookmarks")? {
        c.max_bookmarks = v;
    }
    if let Some(v) = opt::<f64>(t, "ping_interval")? {
        c.ping_interval_ms = if v.is_infinite() {
            None
        } else {
            Some(seconds_to_ms("ping_interval", v)?)
        };
    }
    if let Some(v) = opt::<usize>(t, "mam_max_skipped")? {
        c.mam_max_skipped = v;
    }
    if let Some(v) = opt::<String>(t, "push")? {
        c.push = PushMode::parse(&v)
            .ok_or_else(|| format!("push: '{v}' is not one of mentions, all, none"))?;
    }
    if let Some(v) = opt::<String>(t, "away_status")? {
        c.away_status = if v.is_empty() { None } else { Some(v) };
    }
    Ok(c)
}
