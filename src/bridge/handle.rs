//! `MinimixHandle`: one core instance per VirtualHost, as Lua userdata.
//!
//! Lua methods (every one returns `handled, actions, deadline` and never raises for bad input:
//! a failing call logs and answers `false` so Prosody goes on as if the module were absent):
//! - `h:client_presence(session_jid, stanza, now)`, `h:client_message(…)`, `h:client_iq(…)`
//! - `h:room_presence(account_jid, stanza, now)`, `h:room_message(…)`, `h:room_iq(…)`
//! - `h:session_closed(session_jid, now)`, `h:timeout(now)`
//!
//! `actions` is `nil` or an array of `{ kind, to, stanza }` with kind `"deliver"` (send
//! `stanza` to session `to`), `"deliver_shared"` (send the cached `stanza`, which has no `to`
//! and is reused by later replays, re-addressed to `to` for the send), `"carbon"` (the same, if that session enabled carbons),
//! `"forward"` (send the input stanza re-addressed to `to`) or `"route"` (module:send
//! `stanza`). `deadline` is when `h:timeout` wants to run (seconds).
//!
//! Introspection: `h:rooms(account_jid)`, `h:stats()`; `h:set_config(options)` on reload.

use std::panic::{catch_unwind, AssertUnwindSafe};

use jid::{BareJid, FullJid, Jid};
use mlua::{Function, Lua, MultiValue, Table, UserData, UserDataMethods, Value};

use super::config::config_from_lua;
use super::log_sink as bridge_log;
use super::stanza::{
    attr_of, element_from_lua, element_from_lua_lossy, element_to_lua, extended_copy, has_child,
};
use crate::core::heard::{Heard, HeardMessage};
use crate::core::shared::Shared;
use crate::core::{Action, Input, Minimix, Outcome, Phase, Verdict};

pub struct MinimixHandle {
    pub(super) core: Minimix,
    /// One Lua stanza per shared cached stanza the core replayed (`Shared::id` → table, no
    /// `to`): a late session's replay re-addresses these instead of building new tables.
    /// Entries go when the core drops the stanza (`take_released_shared`).
    shared_tables: Table,
    /// This host's log (`sink(level, message)`, e.g. `module:log`), so that the core's records
    /// carry the host in Prosody's log ("example.org:minimix"); unset: the library's logger.
    log: Option<Function>,
}

impl MinimixHandle {
    pub fn new(lua: &Lua, core: Minimix) -> mlua::Result<Self> {
        Ok(Self {
            core,
            shared_tables: lua.create_table()?,
            log: None,
        })
    }

    /// The Lua stanza of a shared cached stanza, built on its first replay.
    fn shared_table(&self, lua: &Lua, stanza: &Shared) -> Result<Table, String> {
        let key = stanza.id() as i64;
        if let Ok(Value::Table(t)) = self.shared_tables.raw_get::<Value>(key) {
            return Ok(t);
        }
        let el = stanza.element().map_err(|e| e.to_string())?;
        let t = element_to_lua(lua, &el).map_err(|e| e.to_string())?;
        self.shared_tables
            .raw_set(key, &t)
            .map_err(|e| e.to_string())?;
        Ok(t)
    }

    /// Forgets the Lua stanzas of shared stanzas the core no longer holds.
    fn forget_released(&mut self) {
        for id in self.core.take_released_shared() {
            let _ = self.shared_tables.raw_set(id as i64, Value::Nil);
        }
    }
}

/// Seconds (Prosody's clock, a float) to the core's milliseconds.
fn millis(now: f64) -> u64 {
    if now.is_finite() && now > 0.0 {
        (now * 1000.0) as u64
    } else {
        0
    }
}

/// Which kind of input a stanza-carrying method makes.
#[derive(Clone, Copy)]
enum Kind {
    ClientPresence,
    ClientMessage,
    ClientIq,
    RoomPresence,
    RoomMessage,
    RoomIq,
}

