//! Per-account state: the rooms the account is in (or joining, or leaving), which of its
//! sessions joined each one, and what each session told the room.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use jid::FullJid;
use minidom::Element;

use super::heard::Heard;
use super::rejoin_window::RejoinWindow;
use super::room::RoomCache;
use super::time::Millis;
use super::xml;

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
    /// The nick the session asked for; its self-presence gets 210 when the account's differs,
    /// and an error about its join comes from this occupant JID (a client matches it by that).
    pub requested_nick: String,
    /// Whether the session got its self-presence, i.e. believes it is in the room: when the
    /// account then fails to (re)join, it is told it was removed, not that its join failed.
    pub in_room: bool,
    /// Its latest presence towards the room, stripped to what the room should see.
    pub payload: Element,
    /// Update counter, so the most recent of equally available sessions wins.
    pub seq: u64,
    /// The core's input counter when the session joined: it had every message the account
    /// heard after that (see `heard`).
    pub joined_seq: u64,
    /// Which messages it got from the account's archive as history (hashed replay keys,
    /// newest last, at most [`FROM_ARCHIVE_KEPT`]): a rejoin's history that brings one of
    /// them again is not news to it (see `rejoin_window`).
    pub from_archive: VecDeque<u64>,
}

/// How many of the messages a session got from the archive it remembers: only the newest
/// can fall in a rejoin's window (see `heard::SINCE_MARGIN_MS`).
pub const FROM_ARCHIVE_KEPT: usize = super::heard::HEARD_KEPT;

impl Member {
    /// The session got the message with this replay key from the archive.
    pub fn got_from_archive(&mut self, key: &str) {
        self.from_archive.push_back(super::heard::key_hash(key));
        while self.from_archive.len() > FROM_ARCHIVE_KEPT {
            self.from_archive.pop_front();
        }
    }
}

/// How many outgoing message ids per room are remembered to route the room's errors back.
pub const SENT_IDS_KEPT: usize = 64;

/// How many unanswered presences per room are remembered; beyond, the oldest is taken as lost.
pub const IN_FLIGHT_KEPT: usize = 32;

/// How the ids the core gives the presences it sends rooms begin.
pub const PRESENCE_ID_PREFIX: &str = "minimix-p";

/// A presence the account sent a room that the room has not answered yet. A room handles an
/// occupant's presences one at a time, in the order sent, and answers each (XEP-0045 §7.2,
/// §7.6, §7.7, §7.14): a join or a presence change with a self-presence (110), a leave with a
/// self-unavailable, a refusal with a presence error. Prosody's MUC answers with the id of the
/// presence it answers (it keeps the occupant's presence as sent, and errors are replies), so
/// an answer carrying one of the core's ids is matched exactly, even long after the core gave
/// up on it; otherwise the oldest unanswered one is what an answer is about, and an answer
/// that comes before a later leave's cannot be about anything asked after that leave.
#[derive(Debug, Clone, PartialEq)]
pub enum InFlight {
    /// A join, presence change or nick change: answered by a self-presence or an error.
    Presence { id: String },
    /// A leave, the sessions waiting for its self-unavailable, and when it was sent (a room
    /// that no longer has the account never answers it: `minimix_join_timeout` ends the wait).
    Leave {
        id: String,
        sessions: BTreeSet<FullJid>,
        sent: Millis,
        /// Left for good (the last session left): bookmark sync clears autojoin. Not so for
        /// the core's own leaves (idle, or after a join timed out).
        for_good: bool,
    },
}

/// Leaves that are over (answered, or given up on).
#[derive(Debug, Default)]
pub struct LeaveDone {
    /// The sessions that were waiting for them.
    pub sessions: BTreeSet<FullJid>,
    /// Whether the latest of them was a leave for good.
    pub for_good: bool,
}

/// What the room's self-presence or presence error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The account's latest request: the join, presence or nick change now in force.
    Current,
    /// A request sent before a leave still in flight, or one the core gave up on: it changes
    /// nothing any more.
    Stale,
    /// Nothing the account asked (a role change, say): about the current state, if any.
    Unsolicited,
}

/// What the room's plain self-unavailable is about.
#[derive(Debug)]
pub enum LeaveAnswer {
    /// One of the account's leaves.
    Answered(LeaveDone),
    /// A leave the core gave up on: nobody waits for it any more.
    Forgotten,
    /// No leave: the room removed the account by itself.
    Unasked,
}

