//! Inputs from the account's own sessions: joins, leaves, presence updates, nick changes,
//! and messages and iqs towards rooms the account is in.
//!
//! What is rewritten to come from the account, and why:
//! - joins, presence updates, nick changes and leaves: the account is the occupant;
//! - groupchat, subject changes, invites, declines and private messages: the room accepts
//!   them only from an occupant's real JID;
//! - iq get/set to an occupant (vCard, version, disco, ping): same reason; the id is
//!   rewritten so the answer finds the asking session;
//! - muc#admin and message moderation iqs to the room: the room checks the actor's role,
//!   which only an occupant has;
//! - iq result/error to an occupant: answers to iqs the room forwarded to the account.
//!
//! Left alone on purpose (they pass from the session's full JID): iqs the room answers by
//! the sender's bare-JID affiliation and whose answers must reach the asking session
//! (MAM queries, disco#info/items to the room, owner configuration, registration), and any
//! stanza to a room from a session that has not joined it (the room answers it as plain MUC).

use jid::{BareJid, FullJid, Jid};
use minidom::Element;

use super::account::{Join, Member, NickChange, PendingIq, Phase};
use super::local;
use super::muc::{self, HistoryRequest, NS_CLIENT, NS_MUC, NS_MUC_ADMIN, NS_PING};
use super::presence;
use super::replay;
use super::xml;
use super::{as_account, occupant_jid, Action, Config, Millis, Minimix, Outcome};

/// Namespaces of iqs to the room bare JID that need the occupant (the account) as sender.
const ROOM_IQS_AS_ACCOUNT: &[&str] = &[
    NS_MUC_ADMIN,
    "urn:xmpp:message-moderate:0",
    "urn:xmpp:message-moderate:1",
];

impl Minimix {
    pub(super) fn handle_client_presence(
        &mut self,
        now: Millis,
        session: FullJid,
        stanza: Element,
    ) -> Outcome {
        let Some(to) = stanza.attr("to").and_then(|t| t.parse::<FullJid>().ok()) else {
            return Outcome::pass();
        };
        match muc::stanza_type(&stanza) {
            None if muc::is_join_request(&stanza) => self.handle_join(now, session, to, stanza),
            None => self.handle_presence_update(session, to, stanza),
            Some("unavailable") => self.handle_leave(now, session, to, stanza),
            Some("error") if self.tracks(&session.to_bare(), &to.to_bare()) => {
                // An error from a session towards the room must never turn into an error from
                // the account (a kickable error gets the account removed).
                log::debug!(
                    "dropping presence error from {session} to tracked room {}",
                    to.to_bare()
                );
                Outcome::handled(Vec::new())
            }
            _ => Outcome::pass(),
        }
    }

