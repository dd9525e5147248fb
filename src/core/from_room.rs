//! Inputs from rooms to the account's bare JID: occupants' presences, the account's own
//! presence, groupchat, subjects, private messages, errors and iq answers. Everything from a
//! room the account is in is claimed: an unclaimed groupchat or PM bounces, and the room
//! kicks the account for the bounce (status 333).

use std::collections::BTreeSet;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;

use super::account::Phase;
use super::muc::{self, StatusCode};
use super::resync;
use super::time::Millis;
use super::xml;
use super::{deliver_to, fork_to_members, Action, Minimix, Outcome};

impl Minimix {
    pub(super) fn handle_room_presence(
        &mut self,
        now: Millis,
        account: BareJid,
        stanza: Element,
    ) -> Outcome {
        let Some(from) = stanza.attr("from").and_then(|f| f.parse::<Jid>().ok()) else {
            return Outcome::pass();
        };
        let room = from.to_bare();
        let max_occupants = self.config.max_occupants;
        let config = &self.config;
        let shared = &mut self.shared;

        let next_ping = self.config.ping_interval_ms.map(|i| now + i);
        let Some(acct) = self.accounts.get_mut(&account) else {
            return Outcome::pass();
        };
        let Some(join) = acct.rooms.get_mut(&room) else {
            return Outcome::pass();
        };
        let nick = from.resource().map(|r| r.as_str().to_owned());
        let mut out = Vec::new();
        // Bookmark sync after the match: the account left for good / a join was confirmed.
        let mut left_for_good = false;
        let mut confirmed: Option<String> = None;
        let mut ping_armed: Option<Millis> = None;
        match muc::stanza_type(&stanza) {
            Some("error") => {
                if let Some((session, _)) = join
                    .nick_change
                    .take_if(|(_, n)| Some(n.as_str()) == nick.as_deref())
                {
                    // The room refused a session's nick change: only that session asked.
                    deliver_to(&stanza, std::iter::once(&session), &mut out);
                    return Outcome::handled(out);
                }
                match join.phase {
                    Phase::Joined => deliver_to(&stanza, join.members.keys(), &mut out),
                    Phase::Joining { .. } | Phase::Leaving => {
                        // The join failed (or the room errs on the leave): every waiting session
                        // hears it, and nothing is left behind to block a later join.
                        deliver_to(
                            &stanza,
                            join.members.keys().chain(join.leaving.iter()),
                            &mut out,
                        );
                        if join.durable {
                            out.push(Action::Persist {
                                account: account.clone(),
                            });
                        }
                        // A room that refuses for good (gone, forbidden, members-only, …) should
                        // not be rejoined by every device: that is what autojoin would do.
                        left_for_good = stanza
                            .get_child("error", muc::NS_CLIENT)
                            .and_then(|e| e.attr("type"))
                            .is_some_and(|t| t == "cancel" || t == "auth");
                        acct.rooms.remove(&room);
                    }
                }
            }
            None | Some("unavailable") => {
                let Some(nick) = nick else {
                    // A presence from the room's bare JID is not occupant traffic; nobody asked.
                    log::debug!("ignoring presence from room bare JID {room} to {account}");
                    return Outcome::handled(out);
                };
                let is_self = muc::has_status(&stanza, StatusCode::SelfPresence)
                    || (join.phase == Phase::Joined && nick == join.nick);
                let available = muc::stanza_type(&stanza).is_none();
                if !is_self {
                    if available {
                        if !join
                            .cache
                            .set_occupant(shared, &nick, &stanza, max_occupants)
                        {
                            log::info!("{room}: more than {max_occupants} occupants (minimix_max_occupants); not caching {nick}");
                        }
                    } else {
                        join.cache.remove_occupant(&nick);
                    }
                    if join.resync.is_some() {
                        resync::occupant_presence(join, &nick, &mut out);
                    } else {
                        fork_to_members(join, &mut out);
                    }
                } else if available {
                    if join.phase != Phase::Joined || join.nick != nick || !join.durable {
                        out.push(Action::Persist {
                            account: account.clone(),
                        });
                    }
                    join.durable = true;
                    if matches!(join.phase, Phase::Joining { .. }) && !join.members.is_empty() {
                        confirmed = Some(nick.clone());
                    }
                    join.nick = nick.clone();
                    join.phase = Phase::Joined;
                    if join.next_ping.is_none() {
                        join.next_ping = next_ping;
                        ping_armed = next_ping;
                    }

                    join.nick_change = None;
                    // After a quiet rejoin, sessions that were joined hear only what changed.
                    let old_self = match (&join.resync, &join.cache.self_presence) {
                        (Some(_), Some(old)) => old.element().ok(),
                        _ => None,
                    };
                    join.cache.set_self_presence(shared, &stanza);
                    let told: BTreeSet<FullJid> = join
                        .members
                        .keys()
                        .filter(|s| {
                            !resync::self_presence_is_news(join, s, old_self.as_ref(), &stanza)
                        })
                        .cloned()
                        .collect();
                    for (session, member) in join.members.iter_mut() {
                        if told.contains(session) {
                            continue;
                        }
                        let mut s = super::replay::addressed(&stanza, session);
                        muc::show_session_as_real_jid(&mut s, session);
                        if member.requested_nick != nick {
                            muc::add_status(&mut s, StatusCode::NickAssigned);
                        } else {
                            muc::remove_status(&mut s, StatusCode::NickAssigned);
                        }
                        out.push(Action::Deliver {
                            to: session.clone(),
                            stanza: s,
                        });
                        // The session now knows the account's nick; later updates are plain.
                        member.requested_nick = nick.clone();
                    }
                    resync::occupants_gone(join, &room, &mut out);
                    // Sessions may have changed their presence while the join was in flight.
                    super::from_client::update_shown(&account, &room, join, config, &mut out);
                } else if muc::has_status(&stanza, StatusCode::NickChanged) {
                    // The account's nick is changing; the new self-presence follows. Every joined
                    // session sees this 303, so the new nick is what each of them expects.
                    if let Some(new_nick) = muc::item_nick(&stanza) {
                        for member in join.members.values_mut() {
                            member.requested_nick = new_nick.to_owned();
                        }
                    }
                    fork_to_members(join, &mut out);
                } else if matches!(join.phase, Phase::Joining { .. }) && !join.leaving.is_empty() {
                    // The answer to the account's earlier leave, while a new join is in flight.
                    for session in std::mem::take(&mut join.leaving) {
                        out.push(Action::Forward { to: session });
                    }
                } else {
                    // The account is out of the room: it left, or was kicked (307), banned (301),
                    // removed (321, 322, 332, 333), or the room was destroyed. Everyone joined
                    // hears it, and the state is dropped so a later join starts afresh.
                    if join.phase != Phase::Leaving {
                        log::info!(
                            "{account} removed from {room} (codes {:?})",
                            muc::status_codes(&stanza)
                        );
                    }
                    for session in join.members.keys().chain(join.leaving.iter()) {
                        out.push(Action::Forward {
                            to: session.clone(),
                        });
                    }
                    if join.durable {
                        out.push(Action::Persist {
                            account: account.clone(),
                        });
                    }
                    left_for_good = true;
                    acct.rooms.remove(&room);
                }
            }
            // Subscriptions and probes are not room traffic.
            _ => return Outcome::pass(),
        }
        if let Some(at) = ping_armed {
            self.note_deadline(at);
        }
        if left_for_good {
            out.extend(self.autojoin_cleared(&account, &room));
        }

        if let Some(nick) = confirmed {
            out.extend(self.bookmark_for_join(&account, &room, &nick));
        }
        if self.accounts.get(&account).is_some_and(|a| a.is_empty()) {
            self.accounts.remove(&account);
        }
        Outcome::handled(out)
    }

