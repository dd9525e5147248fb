//! What the account knows about one room from the room's own traffic: who is there, its own
//! presence, the subject and a bounded window of discussion history for late sessions.
//!
//! The stanzas themselves live once per host in the [`Interner`] (other accounts in the same
//! room hold the same ones); an account's cache holds references plus what is its own: the
//! nick index, the history's arrival times, its archive ids and byte counts. Limits are kept
//! per account, exactly as if every account held its own copies.

use std::collections::{BTreeMap, VecDeque};

use jid::{BareJid, FullJid};
use minidom::{Element, Node};

use super::archive::NS_SID;
use super::heard::HeardMessage;
use super::muc::NS_DELAY;
use super::shared::{Interner, Shared};
use super::time::{self, Millis};
use super::xml::{self, Omit};

/// One groupchat message kept for replay.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The message as the room sent it, without `to` and without the account's archive id.
    pub stanza: Shared,
    /// The id the account's archive gave it (its trailing `<stanza-id by=account/>`), if any.
    pub archive_id: Option<Box<str>>,
    /// When it was sent: the room's `<delay/>` stamp, else when it arrived.
    pub received: Millis,
    /// Its size as replayed to the account (with `to`, the archive id and the `<delay/>`),
    /// counted against `minimix_history_max_bytes` and a request's `maxchars`.
    pub bytes: usize,
    /// For a message kept as it arrived live: the cache's arrival count then (see
    /// `RoomCache::arrivals`; clocks cannot order what arrives within one millisecond); 0 for
    /// history.
    pub arrival: u64,
}

impl HistoryEntry {
    /// What a replay appends to the shared part for `account`: its archive id, then the
    /// `<delay/>` stamped when the message arrived live (in that order, as they arrived).
    pub fn extra(&self, account: &BareJid, room: &BareJid) -> Vec<Element> {
        let mut extra = Vec::new();
        if let Some(id) = &self.archive_id {
            extra.push(xml::element(
                "stanza-id",
                NS_SID,
                &[("by", account.as_str()), ("id", id)],
            ));
        }
        if !self.stanza.has_delay() {
            extra.push(xml::element(
                "delay",
                NS_DELAY,
                &[
                    ("from", room.as_str()),
                    ("stamp", &time::format_datetime(self.received)),
                ],
            ));
        }
        extra
    }

    /// The account archive's id of this message, wherever it sits in the stanza.
    pub fn archive_id_for(&self, account: &BareJid) -> Option<String> {
        if let Some(id) = &self.archive_id {
            return Some(id.to_string());
        }
        let el = self.stanza.element().ok()?;
        super::archive::archive_id(&el, account).map(str::to_owned)
    }

    /// The message as a session `to` gets it in a replay.
    pub fn materialize(&self, to: &FullJid, room: &BareJid) -> Option<Element> {
        self.stanza
            .materialize(to, &self.extra(&to.to_bare(), room))
            .ok()
    }
}

/// Cached room state, filled only by stanzas the room sent to the account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomCache {
    /// Other occupants' current presences by nick, as the room sent them (without `to`).
    pub occupants: BTreeMap<String, Shared>,
    /// The room's latest presence about the account itself (status 110), without `to`.
    pub self_presence: Option<Shared>,
    /// The latest subject message (possibly an empty `<subject/>`), without `to`.
    pub subject: Option<Shared>,
    /// Discussion history, oldest first.
    pub history: VecDeque<HistoryEntry>,
    history_bytes: usize,
    /// The room's replays of messages the account heard may refill the history: only while
    /// the answer to a rejoin sent with an empty history arrives (after a restart). Otherwise
    /// a replayed message the history does not hold is older than all it holds, and is not
    /// kept (it would come back out of order).
    pub replays_refill: bool,
    /// Where the next message of the room's history replay in progress goes: just after the
    /// previous one (kept or recognised), so a replay keeps the room's order even where it
    /// interleaves with what the history already holds. Reset by each join's self-presence
    /// and subject (the replay comes between them).
    replay_at: Option<usize>,
    /// The entries the replay in progress put in since it last came to one the history held
    /// already (`start..end`): the room replays oldest first, so they belong before that next
    /// one (a room answering a second join of the account with more history than the first).
    replay_run: Option<(usize, usize)>,
    /// How many live messages this cache took in: a join sent when it was `n` is answered
    /// with history that goes before those kept after (`arrival > n`).
    arrivals: u64,
}

/// What the history buffer may hold (`minimix_history_max_messages` / `_max_bytes`), and
/// whether late sessions get what is older from the archive (`minimix_history_from_archive`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub messages: usize,
    pub bytes: usize,
    pub archive_behind: bool,
}

