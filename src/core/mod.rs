//! The sans-IO core of mod_minimix: account-based MUC joining as a plain state machine.
//!
//! The core never sends anything, never reads a clock and knows nothing of Lua. The caller
//! (the bridge, driven by the Prosody shim) feeds it one [`Input`] at a time with the current
//! time and applies the [`Action`]s of the returned [`Outcome`] in order:
//!
//! | Input | Prosody hook (priority) |
//! |---|---|
//! | `ClientPresence` | `pre-presence/full`, `pre-presence/bare` (10) |
//! | `ClientMessage` | `pre-message/full`, `pre-message/bare` (10) |
//! | `ClientIq` | `pre-iq/full`, `pre-iq/bare` (10) |
//! | `RoomPresence` | `presence/bare` (5) |
//! | `RoomMessage` | `message/bare` (−0.25: after mod_mam, before mod_carbons and mod_message) |
//! | `RoomIq` | `iq/bare` (5) |
//! | `SessionClosed` | `resource-unbind` (5) |
//!
//! A local MUC answers inside the `module:send` that carries the account's join, so every
//! state change an action depends on is made *before* the action is returned: re-entrant
//! inputs caused by applying an action always see the state that action assumed.
//!
//! Timers follow quinn's naming: after any call, [`Minimix::poll_timeout`] says when
//! [`Minimix::handle_timeout`] wants to run next.

pub mod account;
pub mod action;
pub mod archive;

mod bookmarks;
pub mod config;
mod from_client;
mod from_room;
pub mod heard;
mod local;
pub mod mam;

pub mod persist;

pub mod input;
pub mod muc;
pub mod presence;
pub mod push;
pub mod rejoin_window;
pub mod replay;
mod resync;
pub mod room;
pub mod shared;
pub mod time;
mod timeouts;
pub mod xml;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod rejoin_history_tests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use jid::{BareJid, FullJid};
use minidom::Element;

pub use account::{Account, Join, Member, Phase};
pub use action::{Action, Outcome, Verdict};
pub use config::{Config, ConfigError};
pub use input::Input;
pub use time::Millis;

/// Join tracking for every account of one VirtualHost.
#[derive(Debug, Clone)]
pub struct Minimix {
    config: Config,
    accounts: BTreeMap<BareJid, Account>,
    /// Monotonic counter for presence recency and rewritten iq ids.
    seq: u64,
    /// The earliest moment some deadline may be due (may be early, never late).
    next_deadline: Option<Millis>,
    /// The cached room stanzas, once per host however many accounts hold them.
    shared: shared::Interner,
}

