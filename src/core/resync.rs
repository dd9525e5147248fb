//! A quiet rejoin: the account rejoins a room that dropped it (typically because the room's
//! server restarted, noticed by the XEP-0410 self-ping) while its sessions stay joined.
//!
//! Those sessions already had the room's join sequence. The room now sends a whole new one
//! to the account; the sessions get only what differs from what they were told: occupants
//! that are new, changed or gone (gone ones as an unavailable presence, since the room never
//! says so), a changed role, affiliation or nick, a changed subject, and the history missed
//! meanwhile. Sessions that join while the rejoin is in flight get everything, as usual.

use std::collections::{BTreeMap, BTreeSet};

use jid::{BareJid, FullJid};
use minidom::Element;

use super::account::Join;
use super::muc::{self, NS_CLIENT, NS_MUC_USER};
use super::shared::Shared;
use super::{occupant_jid, replay, xml, Action};

/// What the sessions joined before the rejoin were told, while the room re-tells it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resync {
    /// The sessions that were joined when the rejoin was sent.
    pub sessions: BTreeSet<FullJid>,
    /// Occupants as they were before the rejoin; each leaves this map when the room
    /// announces it again, and those left over when the self-presence arrives are gone.
    pub before: BTreeMap<String, Shared>,
}

/// Starts a quiet rejoin: remembers who is joined and what they know, and empties the
/// occupant cache so it fills with the room's fresh list.
pub fn start(join: &mut Join) {
    join.resync = Some(Resync {
        sessions: join.members.keys().cloned().collect(),
        before: std::mem::take(&mut join.cache.occupants),
    });
}

/// Forwards an occupant's presence that arrived during a rejoin: to every joined session,
/// except the sessions that already had exactly this presence.
pub fn occupant_presence(join: &mut Join, nick: &str, out: &mut Vec<Action>) {
    // The room's presence is cached (interned, without `to`) before this is called: compare
    // the cached copies. One that could not be cached (over the limit) counts as news.
    let old = join.resync.as_mut().and_then(|r| r.before.remove(nick));
    let unchanged = match (old, join.cache.occupants.get(nick)) {
        (Some(old), Some(new)) => old == *new,
        _ => false,
    };
    forward(join, unchanged, out);
}

/// Whether the sessions joined before the rejoin need the new self-presence: only when the
/// account's nick, role, affiliation or shown presence changed.
pub fn self_presence_is_news(
    join: &Join,
    session: &FullJid,
    old: Option<&Element>,
    new: &Element,
) -> bool {
    let Some(resync) = &join.resync else {
        return true;
    };
    if !resync.sessions.contains(session) {
        return true;
    }
    let Some(old) = old else {
        return true;
    };
    let item = |s: &Element| {
        muc::muc_user(s)
            .and_then(|x| x.get_child("item", NS_MUC_USER))
            .map(|i| {
                (
                    i.attr("role").map(str::to_owned),
                    i.attr("affiliation").map(str::to_owned),
                )
            })
    };
    let text = |s: &Element, name: &str| s.get_child(name, NS_CLIENT).map(|c| c.text());
    old.attr("from") != new.attr("from")
        || item(old) != item(new)
        || text(old, "show") != text(new, "show")
        || text(old, "status") != text(new, "status")
}

/// The rejoin's self-presence arrived, so the room's occupant list is complete: occupants
/// the sessions knew but the room no longer has are gone. Each of those sessions gets an
/// unavailable presence for them, as if it had seen them leave.
pub fn occupants_gone(join: &mut Join, room: &BareJid, out: &mut Vec<Action>) {
    let Some(resync) = join.resync.as_mut() else {
        return;
    };
    for (nick, old) in std::mem::take(&mut resync.before) {
        let Some(from) = occupant_jid(room, &nick) else {
            continue;
        };
        let mut gone = xml::element(
            "presence",
            NS_CLIENT,
            &[("type", "unavailable"), ("from", from.as_str())],
        );
        let old = old.element().ok();
        let affiliation = old
            .as_ref()
            .and_then(muc::muc_user)
            .and_then(|x| x.get_child("item", NS_MUC_USER))
            .and_then(|i| i.attr("affiliation"))
            .unwrap_or("none");
        let mut x = Element::bare("x", NS_MUC_USER);
        x.append_child(xml::element(
            "item",
            NS_MUC_USER,
            &[("affiliation", affiliation), ("role", "none")],
        ));
        gone.append_child(x);
        for session in resync
            .sessions
            .iter()
            .filter(|s| join.members.contains_key(*s))
        {
            out.push(Action::Deliver {
                to: session.clone(),
                stanza: replay::addressed(&gone, session),
            });
        }
    }
}

/// The subject ends the room's join sequence, and with it the rejoin. The sessions joined
/// before it get the subject only when it changed.
pub fn subject(join: &mut Join, old: Option<&Element>, new: &Element, out: &mut Vec<Action>) {
    let text = |s: &Element| s.get_child("subject", NS_CLIENT).map(|c| c.text());
    let unchanged = old.is_some_and(|o| text(o) == text(new));
    forward(join, unchanged, out);
    join.resync = None;
}

/// The room replayed a message the account heard before (see `heard`; a rejoin asks for a
/// little more than it missed, and a room answers every join of the account with history):
/// only sessions that joined after the account heard it, and not before a quiet rejoin
/// began, get it; the others had it.
pub fn replayed(join: &Join, heard_seq: u64, out: &mut Vec<Action>) {
    let before_rejoin = |s: &FullJid| join.resync.as_ref().is_some_and(|r| r.sessions.contains(s));
    out.extend(
        join.members
            .iter()
            .filter(|(s, m)| m.joined_seq > heard_seq && !before_rejoin(s))
            .map(|(to, _)| Action::Forward { to: to.clone() }),
    );
}

