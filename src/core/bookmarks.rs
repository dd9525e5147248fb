//! XEP-0402 bookmarks drive the account's joins: an autojoin bookmark makes the account join
//! (even with no client online); clearing autojoin or retracting it makes the account leave.
//! And the other way round (bookmark sync): when the account leaves a room for good, the
//! bookmark's autojoin is cleared so other devices stop rejoining it.

use jid::BareJid;
use minidom::Element;

use super::account::{Join, Phase};
use super::local;
use super::muc::{NS_CLIENT, NS_MUC};
use super::presence;
use super::time::Millis;
use super::xml;
use super::{as_account, occupant_jid, Action, Minimix, Outcome};

/// XEP-0402: bookmarks stored in PEP.
pub const NS_BOOKMARKS: &str = "urn:xmpp:bookmarks:1";

/// Whether a `<conference/>` asks to join automatically (`true` or `1`).
pub fn is_autojoin(conference: &Element) -> bool {
    matches!(
        conference.attr("autojoin").map(str::trim),
        Some("true") | Some("1")
    )
}

/// The same bookmark with autojoin off (everything else kept).
pub fn without_autojoin(conference: &Element) -> Element {
    let mut c = conference.clone();
    xml::set_attr(&mut c, "autojoin", "false");
    c
}

impl Minimix {
    pub(super) fn handle_bookmark_published(
        &mut self,
        now: Millis,
        account: BareJid,
        room: BareJid,
        conference: Element,
    ) -> Outcome {
        let config = &self.config;
        let autojoin = is_autojoin(&conference);
        let nick = conference
            .get_child("nick", NS_BOOKMARKS)
            .map(|n| n.text())
            .filter(|n| !n.trim().is_empty())
            .or_else(|| account.node().map(|n| n.as_str().to_owned()));
        let password = conference
            .get_child("password", NS_BOOKMARKS)
            .map(|p| p.text());
        let acct = self.accounts.entry(account.clone()).or_default();
        if acct.bookmarks.len() >= config.max_bookmarks && !acct.bookmarks.contains_key(&room) {
            log::info!(
                "{account}: more than {} bookmarks (minimix_max_bookmarks); ignoring {room}",
                config.max_bookmarks
            );
            return Outcome::handled(Vec::new());
        }
        acct.bookmarks.insert(room.clone(), conference);
        let mut out = Vec::new();
        let rooms_in_use = acct.rooms.len();
        match acct.rooms.get_mut(&room) {
            None if autojoin => {
                let Some(nick) = nick else {
                    return Outcome::handled(out);
                };
                let Some(to) = occupant_jid(&room, &nick) else {
                    log::info!("{account}: bookmark of {room} has an invalid nick");
                    return Outcome::handled(out);
                };
                if rooms_in_use >= config.max_rooms {
                    log::info!("{account}: not autojoining {room}: minimix_max_rooms reached");
                    return Outcome::handled(out);
                }
                // The account joins by itself; it is "away from all devices" until a session joins.
                let payload = presence::away_payload(
                    config.away_show.as_deref(),
                    config.away_status.as_deref(),
                );
                let mut join = Join::new(nick, now, self.seq);
                join.password = password.clone();
                join.idle_since = Some(now);
                join.shown = Some(payload.clone());
                let mut stanza = payload;
                xml::set_attr(&mut stanza, "to", to.as_str());
                let mut x = Element::bare("x", NS_MUC);
                x.append_child(xml::element(
                    "history",
                    NS_MUC,
                    &[("maxstanzas", &config.history_length.to_string())],
                ));
                if let Some(password) = &password {
                    x.append_child(xml::text_element("password", NS_MUC, password));
                }
                stanza.append_child(x);
                let mut stanza = as_account(&stanza, &account);
                let _nothing_to_evict = join.send_presence(&mut stanza);
                acct.rooms.insert(room, join);
                out.push(Action::Route { stanza });
                let deadline = now + config.join_timeout_ms;
                self.note_deadline(deadline);
            }
            Some(join) if !autojoin && join.phase != Phase::Leaving => {
                begin_leave(now, &account, &room, join, &mut out);
                let deadline = now + config.join_timeout_ms;
                self.note_deadline(deadline);
            }
            _ => {}
        }
        Outcome::handled(out)
    }

    pub(super) fn handle_bookmark_retracted(
        &mut self,
        now: Millis,
        account: BareJid,
        room: BareJid,
    ) -> Outcome {
        let mut out = Vec::new();
        let mut leaving = false;
        if let Some(acct) = self.accounts.get_mut(&account) {
            acct.bookmarks.remove(&room);
            if let Some(join) = acct.rooms.get_mut(&room) {
                if join.phase != Phase::Leaving {
                    begin_leave(now, &account, &room, join, &mut out);
                    leaving = true;
                }
            }
        }
        if leaving {
            self.note_deadline(now + self.config.join_timeout_ms);
        }
        Outcome::handled(out)
    }

    /// The bookmark-sync action for a room the account left for good, if any.
    pub(super) fn autojoin_cleared(&self, account: &BareJid, room: &BareJid) -> Option<Action> {
        if !self.config.bookmark_sync {
            return None;
        }
        let conference = self.accounts.get(account)?.bookmarks.get(room)?;
        is_autojoin(conference).then(|| Action::PublishBookmark {
            account: account.clone(),
            room: room.clone(),
            conference: without_autojoin(conference),
        })
    }

    /// `minimix_bookmark_joins`: a confirmed join of a room that is not bookmarked gets one.
    pub(super) fn bookmark_for_join(
        &mut self,
        account: &BareJid,
        room: &BareJid,
        nick: &str,
    ) -> Option<Action> {
        if !self.config.bookmark_joins {
            return None;
        }
        let acct = self.accounts.get_mut(account)?;
        if acct.bookmarks.contains_key(room) || acct.bookmarks.len() >= self.config.max_bookmarks {
            return None;
        }
        let mut conference = xml::element("conference", NS_BOOKMARKS, &[("autojoin", "true")]);
        conference.append_child(xml::text_element("nick", NS_BOOKMARKS, nick));
        acct.bookmarks.insert(room.clone(), conference.clone());
        Some(Action::PublishBookmark {
            account: account.clone(),
            room: room.clone(),
            conference,
        })
    }
}

/// The account leaves `room` with everyone: the joined sessions will get the room's own
/// self-unavailable when it comes (the caller arms the deadline for a room that never does).
pub(super) fn begin_leave(
    now: Millis,
    account: &BareJid,
    room: &BareJid,
    join: &mut Join,
    out: &mut Vec<Action>,
) {
    let sessions = std::mem::take(&mut join.members).into_keys().collect();
    join.phase = Phase::Leaving;
    join.unwanted = false;
    let Some(to) = occupant_jid(room, &join.nick) else {
        // No occupant JID to leave from (a stored nick gone bad): out at once.
        local::tell_left(room, join, sessions, out);
        return;
    };
    let leave = xml::element(
        "presence",
        NS_CLIENT,
        &[("type", "unavailable"), ("to", to.as_str())],
    );
    let mut leave = as_account(&leave, account);
    let evicted = join.send_leave(&mut leave, sessions, now, true);
    local::tell_left(room, join, evicted, out);
    out.push(Action::Route { stanza: leave });
}
