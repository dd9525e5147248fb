//! Push notifications (XEP-0357) for groupchat. A room message reaches the account's bare
//! JID, is claimed and forked to the joined sessions, so Prosody's push module
//! (mod_cloud_notify) never sees it as it would see an offline message. With no session
//! joined to the room, the shim hands a message to the push path when
//! [`Minimix::push_without_sessions`] says so; every push mod_cloud_notify is about to send
//! for a room's groupchat (from a hibernating session's queue, or for a message mod_mam
//! archived) is checked by [`Minimix::push_verdict`], so the account's devices get one push
//! per message that concerns them (a mention of its nick, by default) and no flood.

use jid::{BareJid, Jid};
use minidom::Element;

use super::account::{Join, Phase};
use super::muc::{self, NS_CLIENT, NS_DELAY};
use super::Minimix;

/// XEP-0372: references (a `mention` of an account or an occupant).
pub const NS_REFERENCE: &str = "urn:xmpp:reference:0";

/// `minimix_push`: which groupchat messages notify the account's push services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMode {
    /// None (`"none"`).
    None,
    /// Messages that mention the account's nick in the room, or reference the account or
    /// its occupant JID (XEP-0372) (`"mentions"`, the default).
    Mentions,
    /// Every message with a body (`"all"`).
    All,
}

impl PushMode {
    /// The option's value, or `None` for an unknown one.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Self::None),
            "mentions" => Some(Self::Mentions),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}

/// Which of mod_cloud_notify's ways is about to push a groupchat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushPath {
    /// The shim handed the message over because no session is joined to the room.
    NoSessionJoined,
    /// The copy forked to a joined session that hibernates (XEP-0198) or is slow to ack
    /// (the stanza is addressed to that session's full JID).
    SessionQueue,
    /// mod_mam stored the message and mod_cloud_notify notifies the devices without a live
    /// session (addressed to the bare JID, not handed over by the shim).
    Archive,
}

impl PushPath {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "no_session_joined" => Some(Self::NoSessionJoined),
            "session_queue" => Some(Self::SessionQueue),
            "archive" => Some(Self::Archive),
            _ => None,
        }
    }
}

/// What to do with a push mod_cloud_notify is about to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushVerdict {
    /// Not a groupchat message from one of the account's rooms: not the module's business.
    NotOurs,
    /// Send it.
    Allow,
    /// Drop it, for this reason (logged by mod_cloud_notify).
    Block(&'static str),
}

impl Minimix {
    /// The cheap part of [`Self::push_without_sessions`], asked before converting a stanza:
    /// pushes are on, the account is in the room and none of its sessions is joined there.
    pub fn push_candidate(&self, account: &BareJid, room: &BareJid) -> bool {
        self.config.push != PushMode::None
            && self
                .join(account, room)
                .is_some_and(|j| j.phase == Phase::Joined && j.members.is_empty())
    }

    /// Whether this groupchat message, arriving for the account while none of its sessions is
    /// joined to the room, goes to the push path.
    pub fn push_without_sessions(&self, account: &BareJid, stanza: &Element) -> bool {
        let Some(room) = room_of(stanza) else {
            return false;
        };
        if !self.push_candidate(account, &room) {
            return false;
        }
        self.join(account, &room)
            .is_some_and(|join| notifies(self.config.push, account, &room, join, stanza))
    }

    /// Whether mod_cloud_notify may send its push for `stanza` to one of the account's push
    /// services; `service_live`: a connected, non-hibernating session uses that service.
    pub fn push_verdict(
        &self,
        account: &BareJid,
        stanza: &Element,
        path: PushPath,
        service_live: bool,
    ) -> PushVerdict {
        if muc::stanza_type(stanza) != Some("groupchat") {
            return PushVerdict::NotOurs;
        }
        let Some(room) = room_of(stanza) else {
            return PushVerdict::NotOurs;
        };
        let Some(join) = self.join(account, &room) else {
            return PushVerdict::NotOurs;
        };
        if !notifies(self.config.push, account, &room, join, stanza) {
            return PushVerdict::Block(
                "groupchat that does not concern the account (minimix_push)",
            );
        }
        match path {
            PushPath::Archive => {
                PushVerdict::Block("groupchat is pushed by mod_minimix when no session is joined")
            }
            PushPath::NoSessionJoined if service_live => {
                PushVerdict::Block("a connected session uses this push service")
            }
            PushPath::NoSessionJoined | PushPath::SessionQueue => PushVerdict::Allow,
        }
    }
}

fn room_of(stanza: &Element) -> Option<BareJid> {
    stanza
        .attr("from")
        .and_then(|f| f.parse::<Jid>().ok())
        .map(|j| j.to_bare())
}