impl MinimixHandle {
    /// Runs one input through the core, converting on the way in and out, catching
    /// everything: errors and panics become a log line and `false`.
    fn call(&mut self, lua: &Lua, kind: Kind, jid: &str, stanza: &Table, now: f64) -> MultiValue {
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.dispatch(lua, kind, jid, stanza, now)
        }));
        let reply = match result {
            Ok(Ok(Some(outcome))) => self.reply(lua, outcome),
            Ok(Ok(None)) => Ok(not_handled()),
            Ok(Err(e)) => {
                log::warn!("minimix: ignoring stanza: {e}");
                Ok(not_handled())
            }
            Err(_) => Ok(not_handled()),
        };
        self.forget_released();
        bridge_log::flush_to(lua, self.log.as_ref());
        reply.unwrap_or_else(|e| {
            let _ = e;
            not_handled()
        })
    }

    fn dispatch(
        &mut self,
        _lua: &Lua,
        kind: Kind,
        jid: &str,
        stanza: &Table,
        now: f64,
    ) -> Result<Option<Outcome>, String> {
        let now = millis(now);
        let input = match kind {
            Kind::ClientPresence | Kind::ClientMessage | Kind::ClientIq => {
                let session: FullJid = jid
                    .parse()
                    .map_err(|e| format!("session JID '{jid}': {e}"))?;
                if !matches!(kind, Kind::ClientPresence) {
                    // Hot path: a message or iq to anything but a tracked room is not converted.
                    let Some(to) = attr_of(stanza, "to").map_err(|e| e.to_string())? else {
                        return Ok(None);
                    };
                    let Ok(to) = to.parse::<Jid>() else {
                        return Ok(None);
                    };
                    if !self.core.tracks(&session.to_bare(), &to.to_bare()) {
                        return Ok(None);
                    }
                } else if attr_of(stanza, "to").map_err(|e| e.to_string())?.is_none() {
                    // Broadcast presence is not room traffic.
                    return Ok(None);
                }
                let stanza = convert_or_prune(stanza)?;
                match kind {
                    Kind::ClientPresence => Input::ClientPresence { session, stanza },
                    Kind::ClientMessage => Input::ClientMessage { session, stanza },
                    _ => Input::ClientIq { session, stanza },
                }
            }
            Kind::RoomPresence | Kind::RoomMessage | Kind::RoomIq => {
                let account: BareJid = jid
                    .parse()
                    .map_err(|e| format!("account JID '{jid}': {e}"))?;
                // Hot path and spoofing guard: only traffic from a tracked room is converted.
                let Some(from) = attr_of(stanza, "from").map_err(|e| e.to_string())? else {
                    return Ok(None);
                };
                let Ok(from) = from.parse::<Jid>() else {
                    return Ok(None);
                };
                if !self.core.tracks(&account, &from.to_bare()) {
                    return Ok(None);
                }
                let stanza = convert_or_prune(stanza)?;
                match kind {
                    Kind::RoomPresence => Input::RoomPresence { account, stanza },
                    Kind::RoomMessage => Input::RoomMessage { account, stanza },
                    _ => Input::RoomIq { account, stanza },
                }
            }
        };
        Ok(Some(self.core.handle(now, input)))
    }

    /// `handled, actions, deadline` for Lua.
    fn reply(&self, lua: &Lua, outcome: Outcome) -> mlua::Result<MultiValue> {
        let handled = outcome.verdict == Verdict::Handled;
        let actions = if outcome.actions.is_empty() {
            Value::Nil
        } else {
            let list = lua.create_table_with_capacity(outcome.actions.len(), 0)?;
            for action in outcome.actions {
                let entry = lua.create_table_with_capacity(3, 0)?;
                match action {
                    Action::Deliver { to, stanza } => match element_to_lua(lua, &stanza) {
                        Ok(t) => {
                            entry.raw_set(1, "deliver")?;
                            entry.raw_set(2, to.as_str())?;
                            entry.raw_set(3, t)?;
                        }
                        Err(e) => {
                            log::warn!("minimix: cannot build a stanza for {to}: {e}");
                            continue;
                        }
                    },
                    Action::DeliverShared { to, stanza, extra } => {
                        let built = self.shared_table(lua, &stanza).and_then(|t| {
                            if extra.is_empty() {
                                Ok(("deliver_shared", t))
                            } else {
                                extended_copy(lua, &t, to.as_str(), &extra)
                                    .map(|copy| ("deliver", copy))
                                    .map_err(|e| e.to_string())
                            }
                        });
                        match built {
                            Ok((kind, t)) => {
                                entry.raw_set(1, kind)?;
                                entry.raw_set(2, to.as_str())?;
                                entry.raw_set(3, t)?;
                            }
                            Err(e) => {
                                log::warn!("minimix: cannot build a cached stanza for {to}: {e}");
                                continue;
                            }
                        }
                    }
                    Action::Carbon { to, stanza } => match element_to_lua(lua, &stanza) {
                        Ok(t) => {
                            entry.raw_set(1, "carbon")?;
                            entry.raw_set(2, to.as_str())?;
                            entry.raw_set(3, t)?;
                        }
                        Err(e) => {
                            log::warn!("minimix: cannot build a carbon for {to}: {e}");
                            continue;
                        }
                    },
                    Action::RouteInput { from, id } => {
                        entry.raw_set(1, "route_input")?;
                        entry.raw_set(2, from.as_str())?;
                        entry.raw_set(3, id)?;
                    }
                    Action::Forward { to } => {
                        entry.raw_set(1, "forward")?;
                        entry.raw_set(2, to.as_str())?;
                    }
                    Action::Route { stanza } => match element_to_lua(lua, &stanza) {
                        Ok(t) => {
                            entry.raw_set(1, "route")?;
                            entry.raw_set(3, t)?;
                        }
                        Err(e) => {
                            log::warn!("minimix: cannot build a stanza to route: {e}");
                            continue;
                        }
                    },
                    Action::Persist { account } => {
                        entry.raw_set(1, "persist")?;
                        entry.raw_set(2, account.as_str())?;
                    }
                    Action::Unarchive { account, id } => {
                        entry.raw_set(1, "unarchive")?;
                        entry.raw_set(2, account.as_str())?;
                        entry.raw_set(3, id)?;
                    }
                    Action::FetchHistory {
                        to,
                        room,
                        before_id,
                        before,
                        since,
                        limit,
                    } => {
                        entry.raw_set(1, "fetch_history")?;
                        entry.raw_set(2, to.as_str())?;
                        entry.raw_set(3, before_id)?;
                        entry.raw_set(4, room.as_str())?;
                        entry.raw_set(5, before.map(|ms| (ms / 1000) as f64))?;
                        entry.raw_set(6, since.map(|ms| (ms / 1000) as f64))?;
                        entry.raw_set(7, limit)?;
                    }
                    Action::PublishBookmark {
                        account,
                        room,
                        conference,
                    } => match element_to_lua(lua, &conference) {
                        Ok(t) => {
                            entry.raw_set(1, "bookmark")?;
                            entry.raw_set(2, account.as_str())?;
                            entry.raw_set(3, t)?;
                            entry.raw_set(4, room.as_str())?;
                        }
                        Err(e) => {
                            log::warn!("minimix: cannot build a bookmark for {account}: {e}");
                            continue;
                        }
                    },
                }
                list.raw_push(entry)?;
            }
            Value::Table(list)
        };
        let deadline = match self.core.poll_timeout() {
            Some(ms) => Value::Number(ms as f64 / 1000.0),
            None => Value::Nil,
        };
        Ok(MultiValue::from_iter([
            Value::Boolean(handled),
            actions,
            deadline,
        ]))
    }

    fn simple(
        &mut self,
        lua: &Lua,
        f: impl FnOnce(&mut Minimix) -> Result<Option<Outcome>, String>,
    ) -> MultiValue {
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut self.core)));
        let reply = match result {
            Ok(Ok(Some(outcome))) => self.reply(lua, outcome).unwrap_or_else(|_| not_handled()),
            Ok(Ok(None)) => not_handled(),
            Ok(Err(e)) => {
                log::warn!("minimix: {e}");
                not_handled()
            }
            Err(_) => not_handled(),
        };
        self.forget_released();
        bridge_log::flush_to(lua, self.log.as_ref());
        reply
    }
}

