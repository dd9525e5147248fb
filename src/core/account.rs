//! Per-account state: the rooms the account is in (or joining, or leaving), which of its
//! sessions joined each one, and what each session told the room.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use jid::FullJid;
use minidom::Element;

use super::room::RoomCache;
use super::time::Millis;

/// Where the account stands with one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The account's join was sent at `since` and the room has not confirmed it yet.
    Joining { since: Millis },
    /// The room sent the account's self-presence.
    Joined,
    /// The account sent unavailable; waiting for the room's self-unavailable.
    Leaving,
}

/// One session that joined the room (as far as that session knows, it is the occupant).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The nick the session asked for; its self-presence gets 210 when the account's differs.
    pub requested_nick: String,
    /// Its latest presence towards the room, stripped to what the room should see.
    pub payload: Element,
    /// Update counter, so the most recent of equally available sessions wins.
    pub seq: u64,
}

/// How many outgoing message ids per room are remembered to route the room's errors back.
pub const SENT_IDS_KEPT: usize = 64;

/// The account's membership of one room.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// The account's nick: the one asked for while joining, then the one the room confirmed.
    pub nick: String,
    pub phase: Phase,
    /// Sessions that joined, by full JID.
    pub members: BTreeMap<FullJid, Member>,
    /// Sessions that left last and wait for the room's answer to the account's leave.
    pub leaving: BTreeSet<FullJid>,
    /// A session's pending nick change: the session and the nick it asked for.
    pub nick_change: Option<(FullJid, String)>,
    /// The presence payload the room currently has for the account.
    pub shown: Option<Element>,
    /// Since when no session has been joined (for `minimix_leave_after`).
    pub idle_since: Option<Millis>,
    /// The password the join used, kept for rejoins.
    pub password: Option<String>,
    pub cache: RoomCache,
    /// Ids of messages sessions sent through the account, newest last, to route errors back.
    pub sent_ids: VecDeque<(String, FullJid)>,
    /// Whether the room has confirmed this join at least once (or it was restored from
    /// storage): only such joins are persisted.
    pub durable: bool,
    /// Restored from storage and not yet re-synchronised with the room.
    pub needs_resync: bool,
    /// When the last groupchat from the room arrived, to ask only for missed history.
    pub last_seen: Option<Millis>,
    /// When the next XEP-0410 self-ping of the room is due.
    pub next_ping: Option<Millis>,
    /// The id of the self-ping in flight.
    pub ping_id: Option<String>,
    /// A quiet rejoin in flight (see `resync`): what the joined sessions already know.
    pub resync: Option<super::resync::Resync>,
}

impl Join {
    pub fn new(nick: String, since: Millis) -> Self {
        Self {
            nick,
            phase: Phase::Joining { since },
            members: BTreeMap::new(),
            leaving: BTreeSet::new(),
            nick_change: None,
            shown: None,
            idle_since: None,
            password: None,
            cache: RoomCache::default(),
            sent_ids: VecDeque::new(),
            durable: false,
            needs_resync: false,
            last_seen: None,
            next_ping: None,
            ping_id: None,
            resync: None,
        }
    }

    /// Remembers which session sent a message with this id.
    pub fn remember_sent(&mut self, id: &str, session: &FullJid) {
        if self.sent_ids.len() >= SENT_IDS_KEPT {
            self.sent_ids.pop_front();
        }
        self.sent_ids.push_back((id.to_owned(), session.clone()));
    }

    /// The session that sent the message with this id, if it is still remembered.
    pub fn sender_of(&self, id: &str) -> Option<&FullJid> {
        self.sent_ids
            .iter()
            .rev()
            .find(|(i, _)| i == id)
            .map(|(_, s)| s)
    }
}

/// An iq a session sent through the account, waiting for the room's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingIq {
    pub session: FullJid,
    pub original_id: String,
    /// The JID the iq went to; only an answer from it is accepted.
    pub peer: String,
    pub expires: Millis,
}

/// Everything the core keeps for one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    pub rooms: BTreeMap<jid::BareJid, Join>,
    /// Rewritten iq id → who asked.
    pub pending_iqs: BTreeMap<String, PendingIq>,
    /// The account's XEP-0402 bookmarks (`<conference/>` payloads) by room.
    pub bookmarks: BTreeMap<jid::BareJid, Element>,
    /// When its sessions' recent join requests came (the last minute's, bounded by the limit).
    pub recent_joins: VecDeque<Millis>,
    /// Joins that timed out, whose late answers are dropped (see `abandoned`).
    pub abandoned: BTreeMap<jid::BareJid, super::abandoned::Abandoned>,
}

impl Account {
    /// Nothing left worth keeping: the entry can go.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
            && self.pending_iqs.is_empty()
            && self.bookmarks.is_empty()
            && self.recent_joins.is_empty()
            && self.abandoned.is_empty()
    }
}