/// Whether a groupchat message from `room` concerns the account under `mode`: a live message
/// (no history replay, no subject change, not the account's own) with a body, and, for
/// mentions, naming the account's nick or referencing the account.
fn notifies(
    mode: PushMode,
    account: &BareJid,
    room: &BareJid,
    join: &Join,
    stanza: &Element,
) -> bool {
    if mode == PushMode::None
        || join.phase != Phase::Joined
        || muc::stanza_type(stanza) != Some("groupchat")
        || muc::is_subject_message(stanza)
        || is_history(stanza, account)
    {
        return false;
    }
    let sender = stanza
        .attr("from")
        .and_then(|f| f.parse::<Jid>().ok())
        .and_then(|j| j.resource().map(|r| r.as_str().to_owned()));
    if sender.as_deref() == Some(join.nick.as_str()) {
        return false;
    }
    let body = stanza
        .get_child("body", NS_CLIENT)
        .map(|b| b.text())
        .unwrap_or_default();
    if body.trim().is_empty() {
        return false;
    }
    match mode {
        PushMode::All => true,
        PushMode::Mentions => {
            names_nick(&body, &join.nick) || references(stanza, account, room, &join.nick)
        }
        PushMode::None => false,
    }
}

/// Discussion history the room replays (on a join or rejoin): it carries a `<delay/>`. Not
/// the one XEP-0198 adds to a stanza queued for a hibernating session (`from` the account).
fn is_history(stanza: &Element, account: &BareJid) -> bool {
    stanza
        .children()
        .any(|c| c.is("delay", NS_DELAY) && c.attr("from") != Some(account.as_str()))
}

/// Whether `text` contains `nick` as a word of its own, ignoring case: "Alice: hi", "@alice",
/// "hi alice!" mention "alice"; "malice" does not.
pub fn names_nick(text: &str, nick: &str) -> bool {
    let nick = nick.trim();
    if nick.is_empty() {
        return false;
    }
    let text = text.to_lowercase();
    let nick = nick.to_lowercase();
    let word_char = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(&nick).any(|(at, found)| {
        let before = text[..at].chars().next_back();
        let after = text[at + found.len()..].chars().next();
        !before.is_some_and(word_char) && !after.is_some_and(word_char)
    })
}