fn not_handled() -> MultiValue {
    MultiValue::from_iter([Value::Boolean(false)])
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Joining { .. } => "joining",
        Phase::Joined => "joined",
        Phase::Leaving => "leaving",
    }
}

impl UserData for MinimixHandle {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        let stanza_methods: [(&str, Kind); 6] = [
            ("client_presence", Kind::ClientPresence),
            ("client_message", Kind::ClientMessage),
            ("client_iq", Kind::ClientIq),
            ("room_presence", Kind::RoomPresence),
            ("room_message", Kind::RoomMessage),
            ("room_iq", Kind::RoomIq),
        ];
        for (name, kind) in stanza_methods {
            methods.add_method_mut(
                name,
                move |lua, this, (jid, stanza, now): (Value, Value, Value)| match (jid, stanza) {
                    (Value::String(jid), Value::Table(stanza)) => {
                        let jid = jid.to_str().map(|s| s.to_owned()).unwrap_or_default();
                        let now = match now {
                            Value::Number(n) => n,
                            Value::Integer(i) => i as f64,
                            _ => 0.0,
                        };
                        Ok(this.call(lua, kind, &jid, &stanza, now))
                    }
                    _ => Ok(not_handled()),
                },
            );
        }
        methods.add_method_mut("session_closed", |lua, this, (jid, now): (Value, Value)| {
            let jid = match jid {
                Value::String(s) => s.to_str().map(|s| s.to_owned()).unwrap_or_default(),
                _ => String::new(),
            };
            let now = if let Value::Number(n) = now { n } else { 0.0 };
            Ok(this.simple(lua, |core| {
                let session: FullJid = jid
                    .parse()
                    .map_err(|e| format!("session JID '{jid}': {e}"))?;
                Ok(Some(
                    core.handle(millis(now), Input::SessionClosed { session }),
                ))
            }))
        });
        methods.add_method_mut("timeout", |lua, this, now: Value| {
            let now = if let Value::Number(n) = now { n } else { 0.0 };
            Ok(this.simple(lua, |core| Ok(Some(core.handle_timeout(millis(now))))))
        });
        methods.add_method_mut("set_log_sink", |_, this, sink: Option<Function>| {
            this.log = sink;
            Ok(())
        });
        methods.add_method_mut("set_config", |lua, this, options: Table| {
            let config = config_from_lua(&options).map_err(mlua::Error::external)?;
            let result = this.core.set_config(config).map_err(|e| e.to_string());
            bridge_log::flush_to(lua, this.log.as_ref());
            Ok(result.err())
        });
        methods.add_method("rooms", |lua, this, account: String| {
            let list = lua.create_table()?;
            let Ok(account) = account.parse::<BareJid>() else {
                return Ok(list);
            };
            for (room, nick, phase) in this.core.rooms_of(&account) {
                let entry = lua.create_table()?;
                entry.set("room", room.as_str())?;
                entry.set("nick", nick)?;
                entry.set("state", phase_name(phase))?;
                let sessions = lua.create_table()?;
                for s in this.core.sessions_in(&account, &room) {
                    sessions.raw_push(s.as_str())?;
                }
                entry.set("sessions", sessions)?;
                if let Some(join) = this.core.join(&account, &room) {
                    entry.set("occupants", join.cache.occupants.len())?;
                    entry.set("history", join.cache.history.len())?;
                }
                list.raw_push(entry)?;
            }
            Ok(list)
        });
        methods.add_method("persisted", |lua, this, account: String| {
            let list = lua.create_table()?;
            let Ok(account) = account.parse::<BareJid>() else {
                return Ok(list);
            };
            for room in this.core.persisted(&account) {
                let entry = lua.create_table()?;
                entry.set("room", room.room.as_str())?;
                entry.set("nick", room.nick)?;
                entry.set("password", room.password)?;
                entry.set("last_seen", room.last_seen.map(seconds))?;
                if !room.heard.is_empty() {
                    let heard = lua.create_table()?;
                    for m in room.heard.messages() {
                        let item = lua.create_table()?;
                        item.set("key", m.key.as_str())?;
                        item.set("at", seconds(m.at))?;
                        item.set("archive_id", m.archive_id.as_deref())?;
                        heard.raw_push(item)?;
                    }
                    entry.set("heard", heard)?;
                }
                entry.set("heard_forgotten_at", room.heard.forgotten_at().map(seconds))?;
                list.raw_push(entry)?;
            }
            Ok(list)
        });
        methods.add_method("persisted_accounts", |lua, this, ()| {
            lua.create_sequence_from(this.core.persisted_accounts().iter().map(|a| a.to_string()))
        });
        methods.add_method_mut(
            "restore_account",
            |lua, this, (account, rooms, now): (String, Value, Value)| {
                let restored = restore_account(&mut this.core, &account, rooms, now);
                if let Err(e) = &restored {
                    log::warn!("minimix: not restoring {account}: {e}");
                }
                bridge_log::flush_to(lua, this.log.as_ref());
                Ok(restored.is_ok())
            },
        );
        methods.add_method_mut(
            "bookmark_published",
            |lua, this, (account, room, conference, now): (String, String, Value, Value)| {
                let now = if let Value::Number(n) = now { n } else { 0.0 };
                Ok(this.simple(lua, |core| {
                    let account: BareJid = account
                        .parse()
                        .map_err(|e| format!("account '{account}': {e}"))?;
                    let room: BareJid = room
                        .parse()
                        .map_err(|e| format!("bookmarked room '{room}': {e}"))?;
                    let Value::Table(conference) = conference else {
                        return Err(format!("bookmark of {room} has no conference"));
                    };
                    let conference = element_from_lua(&conference).map_err(|e| e.to_string())?;
                    Ok(Some(core.handle(
                        millis(now),
                        Input::BookmarkPublished {
                            account,
                            room,
                            conference,
                        },
                    )))
                }))
            },
        );
        methods.add_method_mut(
            "bookmark_retracted",
            |lua, this, (account, room, now): (String, String, Value)| {
                let now = if let Value::Number(n) = now { n } else { 0.0 };
                Ok(this.simple(lua, |core| {
                    let account: BareJid = account
                        .parse()
                        .map_err(|e| format!("account '{account}': {e}"))?;
                    let room: BareJid = room
                        .parse()
                        .map_err(|e| format!("bookmarked room '{room}': {e}"))?;
                    Ok(Some(core.handle(
                        millis(now),
                        Input::BookmarkRetracted { account, room },
                    )))
                }))
            },
        );
        methods.add_method_mut(
            "archived_history",
            |lua, this, (session, room, limit, results): (String, String, usize, Value)| {
                Ok(this.simple(lua, |core| {
                    let session: FullJid = session
                        .parse()
                        .map_err(|e| format!("session '{session}': {e}"))?;
                    let room: BareJid = room.parse().map_err(|e| format!("room '{room}': {e}"))?;
                    let mut found = Vec::new();
                    if let Value::Table(results) = results {
                        for entry in results.sequence_values::<Table>().flatten() {
                            let (Ok(id), Ok(stanza), Ok(when)) = (
                                entry.raw_get::<String>(1),
                                entry.raw_get::<Table>(2),
                                entry.raw_get::<f64>(3),
                            ) else {
                                continue;
                            };
                            match element_from_lua(&stanza) {
                                Ok(stanza) => found.push(crate::core::archive::ArchivedMessage {
                                    id,
                                    stanza,
                                    when: millis(when),
                                }),
                                Err(e) => log::debug!("minimix: skipping an archived message: {e}"),
                            }
                        }
                    }
                    Ok(Some(core.archived_history(&session, &room, limit, found)))
                }))
            },
        );
        methods.add_method_mut("resume", |lua, this, now: Value| {
            let now = if let Value::Number(n) = now { n } else { 0.0 };
            Ok(this.simple(lua, |core| Ok(Some(core.resume(millis(now))))))
        });
        methods.add_method_mut("forget_account", |lua, this, account: String| {
            Ok(this.simple(lua, |core| {
                let account: BareJid = account
                    .parse()
                    .map_err(|e| format!("account JID '{account}': {e}"))?;
                Ok(Some(core.forget_account(&account)))
            }))
        });
        methods.add_method("tracks", |_, this, (account, room): (String, String)| {
            let (Ok(account), Ok(room)) = (account.parse::<BareJid>(), room.parse::<Jid>()) else {
                return Ok(false);
            };
            Ok(this.core.tracks(&account, &room.to_bare()))
        });
        methods.add_method(
            "should_archive",
            |_, this, (account, from, kind, stanza): (String, String, Option<String>, Option<Table>)| {
                let (Ok(account), Ok(from)) = (account.parse::<BareJid>(), from.parse::<Jid>())
                else {
                    return Ok(false);
                };
                if !this.core.should_archive(&account, &from, kind.as_deref()) {
                    return Ok(false);
                }
                // Only a delayed message can be the room's replay of one heard before: only
                // such a message is converted for the whole decision.
                let Some(stanza) = stanza.filter(has_delay) else {
                    return Ok(true);
                };
                match element_from_lua(&stanza) {
                    Ok(message) => Ok(this.core.should_archive_message(&account, &message)),
                    Err(e) => {
                        log::debug!("minimix: archiving a message it cannot read: {e}");
                        Ok(true)
                    }
                }
            },
        );
        super::archive_push::add_methods(methods);
        methods.add_method("stats", |lua, this, ()| {
            let (mut accounts, mut rooms, mut sessions, mut occupants, mut history) =
                (0, 0, 0, 0, 0);
            for (_, account) in this.core.accounts() {
                accounts += 1;
                for join in account.rooms.values() {
                    rooms += 1;
                    sessions += join.members.len();
                    occupants += join.cache.occupants.len();
                    history += join.cache.history.len();
                }
            }
            let t = lua.create_table()?;
            t.set("accounts", accounts)?;
            t.set("rooms", rooms)?;
            t.set("joined_sessions", sessions)?;
            t.set("cached_occupants", occupants)?;
            t.set("history_messages", history)?;
            let shared = this.core.shared_stanzas();
            t.set("shared_stanzas", shared.len())?;
            t.set("shared_bytes", shared.bytes())?;
            Ok(t)
        });
    }
}

