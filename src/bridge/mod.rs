//! The Lua bridge: the only code that knows mlua. It converts util.stanza tables and JIDs to
//! the core's types and back, owns one core per VirtualHost (as userdata the shim keeps), and
//! makes sure no panic or error crosses into Prosody.
//!
//! `require`d as `minimix` (symbol `luaopen_minimix`), it returns:
//! - `version`, `lua_version`: the crate version and the Lua this library was built for
//!   ("Lua 5.1" … "Lua 5.4" as in `_VERSION`, or "LuaJIT");
//! - `mam_feature_groupchat_field`, `mam_feature_groupchat_available`: XEP-0313 disco features;
//! - `init(stanza_mt, log_sink)`: once per Lua state, before anything else;
//! - `set_log_level(level)`: "debug" | "info" | "warn" | "error";
//! - `new(host, options) -> handle | nil, err`: a core for one host (see `handle.rs`);
//! - `_roundtrip`, `_to_xml`, `_from_xml`: stanza conversion probes for the busted specs.

mod archive_push;
mod config;
mod handle;
mod log_sink;
mod probes;
mod stanza;

use mlua::{Function, Lua, Result as LuaResult, Table, Value};

use crate::core::Minimix;
use handle::MinimixHandle;

/// The Lua this library was built for, between a marker the shim can find in the file when
/// `package.loadlib` fails (a build for another Lua does not even link: its error is a bare
/// "undefined symbol"), so it can say which Lua the file was built for.
const BUILT_FOR: &str = if cfg!(feature = "luajit") {
    "minimix-built-for=LuaJIT;"
} else if cfg!(feature = "lua51") {
    "minimix-built-for=Lua 5.1;"
} else if cfg!(feature = "lua52") {
    "minimix-built-for=Lua 5.2;"
} else if cfg!(feature = "lua53") {
    "minimix-built-for=Lua 5.3;"
} else {
    "minimix-built-for=Lua 5.4;"
};

/// "Lua 5.x" (`_VERSION`) or "LuaJIT": the shim compares it with the running interpreter.
fn lua_version() -> &'static str {
    // Read from the marker at run time, so the marker stays in the shared object.
    let marker = std::hint::black_box(BUILT_FOR);
    marker
        .strip_prefix("minimix-built-for=")
        .and_then(|rest| rest.strip_suffix(';'))
        .unwrap_or(marker)
}

#[mlua::lua_module]
fn minimix(lua: &Lua) -> LuaResult<Table> {
    log_sink::install();
    let exports = lua.create_table()?;
    exports.set("version", env!("CARGO_PKG_VERSION"))?;
    exports.set("lua_version", lua_version())?;
    exports.set(
        "mam_feature_groupchat_field",
        crate::core::mam::FEATURE_GROUPCHAT_FIELD,
    )?;
    exports.set(
        "mam_feature_groupchat_available",
        crate::core::mam::FEATURE_GROUPCHAT_AVAILABLE,
    )?;
    exports.set(
        "init",
        lua.create_function(|lua, (mt, sink): (Value, Option<Function>)| {
            let Value::Table(mt) = mt else {
                return Ok((
                    None,
                    Some("init: expected util.stanza's stanza_mt".to_owned()),
                ));
            };
            stanza::set_stanza_mt(lua, mt)?;
            if let Some(sink) = sink {
                log_sink::set_sink(lua, sink)?;
            }
            Ok((Some(true), None))
        })?,
    )?;
    exports.set(
        "set_log_level",
        lua.create_function(|_, level: String| Ok(log_sink::set_level(&level).err()))?,
    )?;
    exports.set(
        "new",
        lua.create_function(|lua, (host, options): (String, Option<Table>)| {
            let config = match options {
                Some(t) => match config::config_from_lua(&t) {
                    Ok(c) => c,
                    Err(e) => return Ok((Value::Nil, Some(e))),
                },
                None => Default::default(),
            };
            match Minimix::new(config) {
                Ok(core) => {
                    ::log::debug!("minimix: new core for {host}");
                    let handle = lua.create_userdata(MinimixHandle::new(lua, core)?)?;
                    log_sink::flush(lua);
                    Ok((Value::UserData(handle), None))
                }
                Err(e) => Ok((Value::Nil, Some(e.to_string()))),
            }
        })?,
    )?;
    probes::export_probes(lua, &exports)?;
    Ok(exports)
}