impl Limits {
    /// How many unheard history messages an answer may bring before the room's order places
    /// them (held in a rejoin's window, or noted to be taken out of the archive): the
    /// history limit, and at least as many as the heard memory keeps.
    pub fn unplaced(&self) -> usize {
        self.messages.max(super::heard::HEARD_KEPT)
    }
}

/// Only `to` differs between the accounts receiving one presence or subject.
const WITHOUT_TO: Omit = Omit {
    to: true,
    last_node: false,
};

impl RoomCache {
    /// Records or replaces an occupant's presence. Returns false when the per-room limit
    /// would be exceeded (the presence is still forwarded, just not cached).
    pub fn set_occupant(
        &mut self,
        shared: &mut Interner,
        nick: &str,
        presence: &Element,
        max: usize,
    ) -> bool {
        if let Some(slot) = self.occupants.get_mut(nick) {
            *slot = shared.intern(presence, WITHOUT_TO);
            return true;
        }
        if self.occupants.len() >= max {
            return false;
        }
        let entry = shared.intern(presence, WITHOUT_TO);
        self.occupants.insert(nick.to_owned(), entry);
        true
    }

    pub fn remove_occupant(&mut self, nick: &str) {
        self.occupants.remove(nick);
    }

    /// Records the room's latest presence about the account itself.
    pub fn set_self_presence(&mut self, shared: &mut Interner, presence: &Element) {
        self.self_presence = Some(shared.intern(presence, WITHOUT_TO));
        self.replay_at = None;
        self.replay_run = None;
    }

    /// Records the room's latest subject message.
    pub fn set_subject(&mut self, shared: &mut Interner, subject: &Element) {
        self.subject = Some(shared.intern(subject, WITHOUT_TO));
        self.replay_at = None;
        self.replay_run = None;
    }

    /// Appends a message to the history window, evicting the oldest beyond the limits. Its
    /// `<delay/>` (when the room did not stamp one) is added at replay, from `now`. History
    /// the account never heard goes after what it holds (a message the room replays later in
    /// the same answer and the buffer holds pulls it back before that one): in a (re)join's
    /// answer, unheard history is newer than what arrived live before the answer (a room that
    /// still had the account would replay those too, and they would place it).
    pub fn push_history(
        &mut self,
        shared: &mut Interner,
        stanza: &Element,
        room: &BareJid,
        now: Millis,
        limits: Limits,
    ) {
        if limits.messages == 0 {
            return;
        }
        let to = stanza.attr("to");
        let archive_id = to.and_then(|account| trailing_archive_id(stanza, account));
        let entry = shared.intern(
            stanza,
            Omit {
                to: true,
                last_node: archive_id.is_some(),
            },
        );
        // A room replays the same history to every join of the account (a rejoin, a late
        // answer to an earlier join): each message is kept once, whether it was kept live
        // (no `<delay/>`; one is added at replay) or from an earlier replay.
        if entry.has_delay() {
            if let Some(kept) = self.kept_at(stanza, &entry, archive_id.is_some()) {
                self.replay_found(kept);
                return;
            }
        }
        let received = if entry.has_delay() {
            stanza
                .get_child("delay", NS_DELAY)
                .and_then(|d| d.attr("stamp"))
                .and_then(time::parse_datetime)
                .unwrap_or(now)
        } else {
            now
        };
        let bytes = replayed_len(&entry, to, archive_id, room);
        let has_delay = entry.has_delay();
        if !has_delay {
            self.arrivals += 1;
        }
        let entry = HistoryEntry {
            stanza: entry,
            archive_id: archive_id.map(Into::into),
            received,
            bytes,
            arrival: if has_delay { 0 } else { self.arrivals },
        };
        if has_delay {
            self.insert_replayed(entry, None, limits);
        } else {
            let at = self.history.len();
            self.insert(at, entry, limits);
        }
    }

    /// How many live messages this cache took in so far (a join sent now notes it).
    pub fn arrivals(&self) -> u64 {
        self.arrivals
    }

    /// Where a replay goes when nothing placed it yet: before the first message that arrived
    /// live after the arrival count `before` (delayed entries count 0), else at the end.
    fn before_live_since(&self, before: Option<u64>) -> usize {
        before
            .and_then(|sent| self.history.iter().position(|h| h.arrival > sent))
            .unwrap_or(self.history.len())
    }