/// Reads a stored account (`{ {room=, nick=, password=, last_seen=}, … }`) into the core.
/// Entries that do not parse are skipped with a log line; nothing raises.
fn restore_account(
    core: &mut Minimix,
    account: &str,
    rooms: Value,
    now: Value,
) -> Result<(), String> {
    let account: BareJid = account.parse().map_err(|e| format!("account JID: {e}"))?;
    let Value::Table(rooms) = rooms else {
        return Err("stored rooms are not a table".into());
    };
    let now = if let Value::Number(n) = now {
        millis(n)
    } else {
        0
    };
    let mut restored = Vec::new();
    for entry in rooms.sequence_values::<Table>() {
        let Ok(entry) = entry else {
            log::warn!("minimix: {account}: skipping a stored room that is not a table");
            continue;
        };
        let room = entry
            .get::<String>("room")
            .ok()
            .and_then(|r| r.parse::<BareJid>().ok());
        let nick = entry.get::<String>("nick").ok();
        let (Some(room), Some(nick)) = (room, nick) else {
            log::warn!("minimix: {account}: skipping a stored room without a valid room or nick");
            continue;
        };
        let stored = crate::core::persist::PersistedRoom {
            room,
            nick,
            password: entry.get::<Option<String>>("password").ok().flatten(),
            last_seen: entry
                .get::<Option<f64>>("last_seen")
                .ok()
                .flatten()
                .map(millis),
            heard: stored_heard(&entry),
        };
        // Storage may have been edited or damaged: only what could be joined as stored.
        if let Err(e) = stored.check() {
            log::warn!(
                "minimix: {account}: skipping stored room {}: {e}",
                stored.room
            );
            continue;
        }
        restored.push(stored);
    }
    core.restore_account(now, account, restored);
    Ok(())
}