    fn handle_join(
        &mut self,
        now: Millis,
        session: FullJid,
        to: FullJid,
        stanza: Element,
    ) -> Outcome {
        let account = session.to_bare();
        let room = to.to_bare();
        let nick = to.resource().as_str().to_owned();
        let payload = presence::payload_of(&stanza);
        let member = Member {
            requested_nick: nick.clone(),
            in_room: false,
            payload: payload.clone(),
            seq: self.seq,
            joined_seq: self.seq,
            from_archive: Default::default(),
        };
        let config = &self.config;
        let rooms_in_use = self.accounts.get(&account).map_or(0, |a| a.rooms.len());
        let acct = self.accounts.entry(account.clone()).or_default();
        // Join flood guard: a sliding minute of joins that cost a room something (the account
        // joining a room it is not in); attaching a session to a joined room is local and free.
        let joins_room = !acct.rooms.contains_key(&room);
        while acct
            .recent_joins
            .front()
            .is_some_and(|t| *t + 60_000 <= now)
        {
            acct.recent_joins.pop_front();
        }
        if joins_room && acct.recent_joins.len() >= config.max_joins_per_minute {
            log::info!(
                "{account} sent more than {} joins in a minute (minimix_max_joins_per_minute); refusing {room}",
                config.max_joins_per_minute
            );
            if acct.is_empty() {
                self.accounts.remove(&account);
            }
            let error = local::join_error(
                to.as_str(),
                &session,
                "wait",
                "policy-violation",
                "Too many joins; try again later",
            );
            return Outcome::handled(vec![Action::Deliver {
                to: session,
                stanza: error,
            }]);
        }
        if joins_room {
            acct.recent_joins.push_back(now);
            self.note_deadline(now + 60_000);
        }
        let acct = self.accounts.entry(account.clone()).or_default();
        let config = &self.config;

        let mut out = Vec::new();
        if let Some(join) = acct.rooms.get_mut(&room) {
            // A session joining again after its own leave no longer waits for that leave's
            // answer: it gets the answer to its join instead (never both).
            join.stop_leaving(&session);
        }
        match acct.rooms.get_mut(&room) {
            None => {
                if rooms_in_use >= config.max_rooms {
                    log::info!("{account} is in {rooms_in_use} rooms (minimix_max_rooms); refusing a join to {room}");
                    if acct.is_empty() {
                        self.accounts.remove(&account);
                    }
                    let error = local::join_error(
                        to.as_str(),
                        &session,
                        "wait",
                        "resource-constraint",
                        "Too many rooms joined",
                    );
                    return Outcome::handled(vec![Action::Deliver {
                        to: session,
                        stanza: error,
                    }]);
                }
                let mut join = Join::new(nick, now, self.seq);
                join.password = stanza
                    .get_child("x", NS_MUC)
                    .and_then(|x| x.get_child("password", NS_MUC))
                    .map(|p| p.text());
                join.members.insert(session, member);
                join.shown = Some(payload);
                let mut routed = as_account(&stanza, &account);
                let _nothing_to_evict = join.send_presence(&mut routed);
                acct.rooms.insert(room, join);
                out.push(Action::Route { stanza: routed });
                let deadline = now + config.join_timeout_ms;
                self.note_deadline(deadline);
            }
            Some(join) => match join.phase {
                Phase::Joined => {
                    join.idle_since = None;
                    // The replay tells the session the account's nick (210 if it asked another).
                    join.members.insert(
                        session.clone(),
                        Member {
                            in_room: true,
                            requested_nick: join.nick.clone(),
                            ..member
                        },
                    );
                    let history = HistoryRequest::from_join(&stanza);
                    let joiner = replay::LateJoiner {
                        session: &session,
                        requested_nick: &nick,
                        history: &history,
                        payload: &payload,
                    };
                    let limits = replay::HistoryLimits {
                        default: config.history_length,
                        max: config.history_max_messages,
                        from_archive: config.history_from_archive,
                    };
                    out.extend(replay::replay_for(
                        &room,
                        &join.cache,
                        &join.nick,
                        &joiner,
                        limits,
                        now,
                    ));
                    update_shown(&account, &room, join, config, &mut out);
                }
                Phase::Joining { .. } => {
                    // The account's join is in flight: this session waits with the others. It gets
                    // the occupants that arrived so far now, and the rest as it arrives.
                    join.idle_since = None;
                    join.unwanted = false;
                    // A session that was joined and joins again during a quiet rejoin expects a
                    // whole answer, not just what changed.
                    if let Some(resync) = join.resync.as_mut() {
                        resync.sessions.remove(&session);
                    }
                    join.members.insert(session.clone(), member);
                    out.extend(replay::occupants_for(&join.cache, &session));
                }
                Phase::Leaving => {
                    // The room will answer the account's leave first, then this join.
                    join.phase = Phase::Joining { since: now };
                    join.nick = nick;
                    join.idle_since = None;
                    join.unwanted = false;
                    join.members.insert(session, member);
                    join.shown = Some(payload);
                    // The cache and heard memory stay until the room answers the leave (a new
                    // membership then starts afresh): should the room never get the leave, the
                    // membership goes on, and so does what the account knows of it.
                    join.window = Default::default();
                    // A join, not a rejoin: its answer is the first of a new membership.
                    join.answer_open = false;
                    join.join_sent = join.cache.arrivals();
                    let mut routed = as_account(&stanza, &account);
                    let evicted = join.send_presence(&mut routed);
                    local::tell_left(&room, join, evicted, &mut out);
                    out.push(Action::Route { stanza: routed });
                    let deadline = now + config.join_timeout_ms;
                    self.note_deadline(deadline);
                }
            },
        }
        Outcome::handled(out)
    }

