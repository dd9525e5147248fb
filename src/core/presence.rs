//! Outgoing presence: what each joined session told the room, and the one presence the
//! account shows there (the most available session wins).

use minidom::Element;

use super::muc::{NS_CLIENT, NS_DELAY, NS_MUC};
use super::xml;

/// Availability, most available last so `max` picks the winner. The order is
/// chat > online > dnd > away > xa: a session that is busy is still at its device,
/// one that is away is not, and xa is the furthest away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Availability {
    ExtendedAway,
    Away,
    DoNotDisturb,
    Online,
    Chat,
}

impl Availability {
    pub fn of(payload: &Element) -> Self {
        match payload.get_child("show", NS_CLIENT).map(|s| s.text()) {
            Some(s) if s.trim() == "chat" => Self::Chat,
            Some(s) if s.trim() == "dnd" => Self::DoNotDisturb,
            Some(s) if s.trim() == "away" => Self::Away,
            Some(s) if s.trim() == "xa" => Self::ExtendedAway,
            _ => Self::Online,
        }
    }
}

/// The part of a session's presence that the room should see: the presence without
/// addressing, id, the join payload or delay stamps. Two equal payloads mean no update.
pub fn payload_of(stanza: &Element) -> Element {
    let mut p = stanza.clone();
    for attr in ["to", "from", "id", "type"] {
        xml::remove_attr(&mut p, attr);
    }
    xml::remove_children(&mut p, "x", NS_MUC);
    xml::remove_children(&mut p, "delay", NS_DELAY);
    p
}

/// The presence shown while no session is joined ("away from all devices").
pub fn away_payload(show: Option<&str>, status: Option<&str>) -> Element {
    let mut p = Element::bare("presence", NS_CLIENT);
    if let Some(show) = show {
        p.append_child(xml::text_element("show", NS_CLIENT, show));
    }
    if let Some(status) = status {
        p.append_child(xml::text_element("status", NS_CLIENT, status));
    }
    p
}

/// Picks the aggregate among `(payload, last_update)` pairs: the most available one, and of
/// equally available ones the most recently updated.
pub fn aggregate<'a>(candidates: impl Iterator<Item = (&'a Element, u64)>) -> Option<&'a Element> {
    candidates
        .max_by_key(|(p, seq)| (Availability::of(p), *seq))
        .map(|(p, _)| p)
}
