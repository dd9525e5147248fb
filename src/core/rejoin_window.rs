//! What a rejoin's history holds back until the room's order tells whether it was missed.
//!
//! A rejoin asks for history from a little before the last message heard (see `heard`), so
//! the room may replay messages the account never heard that it did not miss either: sent
//! just before the account joined (which asked for no history), in the same seconds. Their
//! stamps cannot tell them from what the room sent after it dropped the account, but their
//! place can: a room replays its history oldest first, and the account heard everything the
//! room sent it from its join until the room dropped it. So an unheard message the room
//! replays *before* its replay of a message the account heard was not missed; one after the
//! last heard was. The rejoin holds each unheard replay until the room tells:
//!
//! - a replay of a heard message follows: what is held came before it. It is dropped, and
//!   taken back out of the account's archive (mod_mam stored it as it arrived, before the
//!   core saw it), so the archive keeps the room's order;
//! - the history ends (the subject, or a live message): what is held was missed. It is
//!   released in order, like any message heard then, except to a session that already got it
//!   from the archive (a message from before this membership) — and then the archive's new
//!   copy of it is taken back out.
//!
//! The window is open from a rejoin that asks for `<history since=…/>` until the room's
//! subject ends its answer; a new join empties it.

use std::collections::VecDeque;

use minidom::Element;

/// One unheard message of a rejoin's history, held until its place is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub stanza: Element,
    /// Its replay key (see `heard::replay_key`).
    pub key: String,
    /// The id the account's archive gave it as it arrived, if it was archived.
    pub archive_id: Option<String>,
}

/// The rejoin's window: whether one is open, and what it holds, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RejoinWindow {
    open: bool,
    held: VecDeque<Held>,
}

impl RejoinWindow {
    /// A rejoin asking for history since a moment before the last message heard was sent.
    pub fn open() -> Self {
        Self {
            open: true,
            held: VecDeque::new(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn held(&self) -> impl Iterator<Item = &Held> {
        self.held.iter()
    }

    /// Holds an unheard replay. At most `max` are held (`minimix_history_max_messages`, and
    /// at least as many as the heard memory keeps): the oldest beyond is returned, to be
    /// released as missed (a room replaying more unheard messages than that before one it
    /// heard is one whose clock is far off).
    pub fn hold(&mut self, held: Held, max: usize) -> Option<Held> {
        self.held.push_back(held);
        if self.held.len() > max.max(1) {
            self.held.pop_front()
        } else {
            None
        }
    }

    /// The room replayed a message the account heard: everything held came before it.
    pub fn not_missed(&mut self) -> Vec<Held> {
        self.held.drain(..).collect()
    }

    /// The history is over (or a live message came): everything held was missed, oldest
    /// first. With `close`, the window closes too (the subject ends the rejoin).
    pub fn missed(&mut self, close: bool) -> Vec<Held> {
        if close {
            self.open = false;
        }
        self.held.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::el;

    fn held(n: u32) -> Held {
        Held {
            stanza: el(&format!("<message xmlns='jabber:client' id='m{n}'/>")),
            key: format!("k{n}"),
            archive_id: None,
        }
    }

    #[test]
    fn a_closed_window_holds_nothing_until_a_rejoin_opens_it() {
        assert!(!RejoinWindow::default().is_open());
        assert!(RejoinWindow::open().is_open());
    }

    #[test]
    fn the_oldest_beyond_the_limit_comes_back_to_be_released() {
        let mut w = RejoinWindow::open();
        assert_eq!(w.hold(held(1), 2), None);
        assert_eq!(w.hold(held(2), 2), None);
        assert_eq!(w.hold(held(3), 2), Some(held(1)));
        let keys: Vec<_> = w.held().map(|h| h.key.clone()).collect();
        assert_eq!(keys, ["k2", "k3"]);
    }

    #[test]
    fn what_is_held_is_either_not_missed_or_missed_in_order() {
        let mut w = RejoinWindow::open();
        let _ = w.hold(held(1), 10);
        assert_eq!(w.not_missed(), vec![held(1)]);
        assert!(w.is_open());
        let _ = w.hold(held(2), 10);
        let _ = w.hold(held(3), 10);
        assert_eq!(w.missed(false), vec![held(2), held(3)]);
        assert!(w.is_open());
        assert_eq!(w.missed(true), Vec::new());
        assert!(!w.is_open());
    }
}
