//! What the core asks Prosody to do. The shim applies actions in order.

use jid::{BareJid, FullJid};
use minidom::Element;

use super::shared::Shared;
use super::time::Millis;

/// Whether the hook consumed the stanza (`return true`) or lets Prosody go on (`return nil`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Handled,
    Pass,
}

/// One thing for the shim to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this stanza, already addressed to `to`, to that live session (`session.send`).
    Deliver { to: FullJid, stanza: Element },
    /// Send this cached stanza to session `to`: the shared part (which has no `to`) addressed
    /// to it, with `extra` children appended. The bridge keeps one Lua table per shared part,
    /// so replaying a room to a late session builds nothing but the extras.
    DeliverShared {
        to: FullJid,
        stanza: Shared,
        extra: Vec<Element>,
    },
    /// Send the stanza that came with the input, unchanged but re-addressed to `to`.
    /// Cheaper than `Deliver`: no re-encoding, and unknown payloads stay byte-for-byte.
    Forward { to: FullJid },
    /// Route the stanza that came with the input, unchanged but for `from` (the account) and,
    /// when given, the `id` the core assigned: cheaper than `Route`, and payloads pass as sent.
    RouteInput { from: BareJid, id: Option<String> },
    /// Send this XEP-0280 carbon to session `to`, but only if that session enabled carbons.
    Carbon { to: FullJid, stanza: Element },
    /// Route this stanza from the account (`module:send`); its `from` is the account's bare JID.
    Route { stanza: Element },
    /// Ask the account's archive (mod_mam) for up to `limit` groupchat messages from `room`
    /// archived before the message `before_id` (the oldest the buffer replays), else when
    /// that id is not given or not found, sent before `before`; and not before `since`. Hand
    /// them, newest first, to `Minimix::archived_history` for session `to`; its deliveries go
    /// right here, between the replayed presences and the buffered history. (By id, because
    /// messages arriving in the same second cannot be told apart by time.)
    FetchHistory {
        to: FullJid,
        room: BareJid,
        before_id: Option<String>,
        before: Option<Millis>,
        since: Option<Millis>,
        limit: usize,
    },
    /// Take the message with this id back out of the account's archive: mod_mam stored it as
    /// it arrived, and the room's order then showed it was the replay of a message from
    /// before the account's membership, or one the archive already holds (see
    /// `rejoin_window`).
    Unarchive { account: BareJid, id: String },
    /// Publish this `<conference/>` as the account's bookmark of `room` (XEP-0402).
    PublishBookmark {
        account: BareJid,
        room: BareJid,
        conference: Element,
    },
    /// The durable state of this account changed; the shim saves `persisted_state(account)`.
    Persist { account: BareJid },
}

/// The result of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub actions: Vec<Action>,
}

impl Outcome {
    pub fn pass() -> Self {
        Self {
            verdict: Verdict::Pass,
            actions: Vec::new(),
        }
    }

    /// Lets Prosody go on, but still applies `actions` (e.g. on `resource-unbind`).
    pub fn pass_with(actions: Vec<Action>) -> Self {
        Self {
            verdict: Verdict::Pass,
            actions,
        }
    }

    pub fn handled(actions: Vec<Action>) -> Self {
        Self {
            verdict: Verdict::Handled,
            actions,
        }
    }
}