    pub(super) fn handle_room_message(
        &mut self,
        now: Millis,
        account: BareJid,
        stanza: Element,
    ) -> Outcome {
        let Some(from) = stanza.attr("from").and_then(|f| f.parse::<Jid>().ok()) else {
            return Outcome::pass();
        };
        let room = from.to_bare();
        let (max_messages, max_bytes) = (
            self.config.history_max_messages,
            self.config.history_max_bytes,
        );
        let shared = &mut self.shared;
        let Some(join) = self
            .accounts
            .get_mut(&account)
            .and_then(|a| a.rooms.get_mut(&room))
        else {
            return Outcome::pass();
        };
        let mut out = Vec::new();
        match muc::stanza_type(&stanza) {
            Some("groupchat") => {
                join.last_seen = Some(now);
                if muc::is_subject_message(&stanza) {
                    let old = match (&join.resync, &join.cache.subject) {
                        (Some(_), Some(old)) => old.element().ok(),
                        _ => None,
                    };
                    join.cache.set_subject(shared, &stanza);
                    if join.resync.is_some() {
                        resync::subject(join, old.as_ref(), &stanza, &mut out);
                        return Outcome::handled(out);
                    }
                } else if muc::is_history_worthy(&stanza) {
                    join.cache
                        .push_history(shared, &stanza, &room, now, max_messages, max_bytes);
                }
                fork_to_members(join, &mut out);
            }
            Some("error") => {
                // An error about something a session sent through the account goes back to that
                // session; never bounced (an error to the room from the account is kickable).
                match stanza.attr("id").and_then(|id| join.sender_of(id)) {
                    Some(session) => deliver_to(&stanza, std::iter::once(session), &mut out),
                    None => deliver_to(&stanza, join.members.keys(), &mut out),
                }
            }
            _ => {
                // Private messages, invites and other room messages: to the joined sessions; with
                // none joined, Prosody delivers or stores it like any message to the account.
                if join.members.is_empty() {
                    return Outcome::pass();
                }
                fork_to_members(join, &mut out);
            }
        }
        Outcome::handled(out)
    }