/// Forwards the input stanza to the joined sessions; when `unchanged`, not to those that
/// were joined before the rejoin (they have it already).
fn forward(join: &Join, unchanged: bool, out: &mut Vec<Action>) {
    let skip =
        |s: &FullJid| unchanged && join.resync.as_ref().is_some_and(|r| r.sessions.contains(s));
    out.extend(
        join.members
            .keys()
            .filter(|s| !skip(s))
            .map(|to| Action::Forward { to: to.clone() }),
    );
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::Config;

    const ALICE: &str = "alice@a.example";
    const PHONE: &str = "alice@a.example/phone";
    const LAPTOP: &str = "alice@a.example/laptop";
    const ROOM: &str = "room@muc.remote.example";

    /// alice's phone is joined (with Bob in the room); the room forgets the account and the
    /// self-ping notices: the account rejoins. Returns the world with the rejoin in flight.
    fn dropped_and_rejoining() -> World {
        let mut w = World::with_config(Config {
            ping_interval_ms: Some(60_000),
            ..Config::default()
        });
        w.join_local(PHONE, ROOM, "Alice", "Bob");
        let tick = w.tick(60_000);
        let id = tick.routed()[0].attr("id").unwrap().to_owned();
        let dropped = w.room(ALICE, &format!("<iq type='error' id='{id}' from='{ROOM}/Alice'><error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
        assert!(dropped.routed()[0].has_child("x", super::super::muc::NS_MUC));
        w
    }

    fn subject(text: &str) -> String {
        format!("<message type='groupchat' from='{ROOM}/Bob'><subject>{text}</subject></message>")
    }

    #[test]
    fn an_unchanged_room_tells_the_joined_session_nothing() {
        let mut w = dropped_and_rejoining();
        assert!(w
            .room(ALICE, &occupant_presence(ROOM, "Bob", None))
            .to(PHONE)
            .is_empty());
        assert!(w
            .room(ALICE, &self_presence(ROOM, "Alice", &[110]))
            .to(PHONE)
            .is_empty());
        assert!(w.room(ALICE, &subject("Welcome")).to(PHONE).is_empty());
        // Afterwards, room traffic flows as before.
        let msg = format!("<message type='groupchat' from='{ROOM}/Bob'><body>hi</body></message>");
        assert_eq!(w.room(ALICE, &msg).to(PHONE).len(), 1);
        assert_eq!(
            w.room(ALICE, &subject("Welcome")).to(PHONE).len(),
            1,
            "a later subject is a real one"
        );
    }

    #[test]
    fn an_occupant_gone_meanwhile_is_seen_leaving_and_a_new_one_arriving() {
        let mut w = dropped_and_rejoining();
        assert_eq!(
            w.room(ALICE, &occupant_presence(ROOM, "Carol", None))
                .to(PHONE)
                .len(),
            1
        );
        let own = w.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
        let got = own.to(PHONE);
        assert_eq!(got.len(), 1, "only Bob's leave: {got:?}");
        assert_eq!(got[0].attr("from"), Some(&*format!("{ROOM}/Bob")));
        assert_eq!(got[0].attr("type"), Some("unavailable"));
        let late = w.client(
            LAPTOP,
            &format!(
                "<presence to='{ROOM}/Alice'><x xmlns='{}'/></presence>",
                super::super::muc::NS_MUC
            ),
        );
        let nicks: Vec<_> = late
            .to(LAPTOP)
            .iter()
            .filter(|s| s.name() == "presence" && codes(s).is_empty())
            .map(|s| s.attr("from").unwrap().to_owned())
            .collect();
        assert_eq!(
            nicks,
            vec![format!("{ROOM}/Carol")],
            "the replay has the fresh occupant list"
        );
    }

    #[test]
    fn a_changed_role_or_subject_reaches_the_joined_session() {
        let mut w = dropped_and_rejoining();
        w.room(ALICE, &occupant_presence(ROOM, "Bob", None));
        let demoted = format!(
            "<presence from='{ROOM}/Alice'><x xmlns='{}'><item affiliation='none' role='participant'/><status code='110'/></x></presence>",
            super::super::muc::NS_MUC_USER
        );
        assert_eq!(w.room(ALICE, &demoted).to(PHONE).len(), 1);
        assert_eq!(w.room(ALICE, &subject("New topic")).to(PHONE).len(), 1);
    }

    #[test]
    fn a_session_joining_during_the_rejoin_gets_the_whole_sequence() {
        let mut w = dropped_and_rejoining();
        let join = format!(
            "<presence to='{ROOM}/Alice'><x xmlns='{}'/></presence>",
            super::super::muc::NS_MUC
        );
        w.client(LAPTOP, &join);
        assert_eq!(
            w.room(ALICE, &occupant_presence(ROOM, "Bob", None))
                .to(LAPTOP)
                .len(),
            1
        );
        let own = w.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
        assert_eq!(own.to(LAPTOP).len(), 1);
        assert!(own.to(PHONE).is_empty());
        let subj = w.room(ALICE, &subject("Welcome"));
        assert_eq!(subj.to(LAPTOP).len(), 1);
        assert!(subj.to(PHONE).is_empty());
    }
}
