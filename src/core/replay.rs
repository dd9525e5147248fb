//! What a session joining a room the account is already in must receive, built from local
//! state only, in the order XEP-0045 §7.2 gives: other occupants' presences, its own presence
//! (status 110) last among presences, discussion history, then the subject.

use jid::{BareJid, FullJid};
use minidom::Element;

use super::muc::{self, HistoryRequest, StatusCode, NS_CLIENT};
use super::room::{HistoryEntry, RoomCache};
use super::time::Millis;
use super::xml;

/// Who is joining late, and what it asked for.
pub struct LateJoiner<'a> {
    pub session: &'a FullJid,
    pub requested_nick: &'a str,
    pub history: &'a HistoryRequest,
    /// What the session itself told the room (show, status…): its own presence shows that.
    pub payload: &'a Element,
}

/// Everything a late session gets, each stanza addressed to it.
pub fn replay_for(
    room: &BareJid,
    cache: &RoomCache,
    actual_nick: &str,
    joiner: &LateJoiner,
    default_history: usize,
    now: Millis,
) -> Vec<Element> {
    let LateJoiner {
        session,
        requested_nick,
        history,
        payload,
    } = *joiner;
    let mut out = Vec::with_capacity(cache.occupants.len() + 2 + default_history);
    for presence in cache.occupants.values() {
        out.push(addressed(presence, session));
    }
    if let Some(own) = &cache.self_presence {
        let mut own = self_presence_for(own, session, requested_nick != actual_nick);
        with_own_availability(&mut own, payload);
        out.push(own);
    }
    for entry in select_history(&cache.history, history, default_history, now) {
        out.push(addressed(&entry.stanza, session));
    }
    out.push(match &cache.subject {
        Some(subject) => addressed(subject, session),
        None => empty_subject(room, session),
    });
    out
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

/// The newest entries that satisfy every limit of the request, oldest first
/// (the same rules as Prosody's history.lib: count, characters, age and `since`).
pub fn select_history<'a>(
    history: &'a std::collections::VecDeque<HistoryEntry>,
    request: &HistoryRequest,
    default_history: usize,
    now: Millis,
) -> impl Iterator<Item = &'a HistoryEntry> {
    let max_stanzas = request
        .max_stanzas
        .unwrap_or(default_history)
        .min(history.len());
    let oldest_allowed = request
        .seconds
        .map(|s| now.saturating_sub(s.saturating_mul(1000)))
        .into_iter()
        .chain(request.since)
        .max();
    let mut chars = 0usize;
    let mut count = 0usize;
    for entry in history.iter().rev() {
        if count >= max_stanzas {
            break;
        }
        if oldest_allowed.is_some_and(|t| entry.received < t) {
            break;
        }
        if let Some(max_chars) = request.max_chars {
            if chars + entry.bytes > max_chars {
                break;
            }
            chars += entry.bytes;
        }
        count += 1;
    }
    history.iter().skip(history.len() - count)
}
