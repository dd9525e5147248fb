//! Log records from the core, forwarded into Prosody's log.
//!
//! `log` is process-global but the Lua sink is not thread-safe, so records are buffered
//! (bounded) and handed to the sink at the end of each bridge call, on Prosody's thread.
//! The panic hook writes into the same buffer, so a panic's message reaches Prosody's log
//! even when Prosody runs daemonized with stderr closed.

use std::collections::VecDeque;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use mlua::{Function, Lua};
use once_cell::sync::{Lazy, OnceCell};

/// Records kept between flushes; older ones are dropped (and counted) beyond this.
const BUFFER_LIMIT: usize = 1024;

/// Records waiting for the sink, and how many were dropped since the last flush.
#[derive(Default)]
struct Buffer {
    records: VecDeque<(Level, String)>,
    dropped: usize,
}

static BUFFER: Lazy<Mutex<Buffer>> = Lazy::new(|| Mutex::new(Buffer::default()));
static INSTALLED: OnceCell<()> = OnceCell::new();
const SINK_KEY: &str = "minimix.log_sink";

struct BufferLogger;

impl Log for BufferLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        push(record.level(), record.args().to_string());
    }

    fn flush(&self) {}
}

fn push(level: Level, message: String) {
    // A poisoned lock only means a panic happened while logging; the buffer is still usable.
    let mut guard = BUFFER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.records.len() >= BUFFER_LIMIT {
        guard.records.pop_front();
        guard.dropped += 1;
    }
    guard.records.push_back((level, message));
}

/// Installs the logger and panic hook once per process (they outlive module reloads).
pub fn install() {
    INSTALLED.get_or_init(|| {
        if log::set_logger(&BufferLogger).is_ok() {
            log::set_max_level(LevelFilter::Info);
        }
        std::panic::set_hook(Box::new(|info| {
            push(
                Level::Error,
                format!("minimix: internal error (panic): {info}"),
            );
        }));
    });
}

/// Sets which records are built at all: nothing below this level costs anything.
pub fn set_level(level: &str) -> Result<(), String> {
    let filter = match level {
        "debug" => LevelFilter::Debug,
        "info" => LevelFilter::Info,
        "warn" => LevelFilter::Warn,
        "error" => LevelFilter::Error,
        other => {
            return Err(format!(
                "unknown log level '{other}' (debug, info, warn, error)"
            ))
        }
    };
    log::set_max_level(filter);
    Ok(())
}

/// Stores the Lua function `sink(level, message)` records are handed to.
pub fn set_sink(lua: &Lua, sink: Function) -> mlua::Result<()> {
    lua.set_named_registry_value(SINK_KEY, sink)
}

/// Hands buffered records to the library's sink. Never raises: a failing sink loses them.
pub fn flush(lua: &Lua) {
    flush_to(lua, None);
}

/// Hands buffered records to `sink` (a host's log), or to the library's sink when `None`.
pub fn flush_to(lua: &Lua, host_sink: Option<&Function>) {
    let (records, dropped) = {
        let mut guard = BUFFER.lock().unwrap_or_else(|e| e.into_inner());
        if guard.records.is_empty() {
            return;
        }
        let dropped = std::mem::take(&mut guard.dropped);
        (std::mem::take(&mut guard.records), dropped)
    };
    let sink = match host_sink {
        Some(sink) => sink.clone(),
        None => match lua.named_registry_value::<Function>(SINK_KEY) {
            Ok(sink) => sink,
            Err(_) => return,
        },
    };
    if dropped > 0 {
        let _ = sink.call::<()>(("warn", format!("{dropped} log records dropped")));
    }
    for (level, message) in records {
        let level = match level {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug | Level::Trace => "debug",
        };
        let _ = sink.call::<()>((level, message));
    }
}