impl Minimix {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            accounts: BTreeMap::new(),
            seq: 0,
            next_deadline: None,
            shared: shared::Interner::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the configuration (on module reload); existing state is kept.
    pub fn set_config(&mut self, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Feeds one event; the outcome says whether the hook consumed the stanza and what to do.
    pub fn handle(&mut self, now: Millis, input: Input) -> Outcome {
        self.seq += 1;
        let account = input.account();
        let moves_sessions = !matches!(
            input,
            Input::ClientMessage { .. }
                | Input::ClientIq { .. }
                | Input::RoomMessage { .. }
                | Input::RoomIq { .. }
        );
        let outcome = self.dispatch(now, input);
        if let Some(acct) = self.accounts.get_mut(&account) {
            if moves_sessions {
                // A session that is neither joined nor leaving any more no longer waits for the
                // answer to its nick change (however it got out: left, closed, taken out by the
                // account's own leave).
                for join in acct.rooms.values_mut() {
                    join.forget_gone_nick_change_asker();
                }
            }
            // Whatever the input, an account left with nothing worth keeping goes.
            if acct.is_empty() {
                self.accounts.remove(&account);
            }
        }
        outcome
    }

    fn dispatch(&mut self, now: Millis, input: Input) -> Outcome {
        match input {
            Input::ClientPresence { session, stanza } => {
                self.handle_client_presence(now, session, stanza)
            }
            Input::ClientMessage { session, stanza } => {
                self.handle_client_message(now, session, stanza)
            }
            Input::ClientIq { session, stanza } => self.handle_client_iq(now, session, stanza),
            Input::RoomPresence { account, stanza } => {
                self.handle_room_presence(now, account, stanza)
            }
            Input::RoomMessage { account, stanza } => {
                self.handle_room_message(now, account, stanza)
            }
            Input::RoomIq { account, stanza } => self.handle_room_iq(now, account, stanza),
            Input::SessionClosed { session } => self.handle_session_closed(now, session),
            Input::BookmarkPublished {
                account,
                room,
                conference,
            } => self.handle_bookmark_published(now, account, room, conference),
            Input::BookmarkRetracted { account, room } => {
                self.handle_bookmark_retracted(now, account, room)
            }
        }
    }

    // ----- getters -----

    /// The rooms an account is in or joining, with the account's nick there.
    pub fn rooms_of(&self, account: &BareJid) -> Vec<(BareJid, String, Phase)> {
        self.accounts
            .get(account)
            .map(|a| {
                a.rooms
                    .iter()
                    .map(|(r, j)| (r.clone(), j.nick.clone(), j.phase))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The sessions of an account that joined a room.
    pub fn sessions_in(&self, account: &BareJid, room: &BareJid) -> Vec<FullJid> {
        self.join(account, room)
            .map(|j| j.members.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The account's membership of a room, if any.
    pub fn join(&self, account: &BareJid, room: &BareJid) -> Option<&Join> {
        self.accounts.get(account)?.rooms.get(room)
    }

    /// All accounts with any state, for the admin shell and statistics.
    pub fn accounts(&self) -> impl Iterator<Item = (&BareJid, &Account)> {
        self.accounts.iter()
    }

    /// Whether this stanza's sender is a room the account is in or joining (a timed-out join
    /// included, while its late answer may still come): the hot-path question the bridge asks
    /// before converting a whole stanza.
    pub fn tracks(&self, account: &BareJid, room: &BareJid) -> bool {
        self.accounts
            .get(account)
            .is_some_and(|a| a.rooms.contains_key(room))
    }

    /// Whether mod_mam should keep this message in the account's own archive: groupchat from
    /// a room the account is in. With the account as the one occupant, each message passes
    /// the account once, so it is stored once (mod_mam refuses all groupchat by default).
    pub fn should_archive(
        &self,
        account: &BareJid,
        from: &jid::Jid,
        stanza_type: Option<&str>,
    ) -> bool {
        // Not a late answer to a join nobody wants any more: that is nobody's history.
        stanza_type == Some("groupchat")
            && self
                .join(account, &from.to_bare())
                .is_some_and(|j| !j.unwanted)
    }

    /// The whole decision for one message: [`Minimix::should_archive`], but not for the
    /// room's replay of a message the account heard (and archived) before — a rejoin asks
    /// for history from a little before the last message heard (see `heard`). mod_mam asks
    /// before the core sees the message. Only a message with a `<delay/>` can be a replay:
    /// for any other, `should_archive` alone decides (callers may skip converting it).
    pub fn should_archive_message(&self, account: &BareJid, message: &Element) -> bool {
        let Some(from) = message
            .attr("from")
            .and_then(|f| f.parse::<jid::Jid>().ok())
        else {
            return false;
        };
        if !self.should_archive(account, &from, message.attr("type")) {
            return false;
        }
        let room = from.to_bare();
        self.join(account, &room).is_none_or(|j| {
            j.takes_groupchat(message) && heard::replayed(&j.heard, message, &room).is_none()
        })
    }

    /// The host's shared cached stanzas (for statistics and memory figures).
    pub fn shared_stanzas(&self) -> &shared::Interner {
        &self.shared
    }

    /// Ids of shared stanzas no account holds any more, dropped since the last call: the
    /// bridge forgets the Lua tables it built for them.
    pub fn take_released_shared(&mut self) -> Vec<u64> {
        self.shared.take_released()
    }

    // ----- shared helpers -----

    fn note_deadline(&mut self, at: Millis) {
        self.next_deadline = Some(self.next_deadline.map_or(at, |d| d.min(at)));
    }
}

/// Forwards the input stanza to every joined session.
fn fork_to_members(join: &Join, out: &mut Vec<Action>) {
    out.extend(
        join.members
            .keys()
            .map(|to| Action::Forward { to: to.clone() }),
    );
}

/// Delivers a copy of `stanza` addressed to each of `sessions`.
fn deliver_to<'a>(
    stanza: &Element,
    sessions: impl Iterator<Item = &'a FullJid>,
    out: &mut Vec<Action>,
) {
    out.extend(sessions.map(|to| Action::Deliver {
        to: to.clone(),
        stanza: replay::addressed(stanza, to),
    }));
}

/// `room@service/nick`, or `None` when the nick is not a valid resourcepart.
fn occupant_jid(room: &BareJid, nick: &str) -> Option<FullJid> {
    room.with_resource_str(nick).ok()
}

/// A copy of a session's stanza sent as the account: `from` is the account's bare JID.
fn as_account(stanza: &Element, account: &BareJid) -> Element {
    let mut s = stanza.clone();
    xml::set_attr(&mut s, "from", account.as_str());
    s
}
