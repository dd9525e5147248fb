//! What happens in Prosody, as the core hears of it. Each variant names the hook it comes from.

use jid::{BareJid, FullJid};
use minidom::Element;

/// One event for [`super::Minimix::handle`].
#[derive(Debug, Clone)]
pub enum Input {
    /// A bound session sent a presence with a `to` (`pre-presence/full`, `pre-presence/bare`).
    ClientPresence { session: FullJid, stanza: Element },
    /// A bound session sent a message (`pre-message/full`, `pre-message/bare`).
    ClientMessage { session: FullJid, stanza: Element },
    /// A bound session sent an iq (`pre-iq/full`, `pre-iq/bare`).
    ClientIq { session: FullJid, stanza: Element },
    /// A presence addressed to the account's bare JID (`presence/bare`).
    RoomPresence { account: BareJid, stanza: Element },
    /// A message addressed to the account's bare JID (`message/bare`, after mod_mam).
    RoomMessage { account: BareJid, stanza: Element },
    /// An iq addressed to the account's bare JID (`iq/bare`).
    RoomIq { account: BareJid, stanza: Element },
    /// A session is gone for good (`resource-unbind`; not hibernation, not shutdown).
    SessionClosed { session: FullJid },
    /// A XEP-0402 bookmark was published, or found at start (`<conference/>` payload).
    BookmarkPublished {
        account: BareJid,
        room: BareJid,
        conference: Element,
    },
    /// A bookmark was retracted (or its node purged or deleted).
    BookmarkRetracted { account: BareJid, room: BareJid },
}

impl Input {
    /// The account the input is about.
    pub fn account(&self) -> BareJid {
        match self {
            Self::ClientPresence { session, .. }
            | Self::ClientMessage { session, .. }
            | Self::ClientIq { session, .. }
            | Self::SessionClosed { session } => session.to_bare(),
            Self::RoomPresence { account, .. }
            | Self::RoomMessage { account, .. }
            | Self::RoomIq { account, .. }
            | Self::BookmarkPublished { account, .. }
            | Self::BookmarkRetracted { account, .. } => account.clone(),
        }
    }
}
