//! Inputs from rooms to the account's bare JID: occupants' presences, the account's own
//! presence, groupchat, subjects, private messages, errors and iq answers. Everything from a
//! room the account is in is claimed: an unclaimed groupchat or PM bounces, and the room
//! kicks the account for the bounce (status 333).

use std::collections::BTreeSet;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;

use super::account::{Answer, InFlight, Join, LeaveAnswer, Phase, PRESENCE_ID_PREFIX};
use super::config::Config;
use super::from_client::update_shown;
use super::heard;
use super::local::{self, JoinFailure};
use super::muc::{self, StatusCode};
use super::rejoin_window::Held;
use super::resync;
use super::room::Limits;
use super::shared::Interner;
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
        let config = &self.config;
        let shared = &mut self.shared;
        let Some(join) = self
            .accounts
            .get_mut(&account)
            .and_then(|a| a.rooms.get_mut(&room))
        else {
            return Outcome::pass();
        };
        let nick = from.resource().map(|r| r.as_str());
        let about = About {
            now,
            account: &account,
            room: &room,
            stanza: &stanza,
            config,
        };
        let mut out = Vec::new();
        let mut fx = Effects::default();
        match muc::stanza_type(&stanza) {
            Some("error") => on_error(&about, join, nick, &mut out, &mut fx),
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
                            .set_occupant(shared, nick, &stanza, config.max_occupants)
                        {
                            log::info!("{room}: more than {} occupants (minimix_max_occupants); not caching {nick}", config.max_occupants);
                        }
                    } else {
                        join.cache.remove_occupant(nick);
                    }
                    if join.resync.is_some() {
                        resync::occupant_presence(join, nick, &mut out);
                    } else {
                        fork_to_members(join, &mut out);
                    }
                } else if available {
                    on_self_presence(&about, shared, join, nick, &mut out, &mut fx);
                } else {
                    on_self_unavailable(&about, join, nick, &mut out, &mut fx);
                }
            }
            // Subscriptions and probes are not room traffic.
            _ => return Outcome::pass(),
        }
        if fx.ended {
            if let Some(acct) = self.accounts.get_mut(&account) {
                acct.rooms.remove(&room);
            }
        }
        for at in fx.deadlines {
            self.note_deadline(at);
        }
        if fx.left_for_good {
            out.extend(self.autojoin_cleared(&account, &room));
        }
        if let Some(nick) = fx.confirmed {
            out.extend(self.bookmark_for_join(&account, &room, &nick));
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
        let limits = Limits {
            messages: self.config.history_max_messages,
            bytes: self.config.history_max_bytes,
            archive_behind: self.config.history_from_archive,
        };
        let seq = self.seq;
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
                if !join.takes_groupchat(&stanza) {
                    log::debug!("{room}: groupchat to {account} before the answer to its join");
                    return Outcome::handled(out);
                }
                // Anything else ends a stale answer's history.
                join.stale_answer = false;
                join.last_seen = Some(now);
                if muc::is_subject_message(&stanza) {
                    // The subject ends a join sequence, and with it a rejoin's history: what
                    // the rejoin held back was missed. Before the join's self-presence, it is
                    // a live change in a room that still has the account: the answer is to come.
                    if !matches!(join.phase, Phase::Joining { .. }) {
                        for held in join.window.missed(true) {
                            release_missed(
                                &account, &room, join, shared, held, now, seq, limits, &mut out,
                            );
                        }
                        join.answer_open = false;
                        join.cache.replays_refill = false;
                    }
                    join.answer_unheard.clear();
                    let old = match (&join.resync, &join.cache.subject) {
                        (Some(_), Some(old)) => old.element().ok(),
                        _ => None,
                    };
                    join.cache.set_subject(shared, &stanza);
                    if join.resync.is_some() {
                        resync::subject(join, old.as_ref(), &stanza, &mut out);
                        return Outcome::handled(out);
                    }
                } else {
                    // A rejoin asks for history from a little before the last message heard:
                    // the room's replays of what was heard are recognised (see `heard`).
                    let replay = heard::replayed(&join.heard, &stanza, &room).cloned();
                    let delayed = stanza.has_child("delay", muc::NS_DELAY);
                    if join.window.is_open() && replay.is_none() {
                        if !delayed {
                            // A live message: the room's history is over.
                            for held in join.window.missed(false) {
                                release_missed(
                                    &account, &room, join, shared, held, now, seq, limits, &mut out,
                                );
                            }
                        } else if heard::may_be_replayed(&stanza) {
                            let held = Held {
                                key: heard::replay_key(&stanza, &room),
                                archive_id: super::archive::archive_id(&stanza, &account)
                                    .map(str::to_owned),
                                stanza,
                            };
                            if let Some(oldest) = join.window.hold(held, limits.unplaced()) {
                                release_missed(
                                    &account, &room, join, shared, oldest, now, seq, limits,
                                    &mut out,
                                );
                            }
                            return Outcome::handled(out);
                        }
                    }
                    if !delayed {
                        // A live message: the room's history is over.
                        join.answer_unheard.clear();
                    }
                    if muc::is_history_worthy(&stanza) {
                        // (A room replays the same history to every join of the account: the
                        // cache keeps each delayed message once.)
                        match &replay {
                            Some(heard) => join.cache.push_replay(
                                shared,
                                &stanza,
                                &room,
                                heard,
                                join.replays_before(),
                                limits,
                            ),
                            None => join.cache.push_history(shared, &stanza, &room, now, limits),
                        }
                    }
                    if let Some(heard) = replay {
                        // What this answer brought unheard before it is older than what the
                        // account heard: held by a rejoin, it was never missed (nobody gets
                        // it); given to the sessions that asked, it was their join's history.
                        // Either way it is taken back out of the archive, which keeps the
                        // room's order.
                        let held = join.window.not_missed();
                        if !held.is_empty() {
                            log::info!("{room}: {account}'s rejoin history replayed {} message(s) from before it joined; not missed, taken back out of the archive", held.len());
                        }
                        let given = std::mem::take(&mut join.answer_unheard);
                        if !given.is_empty() {
                            log::info!("{room}: {account}'s join history brought {} message(s) from before what it heard; taken back out of the archive", given.len());
                        }
                        let older = held.into_iter().filter_map(|h| h.archive_id).chain(given);
                        for id in older {
                            join.cache.forget_archive_id(&account, &id);
                            out.push(Action::Unarchive {
                                account: account.clone(),
                                id,
                            });
                        }
                        resync::replayed(join, heard.heard_seq, &mut out);
                        join.heard.delivered(&heard.key, seq);
                        return Outcome::handled(out);
                    }
                    if heard::may_be_replayed(&stanza) {
                        let key = heard::replay_key(&stanza, &room);
                        let archive_id = super::archive::archive_id(&stanza, &account);
                        if let Some(id) = archive_id.filter(|_| delayed) {
                            join.answer_unheard.push_back(id.to_owned());
                            if join.answer_unheard.len() > limits.unplaced() {
                                join.answer_unheard.pop_front();
                            }
                        }
                        join.heard.note(key, now, archive_id, seq);
                    }
                }
                fork_to_members(join, &mut out);
            }
            Some("error") => {
                // An error about something a session sent through the account goes back to that
                // session; never bounced (an error to the room from the account is kickable).
                match stanza.attr("id").and_then(|id| join.sender_of(id)) {
                    Some(Some(session)) => deliver_to(&stanza, std::iter::once(session), &mut out),
                    Some(None) => {
                        log::debug!("{room}: dropping an error about a closed session's message")
                    }
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
        let join_timeout = self.config.join_timeout_ms;
        if let Some((outcome, rejoined)) = self_ping_answer(now, &account, acct, id, &stanza) {
            if rejoined {
                self.note_deadline(now + join_timeout);
            }
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
/// restarted): the account rejoins quietly, the joined sessions see no leave. The flag says
/// whether it rejoins (a join deadline to arm).
fn self_ping_answer(
    now: Millis,
    account: &BareJid,
    acct: &mut super::Account,
    id: &str,
    stanza: &Element,
) -> Option<(Outcome, bool)> {
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
    let rejoined = dropped && join.phase == Phase::Joined;
    if rejoined {
        log::info!("{account}: {room} no longer has the account; rejoining");
        rejoin(
            now,
            account,
            &room,
            join,
            from.resource().as_str(),
            &mut out,
        );
    }
    Some((Outcome::handled(out), rejoined))
}

/// A message a rejoin held back turned out to be missed (see `rejoin_window`): it is taken
/// like any message heard now, except by a session that got it from the archive already
/// (then the archive's new copy of it goes back out).
#[allow(clippy::too_many_arguments)]
fn release_missed(
    account: &BareJid,
    room: &BareJid,
    join: &mut Join,
    shared: &mut Interner,
    held: Held,
    now: Millis,
    seq: u64,
    limits: Limits,
    out: &mut Vec<Action>,
) {
    let Held {
        mut stanza,
        key,
        mut archive_id,
    } = held;
    let hash = heard::key_hash(&key);
    let had_it = |m: &super::account::Member| m.from_archive.contains(&hash);
    let archived_before = join.members.values().any(had_it);
    if archived_before {
        if let Some(id) = archive_id.take() {
            super::archive::strip_archive_id(&mut stanza, account);
            out.push(Action::Unarchive {
                account: account.clone(),
                id,
            });
        }
    }
    if muc::is_history_worthy(&stanza) {
        join.cache.push_history(shared, &stanza, room, now, limits);
    }
    join.heard.note(key, now, archive_id.as_deref(), seq);
    deliver_to(
        &stanza,
        join.members
            .iter()
            .filter(|(_, m)| !had_it(m))
            .map(|(s, _)| s),
        out,
    );
}

/// A join from the account to a room it believes it is in, asking for the missed history.
pub(super) fn rejoin(
    now: Millis,
    account: &BareJid,
    room: &BareJid,
    join: &mut super::Join,
    nick: &str,
    out: &mut Vec<Action>,
) {
    let mut stanza = join
        .shown
        .clone()
        .unwrap_or_else(|| xml::element("presence", muc::NS_CLIENT, &[]));
    if let Some(to) = super::occupant_jid(room, nick) {
        xml::set_attr(&mut stanza, "to", to.as_str());
    }
    stanza.append_child(super::persist::resync_payload(join));
    join.phase = Phase::Joining { since: now };
    join.join_sent = join.cache.arrivals();
    join.answer_open = true;
    join.cache.replays_refill = join.cache.history.is_empty();
    resync::start(join);
    let mut stanza = super::as_account(&stanza, account);
    let evicted = join.send_presence(&mut stanza);
    local::tell_left(room, join, evicted, out);
    out.push(Action::Route { stanza });
}

/// The room presence being handled, and where it is from.
struct About<'a> {
    now: Millis,
    account: &'a BareJid,
    room: &'a BareJid,
    stanza: &'a Element,
    config: &'a Config,
}

/// What a room presence changed beyond the join itself, for the caller to finish.
#[derive(Default)]
struct Effects {
    /// The account is out of the room: its state goes.
    ended: bool,
    /// ... for good, as far as bookmark sync is concerned (autojoin gets cleared).
    left_for_good: bool,
    /// A join sessions waited for was confirmed with this nick (`minimix_bookmark_joins`).
    confirmed: Option<String>,
    /// Deadlines to arm.
    deadlines: Vec<Millis>,
}

impl Effects {
    /// The join ends; a durable one is saved without it.
    fn end(&mut self, about: &About, join: &Join, out: &mut Vec<Action>) {
        self.ended = true;
        if join.durable {
            out.push(Action::Persist {
                account: about.account.clone(),
            });
        }
    }
}

/// A presence error from the room: the refusal of a nick change, of the account's join, or
/// of a presence update (a room that no longer has the account says so).
fn on_error(
    about: &About,
    join: &mut Join,
    nick: Option<&str>,
    out: &mut Vec<Action>,
    fx: &mut Effects,
) {
    let id = about
        .stanza
        .attr("id")
        .filter(|id| id.starts_with(PRESENCE_ID_PREFIX));
    let refused_nick_change = join.nick_change.take_if(|c| match id {
        Some(id) => c.id == id,
        None => Some(c.nick.as_str()) == nick,
    });
    let (answer, dropped) = join.answer_presence(about.stanza.attr("id"));
    local::tell_left(about.room, join, dropped, out);
    if let Some(change) = refused_nick_change {
        if answer == Answer::Stale {
            // Asked before a leave still in flight: the account is on its way out, and the
            // session that asked (taken out by that leave) may be joining afresh.
            log::debug!(
                "{}: dropping the refusal of a nick change sent before a leave",
                about.room
            );
            return;
        }
        // Only the session that asked hears it; the room still shows what it showed before.
        if let Some(session) = &change.session {
            deliver_to(about.stanza, std::iter::once(session), out);
        }
        join.shown = change.shown_before;
        update_shown(about.account, about.room, join, about.config, out);
        return;
    }
    match (answer, join.phase) {
        (Answer::Stale, _) => {
            // About a presence sent before a leave still in flight: the leave decides.
            log::debug!(
                "{}: dropping an error about a presence sent before a leave",
                about.room
            );
        }
        (_, Phase::Joined) => deliver_to(about.stanza, join.members.keys(), out),
        (_, Phase::Joining { .. }) => {
            // The join failed: every waiting session hears it, and nothing is left behind to
            // block a later join.
            local::fail_join(about.room, join, JoinFailure::Refused(about.stanza), out);
            fx.end(about, join, out);
            // A room that refuses for good (gone, forbidden, members-only, …) should not be
            // rejoined by every device: that is what autojoin would do.
            fx.left_for_good = about
                .stanza
                .get_child("error", muc::NS_CLIENT)
                .and_then(|e| e.attr("type"))
                .is_some_and(|t| t == "cancel" || t == "auth");
        }
        (_, Phase::Leaving) => {
            // Only leaves in flight, and the room errs: it will not answer them now.
            let sessions = join.leaving().cloned().collect();
            local::tell_left(about.room, join, sessions, out);
            fx.end(about, join, out);
            fx.left_for_good = true;
        }
    }
}

/// The room's presence about the account itself (110): the answer to its join, presence
/// change or nick change, or a change by the room (a new role, say).
fn on_self_presence(
    about: &About,
    shared: &mut Interner,
    join: &mut Join,
    nick: &str,
    out: &mut Vec<Action>,
    fx: &mut Effects,
) {
    let (answer, dropped) = join.answer_presence(about.stanza.attr("id"));
    local::tell_left(about.room, join, dropped, out);
    if answer == Answer::Stale || (answer == Answer::Unsolicited && join.leave_in_flight()) {
        // About something sent before a leave still in flight: the account is on its way out
        // (and any join after that leave waits for its own answer).
        log::debug!("{}: self-presence from before a leave", about.room);
        join.stale_answer = true;
        return;
    }
    join.stale_answer = false;
    // A new answer: its history is placed against what was heard from its first message.
    join.answer_unheard.clear();
    if join.unwanted {
        // A join that timed out got through after all, and no session joined meanwhile: the
        // account leaves again.
        join.unwanted = false;
        join.phase = Phase::Leaving;
        join.nick = nick.to_owned();
        if let Some(to) = super::occupant_jid(about.room, nick) {
            let leave = xml::element(
                "presence",
                muc::NS_CLIENT,
                &[("type", "unavailable"), ("to", to.as_str())],
            );
            let mut leave = super::as_account(&leave, about.account);
            let evicted = join.send_leave(&mut leave, Default::default(), about.now, false);
            local::tell_left(about.room, join, evicted, out);
            out.push(Action::Route { stanza: leave });
        }
        fx.deadlines.push(about.now + about.config.join_timeout_ms);
        return;
    }
    let confirming = join.phase != Phase::Joined;
    if confirming || join.nick != nick || !join.durable {
        out.push(Action::Persist {
            account: about.account.clone(),
        });
    }
    join.durable = true;
    if confirming && !join.members.is_empty() {
        fx.confirmed = Some(nick.to_owned());
    }
    join.nick = nick.to_owned();
    if let Phase::Joining { .. } = join.phase {
        // The history that follows goes before live messages that arrived since the join was
        // sent (a room that already had the account went on talking).
        join.answer_open = true;
    }
    join.phase = Phase::Joined;
    if confirming {
        // XEP-0410: a (re)join starts the self-ping interval afresh; an old deadline may be
        // long past.
        join.next_ping = about.config.ping_interval_ms.map(|i| about.now + i);
        fx.deadlines.extend(join.next_ping);
    }
    join.nick_change = None;
    // After a quiet rejoin, sessions that were joined hear only what changed.
    let old_self = match (&join.resync, &join.cache.self_presence) {
        (Some(_), Some(old)) => old.element().ok(),
        _ => None,
    };
    join.cache.set_self_presence(shared, about.stanza);
    let told: BTreeSet<FullJid> = join
        .members
        .keys()
        .filter(|s| !resync::self_presence_is_news(join, s, old_self.as_ref(), about.stanza))
        .cloned()
        .collect();
    for (session, member) in join.members.iter_mut() {
        member.in_room = true;
        if told.contains(session) {
            continue;
        }
        let mut s = super::replay::addressed(about.stanza, session);
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
        member.requested_nick = nick.to_owned();
    }
    resync::occupants_gone(join, about.room, out);
    if join.members.is_empty() {
        // Joined with no session (autojoin, a restored room): `minimix_leave_after` counts.
        let idle = *join.idle_since.get_or_insert(about.now);
        if let Some(after) = about.config.leave_after_ms {
            fx.deadlines.push(idle + after);
        }
    }
    // Sessions may have changed their presence while the join was in flight.
    update_shown(about.account, about.room, join, about.config, out);
}

/// The room's unavailable about the account itself: a nick change under way (303), the
/// account removed (kick, ban, destruction, …), or the answer to a leave.
fn on_self_unavailable(
    about: &About,
    join: &mut Join,
    nick: &str,
    out: &mut Vec<Action>,
    fx: &mut Effects,
) {
    let stanza = about.stanza;
    if muc::has_status(stanza, StatusCode::NickChanged) {
        // The account's nick is changing; the new self-presence follows. Every joined session
        // sees this 303, so the new nick is what each of them expects.
        if nick != join.nick || join.awaits_own_answer() {
            // Not the nick the account has here, or before the answer to its join: about a
            // join the core gave up on.
            log::debug!(
                "{}: 303 from {nick}, not the account's nick change",
                about.room
            );
            return;
        }
        if join.leave_in_flight() {
            // The change came before a leave: those who were in then are the ones told.
            let first_leave = join.in_flight.iter().find_map(|f| match f {
                InFlight::Leave { sessions, .. } => Some(sessions.clone()),
                InFlight::Presence { .. } => None,
            });
            for session in first_leave.unwrap_or_default() {
                out.push(Action::Forward { to: session });
            }
            return;
        }
        if let Some(new_nick) = muc::item_nick(stanza) {
            for member in join.members.values_mut() {
                member.requested_nick = new_nick.to_owned();
            }
        }
        fork_to_members(join, out);
        return;
    }
    let removed = muc::is_destroy(stanza)
        || muc::status_codes(stanza).iter().any(|c| {
            matches!(
                c,
                StatusCode::Banned
                    | StatusCode::Kicked
                    | StatusCode::AffiliationRemoved
                    | StatusCode::MembersOnly
                    | StatusCode::Shutdown
                    | StatusCode::ErrorKick
            )
        });
    if !removed {
        match join.answer_leave(stanza.attr("id")) {
            LeaveAnswer::Answered(done) => {
                // The answer to one of the account's leaves: for the sessions that left with it.
                for session in done.sessions {
                    out.push(Action::Forward { to: session });
                }
                if join.phase == Phase::Leaving && !join.leave_in_flight() {
                    fx.end(about, join, out);
                    fx.left_for_good = done.for_good;
                } else {
                    // A join sent after that leave is next: a new membership, and the room
                    // sends everything afresh. What the account heard in the old one is not
                    // a replay to recognise: the new join's history is news to its sessions,
                    // and is buffered and archived in the room's order.
                    join.cache = Default::default();
                    join.join_sent = 0;
                    join.heard = Default::default();
                    join.last_seen = None;
                }
                return;
            }
            LeaveAnswer::Forgotten => {
                // Its sessions were told long ago, and whatever was sent since comes next.
                log::debug!("{}: answer to a leave given up on", about.room);
                return;
            }
            LeaveAnswer::Unasked => {}
        }
    }
    // The account is out of the room: kicked (307), banned (301), removed (321, 322, 332,
    // 333), the room destroyed, or out without having asked. Everyone joined or leaving hears
    // it, and the state is dropped so a later join starts afresh.
    log::info!(
        "{} removed from {} (codes {:?})",
        about.account,
        about.room,
        muc::status_codes(stanza)
    );
    let everyone: std::collections::BTreeSet<_> =
        join.members.keys().chain(join.leaving()).cloned().collect();
    for session in everyone {
        out.push(Action::Forward { to: session });
    }
    fx.end(about, join, out);
    fx.left_for_good = true;
}