    fn handle_presence_update(
        &mut self,
        session: FullJid,
        to: FullJid,
        stanza: Element,
    ) -> Outcome {
        let account = session.to_bare();
        let room = to.to_bare();
        let seq = self.seq;
        let config = &self.config;
        let Some(join) = self
            .accounts
            .get_mut(&account)
            .and_then(|a| a.rooms.get_mut(&room))
        else {
            return Outcome::pass();
        };
        let Some(member) = join.members.get_mut(&session) else {
            // Not joined from this session: the room answers it as it would any non-occupant.
            return Outcome::pass();
        };
        member.payload = presence::payload_of(&stanza);
        member.seq = seq;
        let mut out = Vec::new();
        if !member.in_room {
            // Still waiting for its join: not an occupant yet, so no nick change either (a room
            // would refuse it); what it shows counts once the join is confirmed.
            return Outcome::handled(out);
        }
        let nick = to.resource().as_str();
        if nick != join.nick {
            // A nick change is the account's: every joined session sees the room's 303.
            let shown_before = join.shown.replace(presence::payload_of(&stanza));
            let mut routed = as_account(&stanza, &account);
            let evicted = join.send_presence(&mut routed);
            local::tell_left(&room, join, evicted, &mut out);
            join.nick_change = Some(NickChange {
                id: routed.attr("id").unwrap_or_default().to_owned(),
                session: Some(session),
                nick: nick.to_owned(),
                shown_before,
            });
            out.push(Action::Route { stanza: routed });
        } else {
            update_shown(&account, &room, join, config, &mut out);
        }
        Outcome::handled(out)
    }

    fn handle_leave(
        &mut self,
        now: Millis,
        session: FullJid,
        to: FullJid,
        stanza: Element,
    ) -> Outcome {
        let account = session.to_bare();
        let room = to.to_bare();
        let config = &self.config;
        let leave_deadline = now + config.join_timeout_ms;
        let Some(join) = self
            .accounts
            .get_mut(&account)
            .and_then(|a| a.rooms.get_mut(&room))
        else {
            return Outcome::pass();
        };
        if join.members.remove(&session).is_none() {
            // Already leaving, or never joined from this session: nothing for the room.
            return if join.is_leaving(&session) {
                Outcome::handled(Vec::new())
            } else {
                Outcome::pass()
            };
        }
        forget_nick_change_asker(join, &session);
        let mut out = Vec::new();
        if join.members.is_empty() {
            // The last joined session leaves: so does the account. The session gets the room's
            // own self-unavailable when it comes (or a local one if the room never answers).
            join.phase = Phase::Leaving;
            let mut leave = xml::element("presence", NS_CLIENT, &[("type", "unavailable")]);
            for status in stanza.children().filter(|c| c.is("status", NS_CLIENT)) {
                leave.append_child(status.clone());
            }
            if let Some(to) = occupant_jid(&room, &join.nick) {
                xml::set_attr(&mut leave, "to", to.as_str());
            }
            let mut leave = as_account(&leave, &account);
            let evicted = join.send_leave(&mut leave, [session].into(), now, true);
            local::tell_left(&room, join, evicted, &mut out);
            out.push(Action::Route { stanza: leave });
            self.note_deadline(leave_deadline);
        } else {
            let unavailable = local::self_unavailable(&room, join, &session, &[]);
            out.push(Action::Deliver {
                to: session,
                stanza: unavailable,
            });
            update_shown(&account, &room, join, config, &mut out);
        }
        Outcome::handled(out)
    }

