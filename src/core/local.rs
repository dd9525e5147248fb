//! Stanzas the core builds itself in a room's name, for what the room will not (or cannot)
//! tell a session: that it is out (its own leave while others stay, a leave the room never
//! answered, a failed quiet rejoin) or that its join failed (a limit, a timeout).

use std::collections::BTreeSet;

use jid::{BareJid, FullJid};
use minidom::Element;

use super::account::{InFlight, Join};
use super::muc::{self, StatusCode, NS_CLIENT, NS_MUC, NS_MUC_USER};
use super::replay;
use super::xml;
use super::{occupant_jid, Action};

/// The self-unavailable (110, plus `codes`) the room would send a session leaving it, from
/// the account's occupant JID and built from the account's cached self-presence.
pub(super) fn self_unavailable(
    room: &BareJid,
    join: &Join,
    session: &FullJid,
    codes: &[StatusCode],
) -> Element {
    let mut p = xml::element(
        "presence",
        NS_CLIENT,
        &[("type", "unavailable"), ("to", session.as_str())],
    );
    if let Some(from) = occupant_jid(room, &join.nick) {
        xml::set_attr(&mut p, "from", from.as_str());
    }
    let mut x = Element::bare("x", NS_MUC_USER);
    let mut item = xml::element("item", NS_MUC_USER, &[("role", "none")]);
    let cached = join
        .cache
        .self_presence
        .as_ref()
        .and_then(|s| s.element().ok());
    let cached_item = cached
        .as_ref()
        .and_then(muc::muc_user)
        .and_then(|x| x.get_child("item", NS_MUC_USER));
    if let Some(cached) = cached_item {
        if let Some(v) = cached.attr("affiliation") {
            xml::set_attr(&mut item, "affiliation", v);
        }
        if let Some(v) = cached.attr("jid") {
            xml::set_attr(&mut item, "jid", v);
        }
    }
    x.append_child(item);
    for code in std::iter::once(StatusCode::SelfPresence).chain(codes.iter().copied()) {
        x.append_child(xml::element(
            "status",
            NS_MUC_USER,
            &[("code", &code.code().to_string())],
        ));
    }
    p.append_child(x);
    p
}

/// Tells each of `sessions` it is out of the room (a plain self-unavailable): what they asked
/// for when they left, now that the room will not answer.
pub(super) fn tell_left(
    room: &BareJid,
    join: &Join,
    sessions: BTreeSet<FullJid>,
    out: &mut Vec<Action>,
) {
    for session in sessions {
        let stanza = self_unavailable(room, join, &session, &[]);
        out.push(Action::Deliver {
            to: session,
            stanza,
        });
    }
}

/// A presence error for a join, from the occupant JID the session asked for.
pub(super) fn join_error(
    occupant: &str,
    session: &FullJid,
    error_type: &str,
    condition: &str,
    text: &str,
) -> Element {
    let mut p = xml::element(
        "presence",
        NS_CLIENT,
        &[
            ("type", "error"),
            ("from", occupant),
            ("to", session.as_str()),
        ],
    );
    p.append_child(Element::bare("x", NS_MUC));
    p.append_child(muc::error_element(error_type, condition, Some(text)));
    p
}

/// Why the account's join failed.
pub(super) enum JoinFailure<'a> {
    /// The room refused it with this presence error.
    Refused(&'a Element),
    /// The room did not answer within `minimix_join_timeout`.
    TimedOut,
}

/// The account's (re)join of `room` failed: every member hears it the way a direct client
/// would. A session still waiting for its join gets the error from the occupant JID it asked
/// for (that is how a client matches it); one that believes it is in (a quiet rejoin after a
/// self-ping or a restart) is removed: 110 + 333, XEP-0045's "kicked due to an error". Sessions
/// still waiting for a leave's answer are told they are out.
pub(super) fn fail_join(
    room: &BareJid,
    join: &mut Join,
    failure: JoinFailure,
    out: &mut Vec<Action>,
) {
    let mut waiting = BTreeSet::new();
    for f in join.in_flight.iter_mut() {
        if let InFlight::Leave { sessions, .. } = f {
            waiting.append(sessions);
        }
    }
    tell_left(room, join, waiting, out);
    for (session, member) in &join.members {
        let stanza = if member.in_room {
            self_unavailable(room, join, session, &[StatusCode::ErrorKick])
        } else {
            let from = occupant_jid(room, &member.requested_nick)
                .or_else(|| occupant_jid(room, &join.nick));
            match (&failure, from) {
                (JoinFailure::Refused(error), from) => {
                    let mut e = replay::addressed(error, session);
                    if let Some(from) = from {
                        xml::set_attr(&mut e, "from", from.as_str());
                    }
                    e
                }
                (JoinFailure::TimedOut, from) => {
                    let from = from.map_or_else(|| room.to_string(), |f| f.to_string());
                    join_error(
                        &from,
                        session,
                        "wait",
                        "remote-server-timeout",
                        "The room did not answer the join",
                    )
                }
            }
        };
        out.push(Action::Deliver {
            to: session.clone(),
            stanza,
        });
    }
}