    /// Keeps the room's replay of a message the account heard before (see `heard`), once:
    /// only while replays refill the history (see `replays_refill`: after a restart, in the
    /// room's order) and not when the history holds it already. It keeps the archive id and
    /// arrival time it had, as if it had never left; heard before the (re)join was sent (when
    /// the cache's arrival count was `before`), it goes before what arrived live since.
    #[allow(clippy::too_many_arguments)]
    pub fn push_replay(
        &mut self,
        shared: &mut Interner,
        stanza: &Element,
        room: &BareJid,
        heard: &HeardMessage,
        before: Option<u64>,
        limits: Limits,
    ) {
        if limits.messages == 0 {
            return;
        }
        let entry = shared.intern(stanza, WITHOUT_TO);
        let same_archive_id = heard.archive_id.as_deref().and_then(|id| {
            self.history
                .iter()
                .position(|h| h.archive_id.as_deref() == Some(id))
        });
        if let Some(kept) = same_archive_id.or_else(|| self.kept_at(stanza, &entry, false)) {
            self.replay_found(kept);
            return;
        }
        if !self.replays_refill {
            return;
        }
        let archive_id = heard.archive_id.as_deref();
        let bytes = replayed_len(&entry, stanza.attr("to"), archive_id, room);
        self.insert_replayed(
            HistoryEntry {
                stanza: entry,
                archive_id: archive_id.map(Into::into),
                received: heard.at,
                bytes,
                arrival: 0,
            },
            before,
            limits,
        );
    }

    /// Puts a message of the room's history replay just after the replay's previous one (or,
    /// for its first, before what arrived live since the join was sent), and moves the cursor.
    fn insert_replayed(&mut self, entry: HistoryEntry, before: Option<u64>, limits: Limits) {
        let at = self
            .replay_at
            .unwrap_or_else(|| self.before_live_since(before));
        let put = self.insert(at, entry, limits);
        self.replay_run = match (self.replay_run, put) {
            (Some((s, e)), Some(i)) if e == i => Some((s, i + 1)),
            (_, Some(i)) => Some((i, i + 1)),
            (run, None) => run,
        };
        // Not kept (evicted at once, or too big: everything older went too), the next goes
        // first.
        self.replay_at = Some(put.map_or(0, |i| i + 1));
    }

    /// The replay in progress came to a message the history holds at `kept`: what it put in
    /// just before, after `kept`, moves before it (the room's order), and the replay goes on
    /// after it.
    fn replay_found(&mut self, kept: usize) {
        if let Some((start, end)) = self.replay_run.take() {
            if start > kept && end <= self.history.len() {
                let moved: Vec<HistoryEntry> = self.history.drain(start..end).collect();
                let n = moved.len();
                for (i, entry) in moved.into_iter().enumerate() {
                    self.history.insert(kept + i, entry);
                }
                self.replay_at = Some(kept + n + 1);
                return;
            }
        }
        self.replay_at = Some(kept + 1);
    }

    /// Puts an entry at position `at`, evicting the oldest beyond the limits. Returns where
    /// it is afterwards (`None`: too big, or evicted at once). With the archive behind it,
    /// the history stays the newest part of the room's without a gap: an entry too big to
    /// keep takes everything older with it (a late session gets all that from the archive,
    /// which has the big one too).
    fn insert(&mut self, at: usize, entry: HistoryEntry, limits: Limits) -> Option<usize> {
        let at = at.min(self.history.len());
        let mut evicted = 0;
        if entry.bytes > limits.bytes {
            if !limits.archive_behind {
                return None;
            }
            for old in self.history.drain(..at) {
                self.history_bytes -= old.bytes;
                evicted += 1;
            }
            self.shift_replay_run(evicted);
            return None;
        }
        self.history_bytes += entry.bytes;
        self.history.insert(at, entry);
        while self.history.len() > limits.messages || self.history_bytes > limits.bytes {
            match self.history.pop_front() {
                Some(old) => {
                    self.history_bytes -= old.bytes;
                    evicted += 1;
                }
                None => break,
            }
        }
        self.shift_replay_run(evicted);
        at.checked_sub(evicted)
    }

    /// The replay's run moves down with what was evicted before it.
    fn shift_replay_run(&mut self, evicted: usize) {
        self.replay_run = self
            .replay_run
            .map(|(s, e)| (s.saturating_sub(evicted), e.saturating_sub(evicted)));
    }

