//! What the account last heard in a room, so that a rejoin loses nothing and repeats
//! nothing.
//!
//! A rejoin (after a local restart, or a quiet rejoin after the room dropped the account)
//! asks the room for `<history since=…/>`. Rooms stamp history with whole seconds (Prosody's
//! muc.lib) and their clock is not ours: asking from the second *after* the last message
//! heard loses what the room sent later in that same second, and asking from the start of
//! that second repeats what was heard in it. So the rejoin asks a little earlier than the
//! last-heard second (see [`SINCE_MARGIN_MS`]) and the account remembers the last few
//! messages it heard ([`HEARD_KEPT`]): the room's replays of those are recognised (by the
//! room's XEP-0359 `<stanza-id by=room/>`, else by their content) and are neither forwarded
//! again to sessions that had them, nor cached twice, nor archived twice.
//!
//! The memory is persisted with the room (a restart empties everything else).

use std::collections::VecDeque;

use jid::BareJid;
use minidom::Element;

use super::archive::NS_SID;
use super::muc::{self, NS_CLIENT, NS_DELAY};
use super::time::Millis;
use super::xml::{self, Omit};

/// How many recently heard messages each room remembers. A room replays what it stamped
/// since the rejoin's `since`: with [`SINCE_MARGIN_MS`], a couple of seconds' worth; a burst
/// of more than this in those seconds makes the rejoin ask for less (see
/// [`Heard::history_since`]). Each is a short key, an arrival time and an archive id.
pub const HEARD_KEPT: usize = 32;

/// How much earlier than the last message heard a rejoin asks for history. The room stamps a
/// message when it sends it; it arrives here later (s2s latency) and by another clock: a
/// message the room stamped in second S may arrive in S+1, and what the room sent after it
/// (unheard) is stamped S too. Two seconds cover latency up to a second plus clock skew of
/// NTP-synchronised servers; everything heard within them is recognised when replayed.
pub const SINCE_MARGIN_MS: Millis = 2000;

/// The longest key kept as it is; longer ids (a hostile room's) are hashed.
const MAX_KEY_BYTES: usize = 128;

/// The longest archive id kept (mod_mam's are short; anything longer is damage).
const MAX_ARCHIVE_ID_BYTES: usize = 256;

/// One message the account heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardMessage {
    /// What identifies the room's replay of it (see [`replay_key`]).
    pub key: String,
    /// When it arrived here.
    pub at: Millis,
    /// The id the account's archive gave it, if it was archived.
    pub archive_id: Option<String>,
    /// The core's input counter when it was heard: sessions that joined before had it. Not
    /// stored (0 when restored: every session after a restart joined later).
    pub heard_seq: u64,
}

impl HeardMessage {
    /// Whether a stored entry is one this module could have written.
    fn is_sane(&self) -> bool {
        !self.key.is_empty()
            && self.key.len() <= MAX_KEY_BYTES
            && self
                .archive_id
                .as_ref()
                .is_none_or(|id| !id.is_empty() && id.len() <= MAX_ARCHIVE_ID_BYTES)
    }
}

/// The last [`HEARD_KEPT`] messages heard in one room, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heard {
    recent: VecDeque<HeardMessage>,
    /// When the newest message that no longer fits arrived: a rejoin must not ask for it
    /// again (its replay would not be recognised).
    forgotten_at: Option<Millis>,
}

impl Heard {
    /// The memory as stored: the newest [`HEARD_KEPT`] sane entries (storage may have been
    /// edited or damaged; what could not have been written is left out).
    pub fn from_stored(messages: Vec<HeardMessage>, forgotten_at: Option<Millis>) -> Self {
        let mut heard = Self {
            recent: VecDeque::new(),
            forgotten_at,
        };
        for m in messages.into_iter().filter(HeardMessage::is_sane) {
            heard.push(HeardMessage { heard_seq: 0, ..m });
        }
        heard
    }

    /// The memory as a restart finds it: no session joined now had any of it (the input
    /// counter starts again), whatever counts it was stored with.
    pub fn restored(self) -> Self {
        Self::from_stored(self.recent.into(), self.forgotten_at)
    }

    /// The remembered messages, oldest first.
    pub fn messages(&self) -> impl Iterator<Item = &HeardMessage> {
        self.recent.iter()
    }

