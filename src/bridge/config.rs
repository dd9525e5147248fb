//! `minimix_*` options (read by the shim with Prosody's typed getters) into `core::Config`.
//!
//! The shim checks each value's type; this file owns the accepted ranges, so that an
//! out-of-range value refuses the load with a message naming the option, the value and the
//! range (the core's own `validate` stays as the last guard of its invariants).

use mlua::{Table, Value};

use crate::core::push::PushMode;
use crate::core::Config;

/// Seconds in a day: the ceiling of the timeouts and intervals.
const DAY: f64 = 86_400.0;

/// A whole-number option: its name without the `minimix_` prefix, range and default.
struct Count {
    key: &'static str,
    min: usize,
    max: usize,
    default: usize,
}

/// A number-of-seconds option; `never` says whether "never" (infinity) is allowed.
struct Seconds {
    key: &'static str,
    min: f64,
    max: f64,
    default: &'static str,
    never: bool,
}

fn number(t: &Table, key: &str) -> Result<Option<f64>, String> {
    match t
        .get::<Value>(key)
        .map_err(|e| format!("minimix_{key}: {e}"))?
    {
        Value::Nil => Ok(None),
        Value::Integer(i) => Ok(Some(i as f64)),
        Value::Number(n) => Ok(Some(n)),
        other => Err(format!(
            "minimix_{key} is not valid: expected a number, got a {}",
            other.type_name()
        )),
    }
}

fn flag(t: &Table, key: &str) -> Result<Option<bool>, String> {
    match t
        .get::<Value>(key)
        .map_err(|e| format!("minimix_{key}: {e}"))?
    {
        Value::Nil => Ok(None),
        Value::Boolean(b) => Ok(Some(b)),
        other => Err(format!(
            "minimix_{key} is not valid: expected true or false, got a {}",
            other.type_name()
        )),
    }
}

fn text(t: &Table, key: &str) -> Result<Option<String>, String> {
    match t
        .get::<Value>(key)
        .map_err(|e| format!("minimix_{key}: {e}"))?
    {
        Value::Nil => Ok(None),
        Value::String(s) => Ok(Some(s.to_string_lossy())),
        other => Err(format!(
            "minimix_{key} is not valid: expected a string, got a {}",
            other.type_name()
        )),
    }
}

/// Lua numbers as the admin would have written them (2, not 2.0).
fn shown(v: f64) -> String {
    if v.is_infinite() {
        "\"never\"".to_owned()
    } else {
        format!("{v}")
    }
}

fn count(t: &Table, spec: &Count) -> Result<Option<usize>, String> {
    let Some(v) = number(t, spec.key)? else {
        return Ok(None);
    };
    if v.fract() == 0.0 && v >= spec.min as f64 && v <= spec.max as f64 {
        Ok(Some(v as usize))
    } else {
        Err(format!(
            "minimix_{} = {} is out of range: expected a whole number from {} to {} (default {})",
            spec.key,
            shown(v),
            spec.min,
            spec.max,
            spec.default
        ))
    }
}

/// Milliseconds, or `None` for "never".
fn seconds(t: &Table, spec: &Seconds) -> Result<Option<Option<u64>>, String> {
    let Some(v) = number(t, spec.key)? else {
        return Ok(None);
    };
    if spec.never && v == f64::INFINITY {
        return Ok(Some(None));
    }
    if v.is_finite() && v >= spec.min && v <= spec.max {
        return Ok(Some(Some((v * 1000.0).round() as u64)));
    }
    Err(format!(
        "minimix_{} = {} is out of range: expected a number of seconds from {} to {}{} (default {})",
        spec.key,
        shown(v),
        spec.min,
        spec.max,
        if spec.never { ", or \"never\"" } else { "" },
        spec.default
    ))
}

