//! Joins the account gave up on. When a join times out (a slow or frozen remote server), the
//! waiting sessions are told it failed and the account sends the room its leave; but the room
//! may still get the join, then the leave, and answer both late. Until the room has answered
//! that leave, whatever it sends the account belongs to the abandoned join: no session hears it
//! (each was told the join failed, and a session that joined again must not see the old join's
//! leave), none of it is cached, and none of it is bounced (an error back to the room would get
//! a later join of the account kicked, status 333). The room's traffic after its answer to the
//! leave (a later join's) is handled as usual.
//!
//! Bounded: at most `minimix_max_rooms` per account, each for `minimix_join_timeout` at most.

use jid::{BareJid, Jid};
use minidom::Element;

use super::account::Account;
use super::muc::{self, StatusCode};
use super::{Millis, Minimix, Outcome};

/// One abandoned join, waiting for the room's answer to the account's leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned {
    /// After this, the room's traffic is handled as usual again, answered or not.
    pub expires: Millis,
    /// The room (or the server, bouncing over a failed s2s link) answered with an error: the
    /// join never got in, so no self-unavailable will come; further errors (the leave bounced
    /// too) are still the abandoned join's, anything else starts a new story.
    pub refused: bool,
}

/// Records that the account gave up its join of `room` at `now` and sent its leave.
pub(super) fn abandon(acct: &mut Account, room: BareJid, now: Millis, timeout: Millis, max: usize) {
    if !acct.abandoned.contains_key(&room) && acct.abandoned.len() >= max {
        // Full: the oldest abandoned join is the most likely to have been answered already.
        let oldest = acct
            .abandoned
            .iter()
            .min_by_key(|(_, a)| a.expires)
            .map(|(r, _)| r.clone());
        if let Some(oldest) = oldest {
            acct.abandoned.remove(&oldest);
        }
    }
    acct.abandoned.insert(
        room,
        Abandoned {
            expires: now + timeout,
            refused: false,
        },
    );
}

/// Forgets abandoned joins whose time is up; `note` gets the deadline of each one kept.
pub(super) fn expire(acct: &mut Account, now: Millis, mut note: impl FnMut(Millis)) {
    acct.abandoned.retain(|_, a| {
        let keep = a.expires > now;
        if keep {
            note(a.expires);
        }
        keep
    });
}

impl Minimix {
    /// Whether `stanza`, from a room to the account, is a late answer to an abandoned join (then
    /// it is swallowed: `Some` of an outcome with no action). `None`: handle it as usual.
    pub(super) fn late_answer(
        &mut self,
        now: Millis,
        account: &BareJid,
        stanza: &Element,
    ) -> Option<Outcome> {
        let room = stanza.attr("from")?.parse::<Jid>().ok()?.to_bare();
        let acct = self.accounts.get_mut(account)?;
        let entry = acct.abandoned.get_mut(&room)?;
        if entry.expires <= now {
            acct.abandoned.remove(&room);
            return None;
        }
        let ty = muc::stanza_type(stanza);
        let swallow = match (stanza.name(), ty) {
            // Only a presence error says the join never got in; an error about a message
            // or an iq says nothing about the membership.
            ("presence", Some("error")) => {
                entry.refused = true;
                true
            }
            (_, Some("error")) => true,
            _ if entry.refused => {
                acct.abandoned.remove(&room);
                // A new join of the room handles what follows. Without one, a message or
                // presence from the room is still the old join's: dropped, never bounced (a
                // bounce would get the account kicked if the room did let it in).
                !acct.rooms.contains_key(&room) && matches!(stanza.name(), "message" | "presence")
            }
            ("presence", Some("unavailable"))
                if muc::has_status(stanza, StatusCode::SelfPresence) =>
            {
                // The room's answer to the account's leave: what follows is not the old join's.
                log::debug!("{account}: {room} answered the leave after an abandoned join");
                acct.abandoned.remove(&room);
                true
            }
            ("presence", None | Some("unavailable")) | ("message", _) => true,
            // Subscriptions, probes and iqs are not answers to a join.
            _ => false,
        };
        if acct.is_empty() {
            self.accounts.remove(account);
        }
        if swallow {
            log::debug!("{account}: dropping a late answer from {room} to an abandoned join");
        }
        swallow.then(|| Outcome::handled(Vec::new()))
    }
}