    /// Where the history holds `entry` (a delayed message) already, as it is or as it was
    /// kept when it arrived live (without its `<delay/>`).
    fn kept_at(&self, stanza: &Element, entry: &Shared, last_node: bool) -> Option<usize> {
        if let Some(i) = self.history.iter().position(|h| h.stanza == *entry) {
            return Some(i);
        }
        let mut live = stanza.clone();
        xml::remove_children(&mut live, "delay", NS_DELAY);
        let mut text = String::new();
        xml::write_compact(
            &live,
            Omit {
                to: true,
                last_node,
            },
            &mut text,
        );
        self.history.iter().position(|h| h.stanza.xml() == text)
    }

    pub fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    /// The account's archive no longer holds the message with this id (taken back out):
    /// replays of it no longer carry the id.
    pub fn forget_archive_id(&mut self, account: &BareJid, id: &str) {
        for entry in self.history.iter_mut() {
            if entry.archive_id.as_deref() == Some(id) {
                entry.archive_id = None;
                let less = archive_id_len(account.as_str(), id).min(entry.bytes);
                entry.bytes -= less;
                self.history_bytes -= less;
            }
        }
    }
}

/// The id of the account archive's `<stanza-id by=account id=…/>` when it is the stanza's
/// last node and has exactly that shape (mod_mam appends it to each account's copy); only
/// then is it kept apart from the shared part.
fn trailing_archive_id<'a>(stanza: &'a Element, account: &str) -> Option<&'a str> {
    let Some(Node::Element(last)) = stanza.nodes().last() else {
        return None;
    };
    if !last.is("stanza-id", NS_SID)
        || last.attrs().len() != 2
        || last.attr("by") != Some(account)
        || last.nodes().next().is_some()
    {
        return None;
    }
    last.attr("id")
}

/// The length of the account archive's `<stanza-id/>` as [`xml::write_compact`] writes it.
fn archive_id_len(account: &str, id: &str) -> usize {
    "<stanza-id".len()
        + attr_len("xmlns", NS_SID)
        + attr_len("by", account)
        + attr_len("id", id)
        + "/>".len()
}

/// The length of ` name='value'` as [`xml::write_compact`] writes it.
fn attr_len(name: &str, value: &str) -> usize {
    1 + name.len() + 2 + xml::escaped_attr_len(value) + 1
}

