//! Deadlines: joins the room never answered, rooms left idle (`minimix_leave_after`) and iq
//! mappings that expired. The caller arms one timer at `poll_timeout`.

use minidom::Element;

use super::account::Phase;
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
        let max_rooms = self.config.max_rooms;
        for (account, acct) in self.accounts.iter_mut() {
            super::abandoned::expire(acct, now, &mut note);
            let mut gave_up = Vec::new();
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
                match join.phase {
                    Phase::Joining { since } if since + join_timeout <= now => {
                        log::info!("{account}: join of {room} timed out");
                        let from = occupant_jid(room, &join.nick)
                            .map(|j| j.to_string())
                            .unwrap_or_else(|| room.to_string());
                        for session in join.members.keys() {
                            let mut e = xml::element(
                                "presence",
                                NS_CLIENT,
                                &[("type", "error"), ("from", &from), ("to", session.as_str())],
                            );
                            e.append_child(Element::bare("x", muc::NS_MUC));
                            e.append_child(muc::error_element(
                                "wait",
                                "remote-server-timeout",
                                Some("The room did not answer the join"),
                            ));
                            out.push(Action::Deliver {
                                to: session.clone(),
                                stanza: e,
                            });
                        }
                        // Tell the room too, in case the join arrives after all.
                        let mut leave = xml::element(
                            "presence",
                            NS_CLIENT,
                            &[("type", "unavailable"), ("to", &from)],
                        );
                        leave = as_account(&leave, account);
                        out.push(Action::Route { stanza: leave });
                        if join.durable {
                            out.push(Action::Persist {
                                account: account.clone(),
                            });
                        }
                        gave_up.push(room.clone());
                        return false;
                    }
                    Phase::Joining { since } => note(since + join_timeout),
                    Phase::Joined if join.members.is_empty() => {
                        if let (Some(after), Some(idle)) = (leave_after, join.idle_since) {
                            if idle + after <= now {
                                log::info!(
                                    "{account}: leaving {room} after {} s without a joined session",
                                    after / 1000
                                );
                                if let Some(to) = occupant_jid(room, &join.nick) {
                                    let leave = xml::element(
                                        "presence",
                                        NS_CLIENT,
                                        &[("type", "unavailable"), ("to", to.as_str())],
                                    );
                                    out.push(Action::Route {
                                        stanza: as_account(&leave, account),
                                    });
                                }
                                join.phase = Phase::Leaving;
                            } else {
                                note(idle + after);
                            }
                        }
                    }
                    _ => {}
                }
                true
            });
            for room in gave_up {
                super::abandoned::abandon(acct, room, now, join_timeout, max_rooms);
                note(now + join_timeout);
            }
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
        self.accounts.retain(|_, a| !a.is_empty());
        self.next_deadline = next;
        self.seq = seq;

        Outcome::handled(out)
    }
}
