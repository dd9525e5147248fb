//! XEP-0045 vocabulary: namespaces, status codes and the predicates the core asks of stanzas.

use minidom::Element;

use super::xml;

/// RFC 6120: the namespace of client stanzas.
pub const NS_CLIENT: &str = "jabber:client";
/// XEP-0045: the join payload `<x/>` a client adds to its presence.
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
/// XEP-0045: occupant information the room adds (`<x><item/><status/></x>`).
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// XEP-0045: room administration (roles, affiliations).
pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
/// XEP-0045: room ownership (configuration, destruction).
pub const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
/// RFC 6120: stanza error conditions.
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// XEP-0203: delayed delivery stamps on history.
pub const NS_DELAY: &str = "urn:xmpp:delay";
/// XEP-0280: message carbons.
pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
/// XEP-0297: stanza forwarding (inside carbons).
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
/// XEP-0199 / XEP-0410: ping, and MUC self-ping.
pub const NS_PING: &str = "urn:xmpp:ping";

/// XEP-0045 §15.6 status codes the core acts on. Unknown codes are kept as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusCode {
    /// 100: the room is non-anonymous (real JIDs visible).
    NonAnonymous,
    /// 110: this presence is about the recipient itself.
    SelfPresence,
    /// 170: the room is logged.
    Logged,
    /// 201: the room was created by this join.
    RoomCreated,
    /// 210: the room assigned or modified the nick.
    NickAssigned,
    /// 301: banned.
    Banned,
    /// 303: nick change (with `<item nick=…/>`).
    NickChanged,
    /// 307: kicked.
    Kicked,
    /// 321: removed because of an affiliation change.
    AffiliationRemoved,
    /// 322: removed because the room became members-only.
    MembersOnly,
    /// 332: removed because of a system shutdown.
    Shutdown,
    /// 333: removed because of an error (e.g. a bounce).
    ErrorKick,
    /// Any other code.
    Other(u16),
}

impl StatusCode {
    pub fn from_code(code: u16) -> Self {
        match code {
            100 => Self::NonAnonymous,
            110 => Self::SelfPresence,
            170 => Self::Logged,
            201 => Self::RoomCreated,
            210 => Self::NickAssigned,
            301 => Self::Banned,
            303 => Self::NickChanged,
            307 => Self::Kicked,
            321 => Self::AffiliationRemoved,
            322 => Self::MembersOnly,
            332 => Self::Shutdown,
            333 => Self::ErrorKick,
            other => Self::Other(other),
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Self::NonAnonymous => 100,
            Self::SelfPresence => 110,
            Self::Logged => 170,
            Self::RoomCreated => 201,
            Self::NickAssigned => 210,
            Self::Banned => 301,
            Self::NickChanged => 303,
            Self::Kicked => 307,
            Self::AffiliationRemoved => 321,
            Self::MembersOnly => 322,
            Self::Shutdown => 332,
            Self::ErrorKick => 333,
            Self::Other(c) => c,
        }
    }
}

/// The `<x xmlns=muc#user>` of a stanza. Prosody's in-process stanzas may leave children of
/// `<x>` without an explicit namespace; the bridge resolves inheritance, so a plain lookup works.
pub fn muc_user(stanza: &Element) -> Option<&Element> {
    stanza.get_child("x", NS_MUC_USER)
}

/// The status codes in a stanza's muc#user payload, in document order.
pub fn status_codes(stanza: &Element) -> Vec<StatusCode> {
    muc_user(stanza)
        .map(|x| {
            x.children()
                .filter(|c| c.is("status", NS_MUC_USER))
                .filter_map(|c| c.attr("code")?.parse::<u16>().ok())
                .map(StatusCode::from_code)
                .collect()
        })
        .unwrap_or_default()
}

pub fn has_status(stanza: &Element, code: StatusCode) -> bool {
    status_codes(stanza).contains(&code)
}

/// A client presence carrying the XEP-0045 join payload.
pub fn is_join_request(stanza: &Element) -> bool {
    stanza.has_child("x", NS_MUC)
}

/// The stanza's `type` attribute, with `None` for a missing one.
pub fn stanza_type(stanza: &Element) -> Option<&str> {
    stanza.attr("type")
}

/// A message that changes or announces the subject: it has `<subject/>` and no `<body/>`
/// (XEP-0045 §8.1; Prosody's subject.lib applies the same rule).
pub fn is_subject_message(stanza: &Element) -> bool {
    stanza.has_child("subject", NS_CLIENT) && !stanza.has_child("body", NS_CLIENT)
}