    pub(super) fn handle_room_iq(
        &mut self,
        now: Millis,
        account: BareJid,
        stanza: Element,
    ) -> Outcome {
        if matches!(muc::stanza_type(&stanza), Some("get") | Some("set")) {
            return self.handle_occupant_iq(account, stanza);
        }
        let Some(id) = stanza.attr("id") else {
            return Outcome::pass();
        };
        let Some(acct) = self.accounts.get_mut(&account) else {
            return Outcome::pass();
        };
        if let Some(outcome) = self_ping_answer(now, &account, acct, id, &stanza) {
            return outcome;
        }
        let from_peer = acct
            .pending_iqs
            .get(id)
            .is_some_and(|p| Some(p.peer.as_str()) == stanza.attr("from"));
        if !from_peer {
            return Outcome::pass();
        }
        let Some(pending) = acct.pending_iqs.remove(id) else {
            return Outcome::pass();
        };
        let mut answer = super::replay::addressed(&stanza, &pending.session);
        xml::set_attr(&mut answer, "id", pending.original_id);
        Outcome::handled(vec![Action::Deliver {
            to: pending.session,
            stanza: answer,
        }])
    }
}

impl Minimix {
    /// An occupant's iq the room forwarded to the account. A directly joined client would
    /// answer it itself, so one joined session (the most available) gets it; its answer goes
    /// back from the account (see `from_client`). Account-level payloads (vCard, PEP), and
    /// iqs while no session is joined, are left to the server's modules, which answer for the
    /// account or with a proper error.
    fn handle_occupant_iq(&mut self, account: BareJid, stanza: Element) -> Outcome {
        const ACCOUNT_LEVEL: &[&str] = &[
            "vcard-temp",
            "urn:ietf:params:xml:ns:vcard-4.0",
            "http://jabber.org/protocol/pubsub",
        ];
        let Some(from) = stanza
            .attr("from")
            .and_then(|f| f.parse::<jid::FullJid>().ok())
        else {
            return Outcome::pass();
        };
        let Some(join) = self.join(&account, &from.to_bare()) else {
            return Outcome::pass();
        };
        if stanza
            .children()
            .next()
            .is_some_and(|c| ACCOUNT_LEVEL.contains(&c.ns().as_str()))
        {
            return Outcome::pass();
        }
        let target = join
            .members
            .iter()
            .max_by_key(|(_, m)| (super::presence::Availability::of(&m.payload), m.seq))
            .map(|(s, _)| s.clone());
        match target {
            Some(session) => Outcome::handled(vec![Action::Forward { to: session }]),
            None => Outcome::pass(),
        }
    }
}

/// The room's answer to the account's own XEP-0410 self-ping, if this is one. A result, or an
/// error other than `not-acceptable` (e.g. service-unavailable: pings unsupported), means the
/// account is still in; `not-acceptable` means the room dropped it (say, its server
/// restarted): the account rejoins quietly, the joined sessions see no leave.
fn self_ping_answer(
    now: Millis,
    account: &BareJid,
    acct: &mut super::Account,
    id: &str,
    stanza: &Element,
) -> Option<Outcome> {
    let from = stanza.attr("from")?.parse::<jid::FullJid>().ok()?;
    let room = from.to_bare();
    let join = acct.rooms.get_mut(&room)?;
    if join.ping_id.as_deref() != Some(id) {
        return None;
    }
    join.ping_id = None;
    let dropped = muc::stanza_type(stanza) == Some("error")
        && stanza
            .get_child("error", muc::NS_CLIENT)
            .is_some_and(|e| e.has_child("not-acceptable", muc::NS_STANZAS));
    let mut out = Vec::new();
    if dropped && join.phase == Phase::Joined {
        log::info!("{account}: {room} no longer has the account; rejoining");
        out.push(rejoin(now, account, &room, join, from.resource().as_str()));
    }
    Some(Outcome::handled(out))
}

/// A join from the account to a room it believes it is in, asking for the missed history.
pub(super) fn rejoin(
    now: Millis,
    account: &BareJid,
    room: &BareJid,
    join: &mut super::Join,
    nick: &str,
) -> Action {
    let mut stanza = join
        .shown
        .clone()
        .unwrap_or_else(|| xml::element("presence", muc::NS_CLIENT, &[]));
    if let Some(to) = super::occupant_jid(room, nick) {
        xml::set_attr(&mut stanza, "to", to.as_str());
    }
    stanza.append_child(super::persist::resync_payload(join));
    join.phase = Phase::Joining { since: now };
    resync::start(join);
    Action::Route {
        stanza: super::as_account(&stanza, account),
    }
}
