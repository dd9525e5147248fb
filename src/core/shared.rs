//! Cached stanzas shared between the accounts of one host.
//!
//! Every account in a room receives the room's presences, subject and messages, and each
//! keeps them for its late sessions. What the room sends them is identical but for the `to`
//! attribute (and, on messages, the `<stanza-id/>` the account's own archive appends). The
//! core therefore keeps each distinct cached stanza once per host, as compact XML text without
//! those parts, and each account's cache holds a reference to it.
//!
//! Sharing is by content (hash-consing), never by assumption: a semi-anonymous room sends
//! moderators presences with real JIDs and others without, and those stay distinct entries.
//! The per-account limits (`minimix_max_occupants`, `minimix_history_max_*`) are still
//! counted per account; sharing only changes where the bytes live.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use jid::FullJid;
use minidom::Element;

use super::muc::NS_DELAY;
use super::xml::{self, Omit};

/// Ids are unique for the whole process, so a table keyed by them (the bridge's Lua stanzas)
/// can never mistake a new entry for an old one, even across cores.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Sweeps start once the interner holds this many entries.
const MIN_SWEEP: usize = 64;

/// One cached stanza, immutable, as compact XML without the per-account parts.
pub struct SharedStanza {
    id: u64,
    xml: Box<str>,
    has_delay: bool,
}

/// A reference to a cached stanza; cloning it is a reference count increment.
#[derive(Clone)]
pub struct Shared(Rc<SharedStanza>);

impl Shared {
    /// Process-wide unique id of this entry (stable while any account holds it).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The stanza as XML, without `to` (and without the account's `<stanza-id/>`).
    pub fn xml(&self) -> &str {
        &self.0.xml
    }

    /// Length of [`Self::xml`] in bytes.
    pub fn len(&self) -> usize {
        self.0.xml.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.xml.is_empty()
    }

    /// Whether the stanza already carries a `<delay/>` (history the room replayed).
    pub fn has_delay(&self) -> bool {
        self.0.has_delay
    }

    /// The stanza as an element, without `to`. The text was written by
    /// [`xml::write_compact`] from a valid element, so it always parses back; should it not,
    /// the error says which entry.
    pub fn element(&self) -> Result<Element, SharedError> {
        self.0.xml.parse::<Element>().map_err(|e| SharedError {
            id: self.0.id,
            reason: e.to_string(),
        })
    }

    /// The stanza addressed to `to`, with `extra` children appended (as the core delivers it).
    pub fn materialize(&self, to: &FullJid, extra: &[Element]) -> Result<Element, SharedError> {
        let mut el = self.element()?;
        xml::set_attr(&mut el, "to", to.as_str());
        for child in extra {
            el.append_child(child.clone());
        }
        Ok(el)
    }

    /// Whether the interner is the only holder left.
    fn is_orphan(&self) -> bool {
        Rc::strong_count(&self.0) <= 1
    }
}

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0) || self.0.xml == other.0.xml
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shared#{}({})", self.0.id, self.0.xml)
    }
}

/// A cached stanza that does not parse back (a bug, reported rather than panicking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedError {
    pub id: u64,
    pub reason: String,
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cached stanza #{} does not parse: {}",
            self.id, self.reason
        )
    }
}

impl std::error::Error for SharedError {}

/// The interner's key: a shared stanza hashed and compared by its text, so that a candidate
/// text (`&str`) finds it without building an entry.
#[derive(Clone)]
struct ByContent(Shared);

impl Hash for ByContent {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.xml().hash(state)
    }
}

impl PartialEq for ByContent {
    fn eq(&self, other: &Self) -> bool {
        self.0.xml() == other.0.xml()
    }
}

impl Eq for ByContent {}

impl Borrow<str> for ByContent {
    fn borrow(&self) -> &str {
        self.0.xml()
    }
}

/// The host's set of cached stanzas. Entries no account holds any more are dropped by an
/// amortised sweep (when the set has doubled since the last one), so the set stays within
/// twice what the accounts' caches hold, plus [`MIN_SWEEP`].
#[derive(Clone, Default)]
pub struct Interner {
    set: HashSet<ByContent>,
    sweep_at: usize,
    /// Ids of entries dropped by sweeps, until [`Interner::take_released`].
    released: Vec<u64>,
    scratch: String,
}