/// A XEP-0372 mention of the account's JID or of its occupant JID in the room.
fn references(stanza: &Element, account: &BareJid, room: &BareJid, nick: &str) -> bool {
    let account_uri = format!("xmpp:{account}");
    let occupant_uri = format!("xmpp:{room}/{nick}");
    stanza
        .children()
        .filter(|c| c.is("reference", NS_REFERENCE) && c.attr("type") == Some("mention"))
        .filter_map(|c| c.attr("uri"))
        .any(|uri| uri == account_uri || uri == occupant_uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{bare, el, World};
    use crate::core::Config;

    const ROOM: &str = "room@muc.example";
    const ALICE: &str = "alice@example.org";

    /// Alice's phone joined `ROOM` as "Alice" and went away: the account stays, nobody joined.
    fn alone_in_room(mode: PushMode) -> World {
        let mut w = World::with_config(Config {
            push: mode,
            ..Config::default()
        });
        w.join_local("alice@example.org/phone", ROOM, "Alice", "carol");
        w.closed("alice@example.org/phone");
        w
    }

    fn message(from_nick: &str, body: &str) -> Element {
        el(&format!(
            "<message xmlns='jabber:client' type='groupchat' from='{ROOM}/{from_nick}' to='{ALICE}'><body>{body}</body></message>"
        ))
    }

    #[test]
    fn with_no_session_joined_only_messages_that_concern_the_account_go_to_the_push_path() {
        let w = alone_in_room(PushMode::Mentions);
        let alice = bare(ALICE);
        assert!(w.mm.push_candidate(&alice, &bare(ROOM)));
        assert!(w
            .mm
            .push_without_sessions(&alice, &message("carol", "alice: hi")));
        assert!(!w
            .mm
            .push_without_sessions(&alice, &message("carol", "hi all")));
        assert!(
            !w.mm
                .push_without_sessions(&alice, &message("Alice", "alice here")),
            "own message"
        );
        let history = el(&format!(
            "<message xmlns='jabber:client' type='groupchat' from='{ROOM}/carol'><body>alice?</body>\
             <delay xmlns='urn:xmpp:delay' from='{ROOM}' stamp='2020-01-01T00:00:00Z'/></message>"
        ));
        assert!(
            !w.mm.push_without_sessions(&alice, &history),
            "history replay"
        );
        let reference = el(&format!(
            "<message xmlns='jabber:client' type='groupchat' from='{ROOM}/carol'><body>look</body>\
             <reference xmlns='{NS_REFERENCE}' type='mention' uri='xmpp:{ALICE}'/></message>"
        ));
        assert!(
            w.mm.push_without_sessions(&alice, &reference),
            "XEP-0372 mention"
        );
        let other_room = el(
            "<message xmlns='jabber:client' type='groupchat' from='other@muc.example/carol'><body>alice</body></message>",
        );
        assert!(!w.mm.push_without_sessions(&alice, &other_room));

        let all = alone_in_room(PushMode::All);
        assert!(all
            .mm
            .push_without_sessions(&alice, &message("carol", "hi all")));
        let none = alone_in_room(PushMode::None);
        assert!(!none.mm.push_candidate(&alice, &bare(ROOM)));
        assert!(!none
            .mm
            .push_without_sessions(&alice, &message("carol", "alice: hi")));
    }

    #[test]
    fn a_joined_session_keeps_the_module_from_pushing() {
        let mut w = World::new();
        w.join_local("alice@example.org/laptop", ROOM, "Alice", "carol");
        let alice = bare(ALICE);
        assert!(!w.mm.push_candidate(&alice, &bare(ROOM)));
        assert!(!w
            .mm
            .push_without_sessions(&alice, &message("carol", "alice: hi")));
    }

    #[test]
    fn verdicts_let_one_push_through_per_message_that_concerns_the_account() {
        let w = alone_in_room(PushMode::Mentions);
        let alice = bare(ALICE);
        let mention = message("carol", "Alice!");
        let chatter = message("carol", "hi all");
        use PushPath::*;
        assert_eq!(
            w.mm.push_verdict(&alice, &mention, NoSessionJoined, false),
            PushVerdict::Allow
        );
        assert!(matches!(
            w.mm.push_verdict(&alice, &mention, NoSessionJoined, true),
            PushVerdict::Block(_)
        ));
        assert!(matches!(
            w.mm.push_verdict(&alice, &mention, Archive, false),
            PushVerdict::Block(_)
        ));
        assert!(matches!(
            w.mm.push_verdict(&alice, &chatter, SessionQueue, false),
            PushVerdict::Block(_)
        ));
        // Queued for a hibernating session: XEP-0198 stamps a delay from the account.
        let queued = el(&format!(
            "<message xmlns='jabber:client' type='groupchat' from='{ROOM}/carol' to='{ALICE}/phone'><body>alice?</body>\
             <delay xmlns='urn:xmpp:delay' from='{ALICE}' stamp='2020-01-01T00:00:00Z'/></message>"
        ));
        assert_eq!(
            w.mm.push_verdict(&alice, &queued, SessionQueue, false),
            PushVerdict::Allow
        );
        let chat = el(&format!(
            "<message xmlns='jabber:client' type='chat' from='{ROOM}/carol'><body>hi</body></message>"
        ));
        assert_eq!(
            w.mm.push_verdict(&alice, &chat, Archive, false),
            PushVerdict::NotOurs
        );
        let elsewhere = el("<message xmlns='jabber:client' type='groupchat' from='x@muc.example/y'><body>alice</body></message>");
        assert_eq!(
            w.mm.push_verdict(&alice, &elsewhere, Archive, false),
            PushVerdict::NotOurs
        );
    }

    #[test]
    fn a_nick_is_mentioned_as_a_word_of_its_own_in_any_case() {
        for text in [
            "alice",
            "Alice: lunch?",
            "hey @alice!",
            "ping ALICE",
            "(alice)",
            "bob, alice.",
            "über Alice",
        ] {
            assert!(names_nick(text, "Alice"), "{text}");
        }
        for text in ["malice", "alices", "alice_2 is here", "al ice", ""] {
            assert!(!names_nick(text, "Alice"), "{text}");
        }
        assert!(names_nick("hi Zoë!", "zoë"));
        assert!(names_nick("hi Anna Lena, welcome", "Anna Lena"));
        assert!(!names_nick("anything", " "));
    }

    #[test]
    fn modes_and_paths_parse_from_their_option_names() {
        assert_eq!(PushMode::parse("mentions"), Some(PushMode::Mentions));
        assert_eq!(PushMode::parse("all"), Some(PushMode::All));
        assert_eq!(PushMode::parse("none"), Some(PushMode::None));
        assert_eq!(PushMode::parse("some"), None);
        assert_eq!(PushPath::parse("archive"), Some(PushPath::Archive));
        assert_eq!(
            PushPath::parse("session_queue"),
            Some(PushPath::SessionQueue)
        );
        assert_eq!(
            PushPath::parse("no_session_joined"),
            Some(PushPath::NoSessionJoined)
        );
        assert_eq!(PushPath::parse(""), None);
    }
}