    pub(super) fn handle_client_message(
        &mut self,
        _now: Millis,
        session: FullJid,
        mut stanza: Element,
    ) -> Outcome {
        let Some(to) = stanza.attr("to").and_then(|t| t.parse::<Jid>().ok()) else {
            return Outcome::pass();
        };
        let account = session.to_bare();
        let room = to.to_bare();
        let seq = self.seq;
        let Some(join) = self
            .accounts
            .get_mut(&account)
            .and_then(|a| a.rooms.get_mut(&room))
        else {
            return Outcome::pass();
        };
        if muc::stanza_type(&stanza) == Some("error") {
            log::debug!("dropping message error from {session} to tracked room {room}");
            return Outcome::handled(Vec::new());
        }
        if !join.members.contains_key(&session) {
            return Outcome::pass();
        }
        let (id, id_added) = match stanza.attr("id") {
            Some(id) => (id.to_owned(), false),
            None => {
                let id = format!("minimix-{seq}");
                xml::set_attr(&mut stanza, "id", id.clone());
                (id, true)
            }
        };
        join.remember_sent(&id, &session);
        let mut out = Vec::new();
        if to.resource().is_some() && muc::stanza_type(&stanza) == Some("chat") {
            // A private message: the account's other joined sessions see what this one sent,
            // as XEP-0280 sent carbons (mod_carbons never sees it: the module consumed it).
            for other in join.members.keys().filter(|s| **s != session) {
                out.push(Action::Carbon {
                    to: other.clone(),
                    stanza: muc::sent_carbon(&stanza, &account, other),
                });
            }
        }
        // The session's own stanza goes on, only re-sent from the account: nothing of its
        // payload is re-encoded (or lost).
        out.push(Action::RouteInput {
            from: account,
            id: id_added.then_some(id),
        });
        Outcome::handled(out)
    }

    pub(super) fn handle_client_iq(
        &mut self,
        now: Millis,
        session: FullJid,
        stanza: Element,
    ) -> Outcome {
        let Some(to) = stanza.attr("to").and_then(|t| t.parse::<Jid>().ok()) else {
            return Outcome::pass();
        };
        let account = session.to_bare();
        let room = to.to_bare();
        let seq = self.seq;
        let config = &self.config;
        let Some(acct) = self.accounts.get_mut(&account) else {
            return Outcome::pass();
        };
        let Some(join) = acct.rooms.get(&room) else {
            return Outcome::pass();
        };
        let is_member = join.members.contains_key(&session);
        let to_occupant = to.resource().map(|r| r.as_str().to_owned());
        let id = stanza.attr("id").unwrap_or_default().to_owned();
        match muc::stanza_type(&stanza) {
            Some("get") | Some("set") => {
                let is_self_ping = muc::stanza_type(&stanza) == Some("get")
                    && stanza.has_child("ping", NS_PING)
                    && to_occupant.as_deref() == Some(join.nick.as_str());
                if is_self_ping {
                    // XEP-0410: answered from local state: joined means this session is a member
                    // of a room the account is in.
                    let reply = if is_member && join.phase == Phase::Joined {
                        iq_reply(&stanza, &session, "result", None)
                    } else {
                        iq_reply(
                            &stanza,
                            &session,
                            "error",
                            Some(("cancel", "not-acceptable")),
                        )
                    };
                    return Outcome::handled(vec![Action::Deliver {
                        to: session,
                        stanza: reply,
                    }]);
                }
                if !is_member {
                    return Outcome::pass();
                }
                let needs_account = to_occupant.is_some()
                    || stanza
                        .children()
                        .next()
                        .is_some_and(|c| ROOM_IQS_AS_ACCOUNT.contains(&c.ns().as_str()));
                if !needs_account {
                    return Outcome::pass();
                }
                // Room-wide bound: expired mappings go first, then refuse when still full.
                acct.pending_iqs.retain(|_, p| p.expires > now);
                if acct.pending_iqs.len() >= config.max_pending_iqs {
                    log::info!(
                        "{account} has {} iqs in flight (minimix_max_pending_iqs)",
                        acct.pending_iqs.len()
                    );
                    let reply = iq_reply(
                        &stanza,
                        &session,
                        "error",
                        Some(("wait", "resource-constraint")),
                    );
                    return Outcome::handled(vec![Action::Deliver {
                        to: session,
                        stanza: reply,
                    }]);
                }
                let new_id = format!("minimix-{seq:x}");
                let expires = now + config.iq_timeout_ms;
                acct.pending_iqs.insert(
                    new_id.clone(),
                    PendingIq {
                        session,
                        original_id: id,
                        peer: to.as_str().to_owned(),
                        expires,
                    },
                );
                let mut routed = as_account(&stanza, &account);
                xml::set_attr(&mut routed, "id", new_id);
                self.note_deadline(expires);
                Outcome::handled(vec![Action::Route { stanza: routed }])
            }
            Some("result") | Some("error") if is_member && to_occupant.is_some() => {
                // The answer to an iq an occupant sent the account: it must come from the
                // account, with the room's id unchanged.
                Outcome::handled(vec![Action::Route {
                    stanza: as_account(&stanza, &account),
                }])
            }
            _ => Outcome::pass(),
        }
    }