const MAM_MAX_SKIPPED: Count = Count {
    key: "mam_max_skipped",
    min: 1,
    max: 10_000_000,
    default: 5000,
};
const HISTORY_LENGTH: Count = Count {
    key: "history_length",
    min: 0,
    max: 10_000,
    default: 20,
};
const HISTORY_MAX_MESSAGES: Count = Count {
    key: "history_max_messages",
    min: 0,
    max: 10_000,
    default: 100,
};
const HISTORY_MAX_BYTES: Count = Count {
    key: "history_max_bytes",
    min: 0,
    max: 64 * 1024 * 1024,
    default: 256 * 1024,
};
const MAX_ROOMS: Count = Count {
    key: "max_rooms",
    min: 1,
    max: 100_000,
    default: 256,
};
const MAX_OCCUPANTS: Count = Count {
    key: "max_occupants",
    min: 1,
    max: 1_000_000,
    default: 2000,
};
const MAX_JOINS_PER_MINUTE: Count = Count {
    key: "max_joins_per_minute",
    min: 1,
    max: 10_000_000,
    default: 60,
};
const MAX_PENDING_IQS: Count = Count {
    key: "max_pending_iqs",
    min: 1,
    max: 100_000,
    default: 256,
};
const MAX_BOOKMARKS: Count = Count {
    key: "max_bookmarks",
    min: 0,
    max: 100_000,
    default: 1000,
};
const IQ_TIMEOUT: Seconds = Seconds {
    key: "iq_timeout",
    min: 1.0,
    max: DAY,
    default: "120",
    never: false,
};
const JOIN_TIMEOUT: Seconds = Seconds {
    key: "join_timeout",
    min: 1.0,
    max: DAY,
    default: "60",
    never: false,
};
const LEAVE_AFTER: Seconds = Seconds {
    key: "leave_after",
    min: 0.0,
    max: 365.0 * DAY,
    default: "\"never\"",
    never: true,
};
const PING_INTERVAL: Seconds = Seconds {
    key: "ping_interval",
    min: 1.0,
    max: 7.0 * DAY,
    default: "900",
    never: true,
};

/// Builds a `Config` from a table keyed by option name without the `minimix_` prefix.
/// Missing keys keep their defaults; a value out of its range is an error naming it.
pub fn config_from_lua(t: &Table) -> Result<Config, String> {
    let mut c = Config::default();
    if let Some(v) = count(t, &HISTORY_LENGTH)? {
        c.history_length = v;
    }
    if let Some(v) = count(t, &HISTORY_MAX_MESSAGES)? {
        c.history_max_messages = v;
    }
    if let Some(v) = flag(t, "history_from_archive")? {
        c.history_from_archive = v;
    }
    if let Some(v) = count(t, &HISTORY_MAX_BYTES)? {
        c.history_max_bytes = v;
    }
    if let Some(v) = count(t, &MAX_ROOMS)? {
        c.max_rooms = v;
    }
    if let Some(v) = count(t, &MAX_OCCUPANTS)? {
        c.max_occupants = v;
    }
    if let Some(v) = count(t, &MAX_JOINS_PER_MINUTE)? {
        c.max_joins_per_minute = v;
    }
    if let Some(v) = count(t, &MAX_PENDING_IQS)? {
        c.max_pending_iqs = v;
    }
    if let Some(Some(ms)) = seconds(t, &IQ_TIMEOUT)? {
        c.iq_timeout_ms = ms;
    }
    if let Some(Some(ms)) = seconds(t, &JOIN_TIMEOUT)? {
        c.join_timeout_ms = ms;
    }
    if let Some(v) = seconds(t, &LEAVE_AFTER)? {
        c.leave_after_ms = v;
    }
    if let Some(v) = text(t, "away_show")? {
        c.away_show = if v == "none" || v.is_empty() {
            None
        } else {
            Some(v)
        };
    }
    if let Some(v) = flag(t, "bookmark_sync")? {
        c.bookmark_sync = v;
    }
    if let Some(v) = flag(t, "bookmark_joins")? {
        c.bookmark_joins = v;
    }
    if let Some(v) = count(t, &MAX_BOOKMARKS)? {
        c.max_bookmarks = v;
    }
    if let Some(v) = seconds(t, &PING_INTERVAL)? {
        c.ping_interval_ms = v;
    }
    if let Some(v) = count(t, &MAM_MAX_SKIPPED)? {
        c.mam_max_skipped = v;
    }
    if let Some(v) = text(t, "push")? {
        c.push = PushMode::parse(&v).ok_or_else(|| {
            format!("minimix_push = \"{v}\" is not valid: expected \"mentions\", \"all\" or \"none\" (default \"mentions\")")
        })?;
    }
    if let Some(v) = text(t, "away_status")? {
        c.away_status = if v.is_empty() { None } else { Some(v) };
    }
    Ok(c)
}