/// A groupchat message worth keeping as discussion history: it has a body.
pub fn is_history_worthy(stanza: &Element) -> bool {
    stanza.has_child("body", NS_CLIENT)
}

/// Adds `<status code=…/>` to the muc#user payload unless it is already there.
pub fn add_status(stanza: &mut Element, code: StatusCode) {
    if has_status(stanza, code) {
        return;
    }
    let status = xml::element("status", NS_MUC_USER, &[("code", &code.code().to_string())]);
    if let Some(x) = stanza.get_child_mut("x", NS_MUC_USER) {
        x.append_child(status);
    } else {
        let mut x = Element::bare("x", NS_MUC_USER);
        x.append_child(status);
        stanza.append_child(x);
    }
}

/// Removes every `<status code=…/>` with this code from the muc#user payload.
pub fn remove_status(stanza: &mut Element, code: StatusCode) {
    if let Some(x) = stanza.get_child_mut("x", NS_MUC_USER) {
        let wanted = code.code().to_string();
        xml::remove_children_where(x, |e| {
            e.is("status", NS_MUC_USER) && e.attr("code") == Some(wanted.as_str())
        });
    }
}

/// The nick an `<item nick=…/>` announces (303 nick changes).
pub fn item_nick(stanza: &Element) -> Option<&str> {
    muc_user(stanza)?
        .get_child("item", NS_MUC_USER)?
        .attr("nick")
}

/// The room's `<destroy/>` notice in a self-unavailable presence.
pub fn is_destroy(stanza: &Element) -> bool {
    muc_user(stanza).is_some_and(|x| x.has_child("destroy", NS_MUC_USER))
}

/// Builds a stanza error child: `<error type=…><condition xmlns=stanzas/><text/></error>`.
pub fn error_element(error_type: &str, condition: &str, text: Option<&str>) -> Element {
    let mut error = xml::element("error", NS_CLIENT, &[("type", error_type)]);
    error.append_child(Element::bare(condition, NS_STANZAS));
    if let Some(text) = text {
        error.append_child(xml::text_element("text", NS_STANZAS, text));
    }
    error
}

/// The history a joining session asked for (XEP-0045 §7.2.13). `None` fields were not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRequest {
    pub max_stanzas: Option<usize>,
    pub max_chars: Option<usize>,
    pub seconds: Option<u64>,
    /// Milliseconds since the epoch.
    pub since: Option<u64>,
}

impl HistoryRequest {
    pub fn from_join(stanza: &Element) -> Self {
        let Some(h) = stanza
            .get_child("x", NS_MUC)
            .and_then(|x| x.get_child("history", NS_MUC))
        else {
            return Self::default();
        };
        Self {
            max_stanzas: h.attr("maxstanzas").and_then(|v| v.trim().parse().ok()),
            max_chars: h.attr("maxchars").and_then(|v| v.trim().parse().ok()),
            seconds: h.attr("seconds").and_then(|v| v.trim().parse().ok()),
            since: h.attr("since").and_then(super::time::parse_datetime),
        }
    }
}

/// In the account's self-presence, the room names the account's bare JID as the real JID.
/// A session joined directly would see its own full JID there: make it so.
pub fn show_session_as_real_jid(stanza: &mut Element, session: &jid::FullJid) {
    let account = session.to_bare();
    if let Some(x) = stanza.get_child_mut("x", NS_MUC_USER) {
        for item in x.children_mut().filter(|c| c.is("item", NS_MUC_USER)) {
            let is_account = item
                .attr("jid")
                .and_then(|j| j.parse::<jid::Jid>().ok())
                .is_some_and(|j| j.to_bare() == account);
            if is_account {
                xml::set_attr(item, "jid", session.as_str());
            }
        }
    }
}

/// A XEP-0280 sent carbon of `sent` (as the session sent it) for another session.
pub fn sent_carbon(sent: &Element, account: &jid::BareJid, to: &jid::FullJid) -> Element {
    let mut wrapper = xml::element(
        "message",
        NS_CLIENT,
        &[
            ("from", account.as_str()),
            ("to", to.as_str()),
            ("type", sent.attr("type").unwrap_or("chat")),
        ],
    );
    let mut forwarded = Element::bare("forwarded", NS_FORWARD);
    forwarded.append_child(sent.clone());
    let mut carbon = Element::bare("sent", NS_CARBONS);
    carbon.append_child(forwarded);
    wrapper.append_child(carbon);
    wrapper
}
