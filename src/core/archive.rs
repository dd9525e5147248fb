//! History older than the local buffer, from the account's own archive (mod_mam): the
//! module archives each groupchat message once, so a late session asking for more history
//! than the buffer holds gets the rest from there, oldest first, before the buffered part.

use std::collections::BTreeSet;

use jid::{BareJid, FullJid};
use minidom::Element;

use super::heard;
use super::muc::{NS_CLIENT, NS_DELAY};
use super::time::{self, Millis};
use super::xml;
use super::{Action, Minimix, Outcome};

/// XEP-0359: unique and stable stanza ids (the archive's id of a message).
pub const NS_SID: &str = "urn:xmpp:sid:0";

/// One message as the archive returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedMessage {
    pub id: String,
    pub stanza: Element,
    pub when: Millis,
}

/// The account archive's id of a message (its `<stanza-id by=account/>`).
pub fn archive_id<'a>(stanza: &'a Element, account: &BareJid) -> Option<&'a str> {
    stanza
        .children()
        .filter(|c| c.is("stanza-id", NS_SID) && c.attr("by") == Some(account.as_str()))
        .find_map(|c| c.attr("id"))
}

/// Removes the account archive's `<stanza-id/>` (the message was taken back out of it).
pub fn strip_archive_id(stanza: &mut Element, account: &BareJid) {
    xml::remove_children_where(stanza, |e| {
        e.is("stanza-id", NS_SID) && e.attr("by") == Some(account.as_str())
    });
}

impl Minimix {
    /// Delivers archived messages (given newest first, as the archive query returns them) to
    /// a late session: at most `limit`, none that the buffer will replay too, oldest first,
    /// each with its `<delay/>` and the archive's `<stanza-id/>`.
    pub fn archived_history(
        &mut self,
        session: &FullJid,
        room: &BareJid,
        limit: usize,
        newest_first: Vec<ArchivedMessage>,
    ) -> Outcome {
        let account = session.to_bare();
        let Some(join) = self.join(&account, room) else {
            return Outcome::handled(Vec::new());
        };
        if !join.members.contains_key(session) {
            return Outcome::handled(Vec::new());
        }
        let buffered: BTreeSet<String> = join
            .cache
            .history
            .iter()
            .filter_map(|e| e.archive_id_for(&account))
            .collect();
        // The archive may hold a room message twice (the room's history, archived again when
        // the account joined anew after leaving): each is given once, and not when the buffer
        // replays it (matched like the room's replays, see `heard`).
        let mut seen: BTreeSet<String> = join
            .cache
            .history
            .iter()
            .filter_map(|e| e.stanza.element().ok())
            .map(|el| heard::replay_key(&el, room))
            .collect();
        let mut picked: Vec<(String, ArchivedMessage)> = newest_first
            .into_iter()
            .filter(|m| !buffered.contains(m.id.as_str()))
            .filter(|m| {
                m.stanza.attr("type") == Some("groupchat") && m.stanza.has_child("body", NS_CLIENT)
            })
            .map(|m| (heard::replay_key(&m.stanza, room), m))
            .filter(|(key, _)| seen.insert(key.clone()))
            .take(limit.min(self.config.history_max_messages))
            .collect();
        picked.reverse();
        // The session remembers the newest of them: a rejoin's history that brings one again
        // is not news to it (see `rejoin_window`).
        if let Some(member) = self
            .accounts
            .get_mut(&account)
            .and_then(|a| a.rooms.get_mut(room))
            .and_then(|j| j.members.get_mut(session))
        {
            for (key, _) in &picked {
                member.got_from_archive(key);
            }
        }
        let out = picked
            .into_iter()
            .map(|(_, m)| {
                let mut s = m.stanza;
                xml::set_attr(&mut s, "to", session.as_str());
                if !s.has_child("delay", NS_DELAY) {
                    let stamp = time::format_datetime(m.when);
                    s.append_child(xml::element(
                        "delay",
                        NS_DELAY,
                        &[("from", room.as_str()), ("stamp", &stamp)],
                    ));
                }
                if archive_id(&s, &account).is_none() {
                    s.append_child(xml::element(
                        "stanza-id",
                        NS_SID,
                        &[("by", account.as_str()), ("id", &m.id)],
                    ));
                }
                Action::Deliver {
                    to: session.clone(),
                    stanza: s,
                }
            })
            .collect();
        Outcome::handled(out)
    }
}