/// The length of a history entry as replayed: the shared text, plus ` to='…'`, the archive
/// id and the `<delay/>`, each as [`xml::write_compact`] writes them.
fn replayed_len(
    entry: &Shared,
    to: Option<&str>,
    archive_id: Option<&str>,
    room: &BareJid,
) -> usize {
    let mut len = entry.len();
    if let Some(to) = to {
        len += attr_len("to", to);
    }
    if let (Some(id), Some(account)) = (archive_id, to) {
        len += archive_id_len(account, id);
    }
    if !entry.has_delay() {
        len += "<delay".len()
            + attr_len("xmlns", NS_DELAY)
            + attr_len("from", room.as_str())
            + attr_len("stamp", "2000-01-01T00:00:00Z")
            + "/>".len();
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(messages: usize) -> Limits {
        Limits {
            messages,
            bytes: 10_000,
            archive_behind: true,
        }
    }

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    /// The byte count is exactly the replayed stanza's length as the compact writer writes it.
    #[test]
    fn history_bytes_are_the_replayed_length() {
        let room: BareJid = "r@muc.h".parse().unwrap();
        let mut shared = Interner::default();
        let mut cache = RoomCache::default();
        let msg = el("<message xmlns='jabber:client' type='groupchat' from='r@muc.h/n' to='a@h' id='x&amp;1'>\
             <body>hi &lt;there&gt;</body><stanza-id xmlns='urn:xmpp:sid:0' by='a@h' id='arch-1'/></message>");
        cache.push_history(&mut shared, &msg, &room, 1_700_000_000_000, limits(10));
        let entry = &cache.history[0];
        assert_eq!(entry.archive_id.as_deref(), Some("arch-1"));
        let to: FullJid = "a@h"
            .parse::<BareJid>()
            .unwrap()
            .with_resource_str("r")
            .unwrap();
        let replayed = entry.materialize(&to, &room).unwrap();
        let mut text = String::new();
        xml::write_compact(&replayed, Omit::default(), &mut text);
        // The replay is addressed to the session, the count to the account ("a@h").
        assert_eq!(entry.bytes + "/r".len(), text.len(), "{text}");
        assert_eq!(cache.history_bytes(), entry.bytes);
        // The archive id and the delay come back in the order they arrived.
        let names: Vec<&str> = replayed.children().map(|c| c.name()).collect();
        assert_eq!(names, ["body", "stanza-id", "delay"]);
    }

    #[test]
    fn two_accounts_share_one_entry_but_keep_their_archive_ids() {
        let room: BareJid = "r@muc.h".parse().unwrap();
        let mut shared = Interner::default();
        let (mut a, mut b) = (RoomCache::default(), RoomCache::default());
        for (cache, account) in [(&mut a, "a@h"), (&mut b, "b@h")] {
            let msg = el(&format!("<message xmlns='jabber:client' type='groupchat' from='r@muc.h/n' to='{account}'>\
                 <body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='{account}' id='{account}-1'/></message>"));
            cache.push_history(&mut shared, &msg, &room, 1_700_000_000_000, limits(10));
        }
        assert_eq!(shared.len(), 1);
        assert_eq!(a.history[0].stanza.id(), b.history[0].stanza.id());
        assert_eq!(b.history[0].archive_id.as_deref(), Some("b@h-1"));
    }

    #[test]
    fn limits_stay_per_account() {
        let room: BareJid = "r@muc.h".parse().unwrap();
        let mut shared = Interner::default();
        let mut cache = RoomCache::default();
        for i in 0..10 {
            let msg = el(&format!("<message xmlns='jabber:client' type='groupchat' from='r@muc.h/n' to='a@h'><body>{i}</body></message>"));
            cache.push_history(&mut shared, &msg, &room, 1, limits(3));
        }
        assert_eq!(cache.history.len(), 3);
        assert_eq!(
            cache.history.iter().map(|h| h.bytes).sum::<usize>(),
            cache.history_bytes()
        );
        let p = el("<presence xmlns='jabber:client' from='r@muc.h/x' to='a@h'/>");
        assert!(cache.set_occupant(&mut shared, "x", &p, 1));
        assert!(!cache.set_occupant(&mut shared, "y", &p, 1));
        assert!(cache.set_occupant(&mut shared, "x", &p, 1));
    }

    /// A second answer replays an older message, then one the buffer holds: the older one
    /// goes before it, also when the limit evicts the oldest meanwhile.
    #[test]
    fn a_replay_puts_what_it_brought_before_a_message_the_buffer_holds() {
        let room: BareJid = "r@muc.h".parse().unwrap();
        let msg = |n: u32| {
            el(&format!("<message xmlns='jabber:client' type='groupchat' from='r@muc.h/n' to='a@h'>\
                 <body>m{n}</body><delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/></message>"))
        };
        let bodies = |c: &RoomCache| -> Vec<String> {
            c.history
                .iter()
                .map(|h| {
                    h.stanza
                        .element()
                        .unwrap()
                        .get_child("body", "jabber:client")
                        .unwrap()
                        .text()
                })
                .collect()
        };
        for max in [10, 3] {
            let mut shared = Interner::default();
            let mut cache = RoomCache::default();
            // First answer: m0, then m3.
            for n in [0, 3] {
                cache.push_history(&mut shared, &msg(n), &room, 1_000, limits(max));
            }
            cache.set_subject(&mut shared, &msg(9));
            // Second answer: m1 and m2 (new), then m3 again.
            for n in [1, 2, 3] {
                cache.push_history(&mut shared, &msg(n), &room, 2_000, limits(max));
            }
            let expected: Vec<String> = ["m0", "m1", "m2", "m3"]
                .iter()
                .skip(4 - max.min(4))
                .map(|s| s.to_string())
                .collect();
            assert_eq!(bodies(&cache), expected, "limit {max}");
        }
    }

    /// A message too big for the buffer leaves no gap: with the archive behind the buffer,
    /// what is older goes too (a late session gets all of it from the archive, in order);
    /// without, the buffer keeps what it has.
    #[test]
    fn a_message_too_big_to_keep_takes_the_older_ones_along_when_the_archive_is_behind() {
        let room: BareJid = "r@muc.h".parse().unwrap();
        let msg = |body: &str| {
            el(&format!(
                "<message xmlns='jabber:client' type='groupchat' from='r@muc.h/n' to='a@h'>\
                 <body>{body}</body></message>"
            ))
        };
        for (archive_behind, kept) in [(true, 1), (false, 3)] {
            let limits = Limits {
                messages: 10,
                bytes: 1_000,
                archive_behind,
            };
            let mut shared = Interner::default();
            let mut cache = RoomCache::default();
            for body in ["a", "b", &"x".repeat(1_000), "c"] {
                cache.push_history(&mut shared, &msg(body), &room, 1_000, limits);
            }
            assert_eq!(
                cache.history.len(),
                kept,
                "archive behind: {archive_behind}"
            );
            let sum: usize = cache.history.iter().map(|h| h.bytes).sum();
            assert_eq!(cache.history_bytes(), sum);
        }
    }
}