/// The stored memory of the messages last heard in a room (`heard = { {key=, at=,
/// archive_id=}, … }`, `heard_forgotten_at=`); a record from before it existed has none, and
/// entries that do not read are left out.
fn stored_heard(entry: &Table) -> Heard {
    let forgotten_at = entry
        .get::<Option<f64>>("heard_forgotten_at")
        .ok()
        .flatten()
        .map(millis);
    let mut messages = Vec::new();
    if let Ok(Some(list)) = entry.get::<Option<Table>>("heard") {
        for item in list.sequence_values::<Table>().flatten() {
            let key = item.get::<String>("key").ok();
            let at = item.get::<f64>("at").ok();
            let (Some(key), Some(at)) = (key, at) else {
                continue;
            };
            messages.push(HeardMessage {
                key,
                at: millis(at),
                archive_id: item.get::<Option<String>>("archive_id").ok().flatten(),
                heard_seq: 0,
            });
        }
    }
    Heard::from_stored(messages, forgotten_at)
}

/// Whether a Lua message carries a `<delay/>` (history).
fn has_delay(stanza: &Table) -> bool {
    has_child(stanza, "delay", crate::core::muc::NS_DELAY)
}

/// The core's milliseconds to Prosody's seconds.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Converts a stanza the core must see; what cannot be converted strictly is pruned (with a
/// log line) rather than let through unhandled, which could get the account kicked (room
/// traffic) or make a session itself an occupant (a join).
fn convert_or_prune(stanza: &Table) -> Result<minidom::Element, String> {
    match element_from_lua(stanza) {
        Ok(el) => Ok(el),
        Err(strict) => {
            let el = element_from_lua_lossy(stanza).map_err(|e| e.to_string())?;
            log::info!(
                "minimix: pruned what could not be converted from a <{}/>: {strict}",
                el.name()
            );
            Ok(el)
        }
    }
}
