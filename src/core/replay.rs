//! What a session joining a room the account is already in must receive, built from local
//! state only, in the order XEP-0045 §7.2 gives: other occupants' presences, its own presence
//! (status 110) last among presences, discussion history, then the subject.

use jid::{BareJid, FullJid};
use minidom::Element;

use super::muc::{self, HistoryRequest, StatusCode, NS_CLIENT};
use super::room::{HistoryEntry, RoomCache};
use super::time::Millis;
use super::xml;
use super::Action;

/// Who is joining late, and what it asked for.
pub struct LateJoiner<'a> {
    pub session: &'a FullJid,
    pub requested_nick: &'a str,
    pub history: &'a HistoryRequest,
    /// What the session itself told the room (show, status…): its own presence shows that.
    pub payload: &'a Element,
}

/// How much history a replay may give.
#[derive(Debug, Clone, Copy)]
pub struct HistoryLimits {
    /// Messages given when the session does not say (`minimix_history_length`).
    pub default: usize,
    /// The most ever given (`minimix_history_max_messages`).
    pub max: usize,
    /// Whether older history may come from the account's archive.
    pub from_archive: bool,
}

/// Everything a late session gets, in order, each stanza addressed to it. When the request
/// reaches further back than the buffer, a `FetchHistory` stands where the older part goes.
pub fn replay_for(
    room: &BareJid,
    cache: &RoomCache,
    actual_nick: &str,
    joiner: &LateJoiner,
    limits: HistoryLimits,
    now: Millis,
) -> Vec<Action> {
    let LateJoiner {
        session,
        requested_nick,
        history,
        payload,
    } = *joiner;
    let account = session.to_bare();
    let mut out = Vec::with_capacity(cache.occupants.len() + 3 + limits.default);
    out.extend(occupants_for(cache, session));
    if let Some(own) = cache.self_presence.as_ref().and_then(|s| s.element().ok()) {
        let mut own = self_presence_for(&own, session, requested_nick != actual_nick);
        with_own_availability(&mut own, payload);
        out.push(Action::Deliver {
            to: session.clone(),
            stanza: own,
        });
    }
    let selection = select_history(&cache.history, history, limits.default, limits.max, now);
    if selection.missing > 0 && limits.from_archive {
        let oldest = cache.history.get(selection.start);
        out.push(Action::FetchHistory {
            to: session.clone(),
            room: room.clone(),
            before_id: oldest.and_then(|e| e.archive_id_for(&account)),
            before: oldest.map(|e| e.received),
            since: selection.oldest_allowed,
            limit: selection.missing,
        });
    }
    for entry in cache.history.iter().skip(selection.start) {
        out.push(Action::DeliverShared {
            to: session.clone(),
            stanza: entry.stanza.clone(),
            extra: entry.extra(&account, room),
        });
    }
    out.push(match &cache.subject {
        Some(subject) => Action::DeliverShared {
            to: session.clone(),
            stanza: subject.clone(),
            extra: Vec::new(),
        },
        None => Action::Deliver {
            to: session.clone(),
            stanza: empty_subject(room, session),
        },
    });
    out
}

/// The cached occupants' presences, each for session `to` (shared, nothing copied).
pub fn occupants_for<'a>(
    cache: &'a RoomCache,
    to: &'a FullJid,
) -> impl Iterator<Item = Action> + 'a {
    cache
        .occupants
        .values()
        .map(move |presence| Action::DeliverShared {
            to: to.clone(),
            stanza: presence.clone(),
            extra: Vec::new(),
        })
}

/// A copy of `stanza` addressed to `to`.
pub fn addressed(stanza: &Element, to: &FullJid) -> Element {
    let mut s = stanza.clone();
    xml::set_attr(&mut s, "to", to.as_str());
    s
}

/// The account's self-presence as a late session must see it: 110 always, 210 when the
/// session asked for another nick, and never 201 (the room was not created by this join).
pub fn self_presence_for(own: &Element, session: &FullJid, nick_assigned: bool) -> Element {
    let mut s = addressed(own, session);
    muc::show_session_as_real_jid(&mut s, session);
    muc::remove_status(&mut s, StatusCode::RoomCreated);
    muc::remove_status(&mut s, StatusCode::NickAssigned);
    muc::add_status(&mut s, StatusCode::SelfPresence);
    if nick_assigned {
        muc::add_status(&mut s, StatusCode::NickAssigned);
    }
    s
}

/// Replaces the availability in a self-presence (show, status, priority) with the session's
/// own: a directly joined client sees the presence it sent reflected, not the account's
/// earlier one (e.g. "away from all devices").
fn with_own_availability(own: &mut Element, payload: &Element) {
    for name in ["show", "status", "priority"] {
        xml::remove_children(own, name, NS_CLIENT);
    }
    let mine: Vec<Element> = payload
        .children()
        .filter(|c| c.ns() == NS_CLIENT && matches!(c.name(), "show" | "status" | "priority"))
        .cloned()
        .collect();
    // Keep them before the room's payloads, where a client's own presence has them.
    let rest: Vec<minidom::Node> = own.take_nodes();
    for c in mine {
        own.append_child(c);
    }
    for n in rest {
        own.append_node(n);
    }
}

/// The subject message a room sends when none is set.
fn empty_subject(room: &BareJid, to: &FullJid) -> Element {
    let mut m = xml::element(
        "message",
        NS_CLIENT,
        &[
            ("type", "groupchat"),
            ("from", room.as_str()),
            ("to", to.as_str()),
        ],
    );
    m.append_child(Element::bare("subject", NS_CLIENT));
    m
}

/// Which buffered entries a history request selects, and how many more it wants from
/// the archive (older than the buffer holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Index of the oldest selected entry; entries from here on are replayed.
    pub start: usize,
    /// Messages still wanted, older than the buffer's oldest (0 when the buffer satisfied
    /// the request or a time/size limit cut it).
    pub missing: usize,
    /// The lower time bound the request set (`seconds`, `since`), if any.
    pub oldest_allowed: Option<Millis>,
}

/// The newest entries that satisfy every limit of the request, oldest first (the same rules
/// as Prosody's history.lib: count, characters, age and `since`), capped at `max_messages`.
pub fn select_history(
    history: &std::collections::VecDeque<HistoryEntry>,
    request: &HistoryRequest,
    default_history: usize,
    max_messages: usize,
    now: Millis,
) -> Selection {
    let wanted = request
        .max_stanzas
        .unwrap_or(default_history)
        .min(max_messages);
    let oldest_allowed = request
        .seconds
        .map(|s| now.saturating_sub(s.saturating_mul(1000)))
        .into_iter()
        .chain(request.since)
        .max();
    let mut chars = 0usize;
    let mut count = 0usize;
    let mut cut = false;
    for entry in history.iter().rev() {
        if count >= wanted {
            break;
        }
        if oldest_allowed.is_some_and(|t| entry.received < t) {
            cut = true;
            break;
        }
        if let Some(max_chars) = request.max_chars {
            if chars + entry.bytes > max_chars {
                cut = true;
                break;
            }
            chars += entry.bytes;
        }
        count += 1;
    }
    // Size limits (maxchars) are only applied to the buffer; the archive is asked by count.
    let missing = if cut || request.max_chars.is_some() {
        0
    } else {
        wanted - count
    };
    Selection {
        start: history.len() - count,
        missing,
        oldest_allowed,
    }
}
