//! What the account knows about one room from the room's own traffic: who is there, its own
//! presence, the subject and a bounded window of discussion history for late sessions.

use std::collections::{BTreeMap, VecDeque};

use minidom::Element;

use super::time::Millis;
use super::xml;

/// One groupchat message kept for replay, with when it arrived (for `<delay/>` and `seconds`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub stanza: Element,
    pub received: Millis,
    pub bytes: usize,
}

/// Cached room state, filled only by stanzas the room sent to the account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomCache {
    /// Other occupants' current presences by nick, as the room sent them.
    pub occupants: BTreeMap<String, Element>,
    /// The room's latest presence about the account itself (status 110).
    pub self_presence: Option<Element>,
    /// The latest subject message (possibly an empty `<subject/>`).
    pub subject: Option<Element>,
    /// Discussion history, oldest first.
    pub history: VecDeque<HistoryEntry>,
    history_bytes: usize,
}

impl RoomCache {
    /// Records or replaces an occupant's presence. Returns false when the per-room limit
    /// would be exceeded (the presence is still forwarded, just not cached).
    pub fn set_occupant(&mut self, nick: &str, presence: Element, max: usize) -> bool {
        if let Some(slot) = self.occupants.get_mut(nick) {
            *slot = presence;
            return true;
        }
        if self.occupants.len() >= max {
            return false;
        }
        self.occupants.insert(nick.to_owned(), presence);
        true
    }

    pub fn remove_occupant(&mut self, nick: &str) {
        self.occupants.remove(nick);
    }

    /// Appends a message to the history window, evicting the oldest beyond the limits.
    pub fn push_history(
        &mut self,
        stanza: Element,
        received: Millis,
        max_messages: usize,
        max_bytes: usize,
    ) {
        let bytes = xml::serialized_len(&stanza);
        if max_messages == 0 || bytes > max_bytes {
            return;
        }
        self.history_bytes += bytes;
        self.history.push_back(HistoryEntry {
            stanza,
            received,
            bytes,
        });
        while self.history.len() > max_messages || self.history_bytes > max_bytes {
            match self.history.pop_front() {
                Some(old) => self.history_bytes -= old.bytes,
                None => break,
            }
        }
    }

    pub fn history_bytes(&self) -> usize {
        self.history_bytes
    }
}
