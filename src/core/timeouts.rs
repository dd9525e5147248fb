//! Deadlines: joins the room never answered, rooms left idle (`minimix_leave_after`) and iq
//! mappings that expired. The caller arms one timer at `poll_timeout`.

use minidom::Element;

use super::account::Phase;
use super::local::{self, JoinFailure};
use super::muc::{self, NS_CLIENT};
use super::xml;
use super::{as_account, occupant_jid, Action, Millis, Minimix, Outcome};

impl Minimix {
    /// When `handle_timeout` wants to run next (it may be early, never late).
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.next_deadline
    }

    /// Acts on every deadline due at `now` and recomputes the next one.
    pub fn handle_timeout(&mut self, now: Millis) -> Outcome {
        let mut out = Vec::new();
        let mut next: Option<Millis> = None;
        let mut note = |t: Millis| next = Some(next.map_or(t, |n: Millis| n.min(t)));
        let (join_timeout, leave_after) = (self.config.join_timeout_ms, self.config.leave_after_ms);
        let ping_interval = self.config.ping_interval_ms;
        let mut seq = self.seq;
        // Rooms left because the room never answered the leave (bookmark sync follows).
        let mut left = Vec::new();
        for (account, acct) in self.accounts.iter_mut() {
            acct.rooms.retain(|room, join| {
                if join.phase == Phase::Joined {
                    // XEP-0410 liveness: is the account still in the room?
                    if join.next_ping.is_some_and(|at| at <= now) {
                        seq += 1;
                        let id = format!("minimix-ping-{seq:x}");
                        if let Some(to) = occupant_jid(room, &join.nick) {
                            let mut ping = xml::element(
                                "iq",
                                NS_CLIENT,
                                &[("type", "get"), ("id", &id), ("to", to.as_str())],
                            );
                            ping.append_child(Element::bare("ping", muc::NS_PING));
                            out.push(Action::Route {
                                stanza: as_account(&ping, account),
                            });
                            join.ping_id = Some(id);
                        }
                        join.next_ping = ping_interval.map(|i| now + i);
                    }
                    if let Some(at) = join.next_ping {
                        note(at);
                    }
                }
                // Leaves the room never answered (it no longer had the account, or one was
                // lost): their sessions are told they are out, as they asked.
                let expired = join.expire_leaves(now.saturating_sub(join_timeout));
                if !expired.sessions.is_empty() {
                    log::info!("{account}: {room} did not answer a leave");
                }
                local::tell_left(room, join, expired.sessions, &mut out);
                if let Some(sent) = join.oldest_leave() {
                    note(sent + join_timeout);
                }
                match join.phase {
                    Phase::Leaving if !join.leave_in_flight() => {
                        if join.durable {
                            out.push(Action::Persist {
                                account: account.clone(),
                            });
                        }
                        if expired.for_good {
                            left.push((account.clone(), room.clone()));
                        }
                        return false;
                    }
                    Phase::Joining { since } if join.unwanted && since + join_timeout <= now => {
                        // Nobody wanted it any more, and the room never answered: forgotten.
                        // No leave is sent: a leave the room might answer after a much later
                        // join would tell that join's sessions they are out.
                        log::debug!("{account}: giving up on the join of {room}");
                        return false;
                    }
                    Phase::Joining { since } if since + join_timeout <= now => {
                        log::info!("{account}: join of {room} timed out");
                        local::fail_join(room, join, JoinFailure::TimedOut, &mut out);
                        // The join may still arrive: for one more timeout, a late answer is
                        // taken (and followed by a leave, or kept for a session joining
                        // meanwhile) rather than left to bounce.
                        join.members.clear();
                        join.nick_change = None;
                        join.unwanted = true;
                        join.phase = Phase::Joining { since: now };
                        note(now + join_timeout);
                        if join.durable {
                            out.push(Action::Persist {
                                account: account.clone(),
                            });
                        }
                    }
                    Phase::Joining { since } => note(since + join_timeout),
                    Phase::Joined if join.members.is_empty() => {
                        if let (Some(after), Some(idle)) = (leave_after, join.idle_since) {
                            if idle + after <= now {
                                log::info!(
                                    "{account}: leaving {room} after {} s without a joined session",
                                    after / 1000
                                );
                                join.phase = Phase::Leaving;
                                if let Some(to) = occupant_jid(room, &join.nick) {
                                    let leave = xml::element(
                                        "presence",
                                        NS_CLIENT,
                                        &[("type", "unavailable"), ("to", to.as_str())],
                                    );
                                    let mut leave = as_account(&leave, account);
                                    let evicted =
                                        join.send_leave(&mut leave, Default::default(), now, false);
                                    local::tell_left(room, join, evicted, &mut out);
                                    out.push(Action::Route { stanza: leave });
                                }
                                note(now + join_timeout);
                            } else {
                                note(idle + after);
                            }
                        }
                    }
                    _ => {}
                }
                true
            });
            while acct
                .recent_joins
                .front()
                .is_some_and(|t| *t + 60_000 <= now)
            {
                acct.recent_joins.pop_front();
            }
            if let Some(t) = acct.recent_joins.front() {
                note(t + 60_000);
            }
            let mut expired = Vec::new();

            acct.pending_iqs.retain(|_, p| {
                if p.expires <= now {
                    expired.push(p.clone());
                    false
                } else {
                    note(p.expires);
                    true
                }
            });
            for p in expired {
                let mut e = xml::element(
                    "iq",
                    NS_CLIENT,
                    &[
                        ("type", "error"),
                        ("from", &p.peer),
                        ("to", p.session.as_str()),
                        ("id", &p.original_id),
                    ],
                );
                e.append_child(muc::error_element("wait", "remote-server-timeout", None));
                out.push(Action::Deliver {
                    to: p.session,
                    stanza: e,
                });
            }
        }
        self.next_deadline = next;
        self.seq = seq;
        for (account, room) in left {
            out.extend(self.autojoin_cleared(&account, &room));
        }
        self.accounts.retain(|_, a| !a.is_empty());

        Outcome::handled(out)
    }
}