    pub fn forgotten_at(&self) -> Option<Millis> {
        self.forgotten_at
    }

    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }

    /// Remembers a message heard at `at`, with the core's input counter then.
    pub fn note(&mut self, key: String, at: Millis, archive_id: Option<&str>, heard_seq: u64) {
        let archive_id = archive_id
            .filter(|id| !id.is_empty() && id.len() <= MAX_ARCHIVE_ID_BYTES)
            .map(str::to_owned);
        self.push(HeardMessage {
            key,
            at,
            archive_id,
            heard_seq,
        });
    }

    fn push(&mut self, message: HeardMessage) {
        self.recent.push_back(message);
        while self.recent.len() > HEARD_KEPT {
            if let Some(old) = self.recent.pop_front() {
                self.forgotten_at = Some(self.forgotten_at.map_or(old.at, |f| f.max(old.at)));
            }
        }
    }

    /// Every session joined now has the message with this key (the room's replay of it was
    /// just forwarded to those that lacked it).
    pub fn delivered(&mut self, key: &str, seq: u64) {
        if let Some(m) = self.recent.iter_mut().rev().find(|m| m.key == key) {
            m.heard_seq = m.heard_seq.max(seq);
        }
    }

    /// The remembered message with this key, if any.
    pub fn get(&self, key: &str) -> Option<&HeardMessage> {
        self.recent.iter().rev().find(|m| m.key == key)
    }

    /// What a rejoin asks for, given when the room was last heard from: the start of the
    /// second [`SINCE_MARGIN_MS`] before, so that nothing the room sent after the last
    /// message heard (stamped in the same second, or earlier by its clock) is lost; but not
    /// so early that messages no longer remembered come back (they would be repeated), and
    /// never later than the start of the last-heard second (a burst of more than
    /// [`HEARD_KEPT`] messages within it is the one case where some may come twice).
    pub fn history_since(&self, last_seen: Millis) -> Millis {
        let second = |t: Millis| t - t % 1000;
        let mut since = second(last_seen.saturating_sub(SINCE_MARGIN_MS));
        if let Some(forgotten) = self.forgotten_at {
            since = since.max(second(forgotten) + 1000);
        }
        since.min(second(last_seen))
    }
}

/// Whether a room keeps this groupchat in its history, and so may replay it on a rejoin
/// (Prosody's `muc-message-is-historic`: not with a no-store hint; with a store hint, a
/// body, an XEP-0380 encryption or a chat marker). Only these are remembered: typing
/// notifications would push the messages that matter out of the memory.
pub fn may_be_replayed(stanza: &Element) -> bool {
    const NS_HINTS: &str = "urn:xmpp:hints";
    if muc::is_subject_message(stanza)
        || stanza.has_child("no-store", NS_HINTS)
        || stanza.has_child("no-permanent-store", NS_HINTS)
    {
        return false;
    }
    stanza.has_child("store", NS_HINTS)
        || stanza.has_child("body", NS_CLIENT)
        || stanza.has_child("encryption", "urn:xmpp:eme:0")
        || stanza
            .children()
            .any(|c| c.ns() == "urn:xmpp:chat-markers:0")
}

/// What identifies a room message across the room's replays of it: the room's own XEP-0359
/// id (`<stanza-id by=room/>`, which Prosody's MUC adds with muc_mam, as most MUCs do),
/// else a hash of the message as the room sent it (a room without ids replays a copy of the
/// message plus a `<delay/>`; `to`, the delay and stanza ids are left out).
pub fn replay_key(stanza: &Element, room: &BareJid) -> String {
    let by_room = stanza
        .children()
        .filter(|c| c.is("stanza-id", NS_SID) && c.attr("by") == Some(room.as_str()))
        .find_map(|c| c.attr("id"));
    match by_room {
        Some(id) if !id.is_empty() && id.len() + 4 <= MAX_KEY_BYTES => format!("sid:{id}"),
        Some(id) => format!("sid#{:016x}", fnv1a(id.as_bytes())),
        None => {
            let mut bare = stanza.clone();
            xml::remove_children(&mut bare, "delay", NS_DELAY);
            xml::remove_children(&mut bare, "stanza-id", NS_SID);
            let mut text = String::new();
            xml::write_compact(
                &bare,
                Omit {
                    to: true,
                    last_node: false,
                },
                &mut text,
            );
            format!("xml#{:016x}", fnv1a(text.as_bytes()))
        }
    }
}

/// The remembered message a groupchat from the room replays, if it is one: only a message
/// with a `<delay/>` (history) can be.
pub fn replayed<'a>(
    heard: &'a Heard,
    stanza: &Element,
    room: &BareJid,
) -> Option<&'a HeardMessage> {
    if heard.is_empty() || !stanza.has_child("delay", NS_DELAY) {
        return None;
    }
    heard.get(&replay_key(stanza, room))
}

/// A replay key as a number, for the sets that only need to recognise it.
pub fn key_hash(key: &str) -> u64 {
    fnv1a(key.as_bytes())
}