impl fmt::Debug for Interner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interner")
            .field("entries", &self.set.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl Interner {
    /// The shared entry for `el` without what `omit` leaves out: an existing equal one, or a
    /// new one.
    pub fn intern(&mut self, el: &Element, omit: Omit) -> Shared {
        let mut text = std::mem::take(&mut self.scratch);
        text.clear();
        xml::write_compact(el, omit, &mut text);
        let shared = match self.set.get(text.as_str()) {
            Some(found) => found.0.clone(),
            None => {
                self.maybe_sweep();
                let has_delay = el.has_child("delay", NS_DELAY);
                let entry = Shared(Rc::new(SharedStanza {
                    id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                    xml: text.as_str().into(),
                    has_delay,
                }));
                self.set.insert(ByContent(entry.clone()));
                entry
            }
        };
        self.scratch = text;
        shared
    }

    /// Number of distinct stanzas held (including ones no account holds any more, until the
    /// next sweep).
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Bytes of XML text held, each entry counted once.
    pub fn bytes(&self) -> usize {
        self.set.iter().map(|e| e.0.len()).sum()
    }

    /// Ids of entries dropped since the last call (for caches keyed by [`Shared::id`]).
    pub fn take_released(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.released)
    }

    /// Drops every entry no account holds now.
    pub fn sweep(&mut self) {
        let released = &mut self.released;
        self.set.retain(|e| {
            let keep = !e.0.is_orphan();
            if !keep {
                released.push(e.0.id());
            }
            keep
        });
        self.sweep_at = (self.set.len() * 2).max(MIN_SWEEP);
    }

    fn maybe_sweep(&mut self) {
        if self.set.len() >= self.sweep_at.max(MIN_SWEEP) {
            self.sweep();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn equal_stanzas_to_different_accounts_share_one_entry() {
        let mut i = Interner::default();
        let omit = Omit {
            to: true,
            last_node: false,
        };
        let a = i.intern(
            &el("<presence xmlns='jabber:client' from='r@m/n' to='a@h'><x xmlns='http://jabber.org/protocol/muc#user'><item role='participant'/></x></presence>"),
            omit,
        );
        let b = i.intern(
            &el("<presence xmlns='jabber:client' to='b@h' from='r@m/n'><x xmlns='http://jabber.org/protocol/muc#user'><item role='participant'/></x></presence>"),
            omit,
        );
        assert_eq!(a.id(), b.id());
        assert_eq!(i.len(), 1);
        assert!(!a.xml().contains("to="));
        // A moderator's view (with the real JID) is another entry.
        let c = i.intern(
            &el("<presence xmlns='jabber:client' from='r@m/n' to='c@h'><x xmlns='http://jabber.org/protocol/muc#user'><item role='participant' jid='n@h/x'/></x></presence>"),
            omit,
        );
        assert_ne!(a.id(), c.id());
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn sweeps_drop_what_no_account_holds_and_report_it() {
        let mut i = Interner::default();
        let kept = i.intern(&el("<m xmlns='x'>kept</m>"), Omit::default());
        let mut dropped = Vec::new();
        for n in 0..MIN_SWEEP * 3 {
            dropped.push(
                i.intern(&el(&format!("<m xmlns='x'>{n}</m>")), Omit::default())
                    .id(),
            );
        }
        // Nothing but `kept` is held: the set never grows past the sweep threshold.
        assert!(i.len() <= MIN_SWEEP + 1, "{}", i.len());
        let released = i.take_released();
        assert!(!released.is_empty());
        assert!(released.iter().all(|id| dropped.contains(id)));
        i.sweep();
        assert_eq!(i.len(), 1);
        assert_eq!(
            i.intern(&el("<m xmlns='x'>kept</m>"), Omit::default()).id(),
            kept.id()
        );
    }

    #[test]
    fn materialize_addresses_and_appends() {
        let mut i = Interner::default();
        let s = i.intern(
            &el("<message xmlns='jabber:client' type='groupchat' to='a@h' from='r@m/n'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='a@h' id='1'/></message>"),
            Omit {
                to: true,
                last_node: true,
            },
        );
        assert!(!s.xml().contains("stanza-id"));
        let to: FullJid = "a@h/phone".parse().unwrap();
        let m = s
            .materialize(&to, &[el("<delay xmlns='urn:xmpp:delay' stamp='x'/>")])
            .unwrap();
        assert_eq!(m.attr("to"), Some("a@h/phone"));
        assert!(m.has_child("delay", NS_DELAY));
        assert_eq!(m.get_child("body", "jabber:client").unwrap().text(), "hi");
    }
}