/// A session's nick change the room has not answered yet.
#[derive(Debug, Clone, PartialEq)]
pub struct NickChange {
    /// The id of the presence that asked for it.
    pub id: String,
    /// The session that asked; `None` once it left or closed (the answer still counts).
    pub session: Option<FullJid>,
    pub nick: String,
    /// What the room showed for the account before: a refused change leaves it there.
    pub shown_before: Option<Element>,
}
/// The account's membership of one room.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// The account's nick: the one asked for while joining, then the one the room confirmed.
    pub nick: String,
    pub phase: Phase,
    /// Sessions that joined, by full JID.
    pub members: BTreeMap<FullJid, Member>,
    /// The account's presences the room has not answered yet, oldest first; the sessions
    /// waiting for a leave's answer are in its entry.
    pub in_flight: VecDeque<InFlight>,
    /// A session's pending nick change.
    pub nick_change: Option<NickChange>,
    /// Makes the ids of this join's presences unique across joins (the core's input counter
    /// when the join began), with `presences_sent` counting within it.
    pub incarnation: u64,
    pub presences_sent: u64,
    /// The id of the latest presence the room answered: a room repeats it when it changes
    /// the account's presence by itself (Prosody re-sends the presence it keeps).
    pub last_answered: Option<String>,
    /// The presence payload the room currently has for the account.
    pub shown: Option<Element>,
    /// Since when no session has been joined (for `minimix_leave_after`).
    pub idle_since: Option<Millis>,
    /// The password the join used, kept for rejoins.
    pub password: Option<String>,
    pub cache: RoomCache,
    /// Ids of messages sessions sent through the account, newest last, to route errors back;
    /// `None` once the sender closed (an error about its message then reaches nobody).
    pub sent_ids: VecDeque<(String, Option<FullJid>)>,
    /// Whether the room has confirmed this join at least once (or it was restored from
    /// storage): only such joins are persisted.
    pub durable: bool,
    /// Restored from storage and not yet re-synchronised with the room.
    pub needs_resync: bool,
    /// When the last groupchat from the room arrived, to ask only for missed history.
    pub last_seen: Option<Millis>,
    /// The last messages heard, to recognise the room's replays of them on a rejoin.
    pub heard: Heard,
    /// A rejoin's history held back until the room's order tells whether it was missed.
    pub window: RejoinWindow,
    /// Whether the room's answer to the account's latest join is being taken in: from a
    /// rejoin's sending (after a restart or a quiet rejoin; the room may still have the
    /// account) or a first join's self-presence, until the room's subject ends the answer.
    /// Meanwhile the replays of heard messages go before what arrived live since the join
    /// was sent (see `join_sent`).
    pub answer_open: bool,
    /// The cache's arrival count (see `RoomCache::arrivals`) when the account's latest join
    /// was sent.
    pub join_sent: u64,
    /// When the next XEP-0410 self-ping of the room is due.
    pub next_ping: Option<Millis>,
    /// The id of the self-ping in flight.
    pub ping_id: Option<String>,
    /// A quiet rejoin in flight (see `resync`): what the joined sessions already know.
    pub resync: Option<super::resync::Resync>,
    /// The join timed out and its sessions were told so; if the room lets the account in
    /// after all, it leaves again (unless a session joined meanwhile).
    pub unwanted: bool,
    /// The room is answering a presence the core no longer waits for (sent before a leave,
    /// or a join it gave up on): the history that may follow is that answer's, not the
    /// account's. It is dropped (and not archived); the answer to the current join brings the
    /// room's history again, in order. Ends with the subject, a live message or the current
    /// answer.
    pub stale_answer: bool,
    /// Archive ids of the unheard history the room's current answer brought so far (newest
    /// last, at most `Limits::unplaced`): a replay of a heard message after them shows they
    /// are older than what the archive holds, so they are taken back out of it.
    pub answer_unheard: VecDeque<String>,
}

impl Join {
    pub fn new(nick: String, since: Millis, incarnation: u64) -> Self {
        Self {
            nick,
            phase: Phase::Joining { since },
            members: BTreeMap::new(),
            in_flight: VecDeque::new(),
            nick_change: None,
            incarnation,
            presences_sent: 0,
            last_answered: None,
            shown: None,
            idle_since: None,
            password: None,
            cache: RoomCache::default(),
            sent_ids: VecDeque::new(),
            durable: false,
            needs_resync: false,
            last_seen: None,
            heard: Heard::default(),
            window: RejoinWindow::default(),
            answer_open: false,
            join_sent: 0,
            next_ping: None,
            ping_id: None,
            resync: None,
            unwanted: false,
            stale_answer: false,
            answer_unheard: VecDeque::new(),
        }
    }

