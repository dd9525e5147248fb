//! What outlives the process: the rooms an account is in, its nick, the password it joined
//! with and when it last heard from each room. The shim stores it with `module:open_store`
//! (any backend); after a restart the core restores it and re-synchronises each room with a
//! join from the account (a local room still lists the account as occupant and answers with
//! occupants, self-presence, missed history and subject; a remote room simply lets it join).

use jid::BareJid;
use minidom::Element;

use super::account::{Join, Phase};
use super::heard::Heard;
use super::local;
use super::muc::{NS_CLIENT, NS_MUC};
use super::presence;
use super::rejoin_window::RejoinWindow;
use super::time::{self, Millis};
use super::xml;
use super::{as_account, occupant_jid, Action, Minimix, Outcome};

/// One room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedRoom {
    pub room: BareJid,
    pub nick: String,
    pub password: Option<String>,
    pub last_seen: Option<Millis>,
    /// The last messages heard there, to recognise the room's replays of them (an older
    /// record has none: its rejoin may repeat what arrived in the last seconds, once).
    pub heard: Heard,
}

/// The longest stored password kept (a room password is short; anything longer is damage).
pub const MAX_STORED_PASSWORD_BYTES: usize = 1024;

/// Why a stored room is not restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredRoomError {
    /// The nick is no valid occupant resourcepart (empty, too long, control characters, …).
    BadNick,
    /// The password has control characters or is too long.
    BadPassword,
}

impl std::fmt::Display for StoredRoomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::BadNick => "the stored nick is not a valid occupant nick",
            Self::BadPassword => "the stored password has control characters or is too long",
        })
    }
}

impl std::error::Error for StoredRoomError {}

impl PersistedRoom {
    /// Storage is outside the core's control (edited, corrupted, an older format): a room is
    /// only restored when it could be joined as stored.
    pub fn check(&self) -> Result<(), StoredRoomError> {
        let nick_ok = !self.nick.chars().any(char::is_control)
            && occupant_jid(&self.room, &self.nick).is_some();
        if !nick_ok {
            return Err(StoredRoomError::BadNick);
        }
        if let Some(password) = &self.password {
            if password.chars().any(char::is_control) || password.len() > MAX_STORED_PASSWORD_BYTES
            {
                return Err(StoredRoomError::BadPassword);
            }
        }
        Ok(())
    }
}

impl Minimix {
    /// The durable state of an account (empty: nothing to keep).
    pub fn persisted(&self, account: &BareJid) -> Vec<PersistedRoom> {
        let Some(acct) = self.accounts.get(account) else {
            return Vec::new();
        };
        acct.rooms
            .iter()
            .filter(|(_, j)| j.durable && j.phase != Phase::Leaving && !j.unwanted)
            .map(|(room, j)| PersistedRoom {
                room: room.clone(),
                nick: j.nick.clone(),
                password: j.password.clone(),
                last_seen: j.last_seen,
                heard: j.heard.clone(),
            })
            .collect()
    }

    /// Every account with durable state, for a snapshot at shutdown.
    pub fn persisted_accounts(&self) -> Vec<BareJid> {
        self.accounts
            .iter()
            .filter(|(_, a)| a.rooms.values().any(|j| j.durable))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Loads an account's stored rooms. From now on their traffic is claimed (so nothing
    /// bounces and gets the account kicked); `resume` sends the re-synchronising joins.
    pub fn restore_account(&mut self, now: Millis, account: BareJid, rooms: Vec<PersistedRoom>) {
        let max_rooms = self.config.max_rooms;
        // Each restored join is a new incarnation (unique presence ids).
        self.seq += 1;
        let seq = self.seq;
        if rooms.is_empty() {
            return;
        }
        let acct = self.accounts.entry(account.clone()).or_default();
        for stored in rooms {
            if let Err(e) = stored.check() {
                log::warn!("minimix: not restoring {}: {e}", stored.room);
                continue;
            }
            if acct.rooms.len() >= max_rooms || acct.rooms.contains_key(&stored.room) {
                continue;
            }
            let mut join = Join::new(stored.nick, now, seq);
            join.password = stored.password;
            join.last_seen = stored.last_seen;
            join.heard = stored.heard.restored();
            join.durable = true;
            join.needs_resync = true;
            join.idle_since = Some(now);
            acct.rooms.insert(stored.room, join);
        }
        // Nothing restorable: no empty account is left behind.
        if self.accounts.get(&account).is_some_and(|a| a.is_empty()) {
            self.accounts.remove(&account);
        }
    }

    /// Sends a join from the account to every restored room, asking only for the history
    /// missed since it last heard from the room.
    pub fn resume(&mut self, now: Millis) -> Outcome {
        let mut out = Vec::new();
        let (show, status) = (
            self.config.away_show.clone(),
            self.config.away_status.clone(),
        );
        let join_timeout = self.config.join_timeout_ms;
        let mut any = false;
        for (account, acct) in self.accounts.iter_mut() {
            for (room, join) in acct.rooms.iter_mut().filter(|(_, j)| j.needs_resync) {
                join.needs_resync = false;
                join.phase = Phase::Joining { since: now };
                join.join_sent = join.cache.arrivals();
                join.answer_open = true;
                join.cache.replays_refill = join.cache.history.is_empty();
                let Some(to) = occupant_jid(room, &join.nick) else {
                    continue;
                };
                let payload = presence::away_payload(show.as_deref(), status.as_deref());
                let mut stanza = payload.clone();
                xml::set_attr(&mut stanza, "to", to.as_str());
                stanza.append_child(resync_payload(join));
                let mut stanza = as_account(&stanza, account);
                let evicted = join.send_presence(&mut stanza);
                local::tell_left(room, join, evicted, &mut out);
                out.push(Action::Route { stanza });
                join.shown = Some(payload);
                any = true;
            }
        }
        if any {
            self.note_deadline(now + join_timeout);
        }
        Outcome::handled(out)
    }

    /// The account was deleted: it leaves every room and its state is gone.
    pub fn forget_account(&mut self, account: &BareJid) -> Outcome {
        let mut out = Vec::new();
        if let Some(acct) = self.accounts.remove(account) {
            for (room, join) in acct.rooms {
                if let Some(to) = occupant_jid(&room, &join.nick) {
                    let leave = xml::element(
                        "presence",
                        NS_CLIENT,
                        &[("type", "unavailable"), ("to", to.as_str())],
                    );
                    out.push(Action::Route {
                        stanza: as_account(&leave, account),
                    });
                }
            }
        }
        Outcome::handled(out)
    }
}

/// `<x xmlns=muc>` with the stored password and `<history since=…/>` (or no history at all
/// when the account never heard from the room). `since` reaches back a little before the
/// last message heard (see `heard`): the room's replays of what was heard are recognised,
/// and what it replays unheard waits in the join's window (see `rejoin_window`).
pub(super) fn resync_payload(join: &mut Join) -> Element {
    let mut x = Element::bare("x", NS_MUC);
    let history = match join.last_seen {
        Some(seen) => {
            join.window = RejoinWindow::open();
            xml::element(
                "history",
                NS_MUC,
                &[(
                    "since",
                    &time::format_datetime(join.heard.history_since(seen)),
                )],
            )
        }
        None => {
            join.window = RejoinWindow::default();
            xml::element("history", NS_MUC, &[("maxstanzas", "0")])
        }
    };
    x.append_child(history);
    if let Some(password) = &join.password {
        x.append_child(xml::text_element("password", NS_MUC, password));
    }
    x
}