/// FNV-1a, 64 bits: a stable hash (keys are persisted, so not std's randomised one).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    fn room() -> BareJid {
        "r@muc.example".parse().unwrap()
    }

    #[test]
    fn the_rooms_stanza_id_identifies_a_message_and_its_replay() {
        let live = el("<message xmlns='jabber:client' type='groupchat' from='r@muc.example/n' to='a@h' id='x'>\
            <body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='r@muc.example' id='R1'/>\
            <stanza-id xmlns='urn:xmpp:sid:0' by='a@h' id='A1'/></message>");
        let replay = el("<message xmlns='jabber:client' type='groupchat' from='r@muc.example/n' to='a@h' id='x'>\
            <body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'/><delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/>\
            <stanza-id xmlns='urn:xmpp:sid:0' by='r@muc.example' id='R1'/></message>");
        assert_eq!(replay_key(&live, &room()), "sid:R1");
        assert_eq!(replay_key(&replay, &room()), "sid:R1");
    }

    #[test]
    fn without_ids_the_content_identifies_it() {
        let live = el(
            "<message xmlns='jabber:client' type='groupchat' from='r@muc.example/n' to='a@h'>\
            <body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='a@h' id='A1'/></message>",
        );
        let replay = el("<message xmlns='jabber:client' type='groupchat' from='r@muc.example/n' to='a@h'>\
            <body>hi</body><delay xmlns='urn:xmpp:delay' from='r@muc.example' stamp='2026-01-01T00:00:00Z'/></message>");
        let other = el(
            "<message xmlns='jabber:client' type='groupchat' from='r@muc.example/n' to='a@h'>\
            <body>hi!</body><delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/></message>",
        );
        assert_eq!(replay_key(&live, &room()), replay_key(&replay, &room()));
        assert_ne!(replay_key(&live, &room()), replay_key(&other, &room()));
    }

    #[test]
    fn the_memory_is_bounded_and_remembers_what_it_forgot() {
        let mut heard = Heard::default();
        for i in 0..HEARD_KEPT as u64 + 3 {
            heard.note(format!("k{i}"), 10_000 + i, None, i);
        }
        assert_eq!(heard.messages().count(), HEARD_KEPT);
        assert!(heard.get("k2").is_none());
        assert!(heard.get("k3").is_some());
        assert_eq!(heard.forgotten_at(), Some(10_002));
    }

    #[test]
    fn since_is_the_start_of_a_second_before_the_last_one_heard() {
        let heard = Heard::default();
        assert_eq!(heard.history_since(10_300), 8_000);
        assert_eq!(heard.history_since(10_000), 8_000);
        assert_eq!(heard.history_since(500), 0);
        // Forgotten messages are not asked for again...
        let forgot = Heard::from_stored(Vec::new(), Some(9_100));
        assert_eq!(forgot.history_since(10_300), 10_000);
        // ... but the last-heard second always is.
        let burst = Heard::from_stored(Vec::new(), Some(10_200));
        assert_eq!(burst.history_since(10_300), 10_000);
    }

    #[test]
    fn damaged_stored_entries_are_left_out() {
        let ok = HeardMessage {
            key: "sid:1".into(),
            at: 1,
            archive_id: Some("a".into()),
            heard_seq: 0,
        };
        let long = HeardMessage {
            key: "x".repeat(MAX_KEY_BYTES + 1),
            at: 2,
            archive_id: None,
            heard_seq: 0,
        };
        let empty = HeardMessage {
            key: String::new(),
            at: 3,
            archive_id: None,
            heard_seq: 0,
        };
        let heard = Heard::from_stored(vec![ok.clone(), long, empty], None);
        assert_eq!(heard.messages().cloned().collect::<Vec<_>>(), vec![ok]);
    }

    #[test]
    fn only_what_a_room_keeps_in_history_is_remembered() {
        let msg = |inner: &str| {
            el(&format!(
                "<message xmlns='jabber:client' type='groupchat' from='r@muc.example/n'>{inner}</message>"
            ))
        };
        assert!(may_be_replayed(&msg("<body>hi</body>")));
        assert!(may_be_replayed(&msg("<store xmlns='urn:xmpp:hints'/>")));
        assert!(!may_be_replayed(&msg(
            "<body>hi</body><no-store xmlns='urn:xmpp:hints'/>"
        )));
        assert!(!may_be_replayed(&msg(
            "<composing xmlns='http://jabber.org/protocol/chatstates'/>"
        )));
        assert!(!may_be_replayed(&msg("<subject>topic</subject>")));
    }
}