    /// Remembers which session sent a message with this id.
    pub fn remember_sent(&mut self, id: &str, session: &FullJid) {
        if self.sent_ids.len() >= SENT_IDS_KEPT {
            self.sent_ids.pop_front();
        }
        self.sent_ids
            .push_back((id.to_owned(), Some(session.clone())));
    }

    /// Who sent the message with this id: `None` when the id is not remembered,
    /// `Some(None)` when its sender has closed since.
    pub fn sender_of(&self, id: &str) -> Option<Option<&FullJid>> {
        self.sent_ids
            .iter()
            .rev()
            .find(|(i, _)| i == id)
            .map(|(_, s)| s.as_ref())
    }

    /// A session closed: errors about its messages must not reach whoever gets its JID next.
    pub fn forget_sender(&mut self, session: &FullJid) {
        for (_, sender) in self.sent_ids.iter_mut() {
            if sender.as_ref() == Some(session) {
                *sender = None;
            }
        }
    }

    /// Sessions that left and wait for the room's answer to one of the account's leaves.
    pub fn leaving(&self) -> impl Iterator<Item = &FullJid> {
        self.in_flight
            .iter()
            .flat_map(|f| match f {
                InFlight::Leave { sessions, .. } => Some(sessions.iter()),
                InFlight::Presence { .. } => None,
            })
            .flatten()
    }

    /// Clears the asker of a pending nick change once it is neither joined nor leaving: the
    /// room's answer then reaches the others (an accepted change) or nobody (a refusal).
    pub fn forget_gone_nick_change_asker(&mut self) {
        let gone = self
            .nick_change
            .as_ref()
            .and_then(|c| c.session.as_ref())
            .is_some_and(|s| !self.members.contains_key(s) && !self.is_leaving(s));
        if gone {
            if let Some(change) = self.nick_change.as_mut() {
                change.session = None;
            }
        }
    }

    pub fn is_leaving(&self, session: &FullJid) -> bool {
        self.leaving().any(|s| s == session)
    }

    /// The arrival count before which heard replays go while the answer is taken in (see
    /// `answer_open`).
    pub fn replays_before(&self) -> Option<u64> {
        self.answer_open.then_some(self.join_sent)
    }

    /// Whether the account's own join (not a rejoin) is unanswered: as far as the core knows
    /// it is not in the room, so what the room sends about the account's occupant (other
    /// than the answer) is from a membership given up on or being left.
    pub fn awaits_own_answer(&self) -> bool {
        matches!(self.phase, Phase::Joining { .. }) && !self.answer_open
    }

    /// Whether groupchat from the room is the account's: not while its own join is
    /// unanswered (see `awaits_own_answer`; the sessions wait for their join's answer, whose
    /// history brings what they should see), and not the history of an answer the core no
    /// longer waits for (see `stale_answer`). What is not the account's is neither
    /// forwarded, buffered, remembered nor archived.
    pub fn takes_groupchat(&self, message: &Element) -> bool {
        let unanswered = self.awaits_own_answer();
        let stale_history = self.stale_answer
            && message.has_child("delay", super::muc::NS_DELAY)
            && !super::muc::is_subject_message(message);
        !unanswered && !stale_history
    }

    /// Whether a leave of the account is still unanswered.
    pub fn leave_in_flight(&self) -> bool {
        self.in_flight
            .iter()
            .any(|f| matches!(f, InFlight::Leave { .. }))
    }

    /// The session no longer waits for a leave's answer (it joined again, or closed).
    pub fn stop_leaving(&mut self, session: &FullJid) {
        for f in self.in_flight.iter_mut() {
            if let InFlight::Leave { sessions, .. } = f {
                sessions.remove(session);
            }
        }
    }

    /// Records a join, presence change or nick change about to be sent to the room and gives
    /// `stanza` its id. Returns the sessions of a leave pushed out by the bound (taken as
    /// answered: they are to be told locally).
    #[must_use]
    pub fn send_presence(&mut self, stanza: &mut Element) -> BTreeSet<FullJid> {
        let id = self.next_presence_id(stanza);
        self.record(InFlight::Presence { id })
    }

    /// Records a leave about to be sent to the room, and gives `stanza` its id; see
    /// [`Join::send_presence`].
    #[must_use]
    pub fn send_leave(
        &mut self,
        stanza: &mut Element,
        sessions: BTreeSet<FullJid>,
        sent: Millis,
        for_good: bool,
    ) -> BTreeSet<FullJid> {
        let id = self.next_presence_id(stanza);
        self.record(InFlight::Leave {
            id,
            sessions,
            sent,
            for_good,
        })
    }