    pub(super) fn handle_session_closed(&mut self, now: Millis, session: FullJid) -> Outcome {
        let account = session.to_bare();
        let config = &self.config;
        let Some(acct) = self.accounts.get_mut(&account) else {
            return Outcome::pass();
        };
        let mut out = Vec::new();
        let mut idle = false;
        for (room, join) in acct.rooms.iter_mut() {
            join.stop_leaving(&session);
            join.forget_sender(&session);
            forget_nick_change_asker(join, &session);
            if join.members.remove(&session).is_some() {
                if join.members.is_empty() {
                    // The account stays in the room; it just has no device there any more.
                    join.idle_since = Some(now);
                    idle = true;
                }
                update_shown(&account, room, join, config, &mut out);
            }
        }
        acct.pending_iqs.retain(|_, p| p.session != session);
        if idle {
            if let Some(after) = config.leave_after_ms {
                self.note_deadline(now + after);
            }
        }
        Outcome::pass_with(out)
    }
}

/// The session that asked for a nick change is gone: the room's answer reaches the others
/// (an accepted change is the account's), a refusal nobody.
fn forget_nick_change_asker(join: &mut Join, session: &FullJid) {
    if let Some(change) = join
        .nick_change
        .as_mut()
        .filter(|c| c.session.as_ref() == Some(session))
    {
        change.session = None;
    }
}

/// Sends the account's aggregate presence to the room when it differs from what the room has.
pub(super) fn update_shown(
    account: &BareJid,
    room: &BareJid,
    join: &mut Join,
    config: &Config,
    out: &mut Vec<Action>,
) {
    if join.phase != Phase::Joined {
        return;
    }
    let desired = if join.members.is_empty() {
        presence::away_payload(config.away_show.as_deref(), config.away_status.as_deref())
    } else {
        match presence::aggregate(join.members.values().map(|m| (&m.payload, m.seq))) {
            Some(p) => p.clone(),
            None => return,
        }
    };
    if join.shown.as_ref() == Some(&desired) {
        return;
    }
    let Some(to) = occupant_jid(room, &join.nick) else {
        return;
    };
    let mut update = desired.clone();
    xml::set_attr(&mut update, "to", to.as_str());
    join.shown = Some(desired);
    let mut update = as_account(&update, account);
    let evicted = join.send_presence(&mut update);
    local::tell_left(room, join, evicted, out);
    out.push(Action::Route { stanza: update });
}

/// A reply to a session's iq, from the JID it asked: a result, or an error.
fn iq_reply(
    request: &Element,
    session: &FullJid,
    kind: &str,
    error: Option<(&str, &str)>,
) -> Element {
    let mut reply = xml::element("iq", NS_CLIENT, &[("type", kind), ("to", session.as_str())]);
    if let Some(from) = request.attr("to") {
        xml::set_attr(&mut reply, "from", from);
    }
    if let Some(id) = request.attr("id") {
        xml::set_attr(&mut reply, "id", id);
    }
    if let Some((error_type, condition)) = error {
        for child in request.children() {
            reply.append_child(child.clone());
        }
        reply.append_child(muc::error_element(error_type, condition, None));
    }
    reply
}