    fn next_presence_id(&mut self, stanza: &mut Element) -> String {
        self.presences_sent += 1;
        let id = format!(
            "{PRESENCE_ID_PREFIX}{:x}-{:x}",
            self.incarnation, self.presences_sent
        );
        xml::set_attr(stanza, "id", id.clone());
        id
    }

    fn record(&mut self, sent: InFlight) -> BTreeSet<FullJid> {
        let mut evicted = BTreeSet::new();
        while self.in_flight.len() >= IN_FLIGHT_KEPT {
            if let Some(InFlight::Leave { sessions, .. }) = self.in_flight.pop_front() {
                evicted.extend(sessions);
            }
        }
        self.in_flight.push_back(sent);
        evicted
    }

    /// Matches a self-presence or presence error (with the id it carries) to the join or
    /// presence change it answers. Leaves sent before that were dropped by the room (it no
    /// longer had the account, or a leave was lost): their sessions are returned, to be told
    /// locally.
    pub fn answer_presence(&mut self, id: Option<&str>) -> (Answer, BTreeSet<FullJid>) {
        let ours = id.filter(|id| id.starts_with(PRESENCE_ID_PREFIX));
        let position = match ours {
            Some(id) => self
                .in_flight
                .iter()
                .position(|f| matches!(f, InFlight::Presence { id: i } if i == id)),
            None => self
                .in_flight
                .iter()
                .position(|f| matches!(f, InFlight::Presence { .. })),
        };
        let Some(i) = position else {
            let answer = match ours {
                Some(id) if self.last_answered.as_deref() != Some(id) => Answer::Stale,
                _ => Answer::Unsolicited,
            };
            return (answer, BTreeSet::new());
        };
        let mut dropped = BTreeSet::new();
        for f in self.in_flight.drain(..=i) {
            match f {
                InFlight::Leave { sessions, .. } => dropped.extend(sessions),
                InFlight::Presence { id } => self.last_answered = Some(id),
            }
        }
        let answer = if self.leave_in_flight() {
            Answer::Stale
        } else {
            Answer::Current
        };
        (answer, dropped)
    }

    /// Matches a plain self-unavailable (with the id it carries) to the leave it answers;
    /// presences sent before that leave were lost.
    pub fn answer_leave(&mut self, id: Option<&str>) -> LeaveAnswer {
        let ours = id.filter(|id| id.starts_with(PRESENCE_ID_PREFIX));
        let position = self.in_flight.iter().position(|f| match (f, ours) {
            (InFlight::Leave { id: i, .. }, Some(id)) => i == id,
            (InFlight::Leave { .. }, None) => true,
            (InFlight::Presence { .. }, _) => false,
        });
        match (position, ours) {
            (Some(i), _) => LeaveAnswer::Answered(self.take_through(i)),
            (None, Some(_)) => LeaveAnswer::Forgotten,
            (None, None) => LeaveAnswer::Unasked,
        }
    }

    /// Takes off the leaves sent at `sent_before` or earlier (with whatever was sent before
    /// them): the room will not answer them any more.
    pub fn expire_leaves(&mut self, sent_before: Millis) -> LeaveDone {
        let last_expired = self
            .in_flight
            .iter()
            .rposition(|f| matches!(f, InFlight::Leave { sent, .. } if *sent <= sent_before));
        match last_expired {
            Some(i) => self.take_through(i),
            None => LeaveDone::default(),
        }
    }

    /// Takes off the entries up to `i`, which is a leave.
    fn take_through(&mut self, i: usize) -> LeaveDone {
        let mut done = LeaveDone::default();
        for f in self.in_flight.drain(..=i) {
            if let InFlight::Leave {
                sessions, for_good, ..
            } = f
            {
                done.sessions.extend(sessions);
                done.for_good = for_good;
            }
        }
        done
    }

    /// When the oldest unanswered leave was sent.
    pub fn oldest_leave(&self) -> Option<Millis> {
        self.in_flight.iter().find_map(|f| match f {
            InFlight::Leave { sent, .. } => Some(*sent),
            InFlight::Presence { .. } => None,
        })
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
}

impl Account {
    /// Nothing left worth keeping: the entry can go.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
            && self.pending_iqs.is_empty()
            && self.bookmarks.is_empty()
            && self.recent_joins.is_empty()
    }
}
