//! A join that timed out, answered late by the room (see `abandoned`): nobody hears the old
//! join, nothing of it bounces, and a join made meanwhile completes as if nothing happened.
//! The traffic is what Prosody 0.12's MUC sends over s2s for join, leave, join from the account.

use super::muc::{NS_MUC, NS_MUC_USER, NS_STANZAS};
use super::testkit::*;
use super::{Config, Phase};

const ROOM: &str = "room@rooms.remote.localhost";
const PHONE: &str = "alice@a.localhost/phone";
const LAPTOP: &str = "alice@a.localhost/laptop";
const ALICE: &str = "alice@a.localhost";
const TIMEOUT: u64 = 2_000;

fn world() -> World {
    World::with_config(Config {
        join_timeout_ms: TIMEOUT,
        ..Config::default()
    })
}

fn join_xml() -> String {
    format!("<presence to='{ROOM}/Alice'><x xmlns='{NS_MUC}'/></presence>")
}

fn self_unavailable() -> String {
    format!(
        "<presence type='unavailable' from='{ROOM}/Alice'><x xmlns='{NS_MUC_USER}'><item affiliation='none' role='none'/><status code='110'/></x></presence>"
    )
}

fn subject() -> String {
    format!("<message type='groupchat' from='{ROOM}/Frank'><subject>Topic</subject></message>")
}

fn bounced_join() -> String {
    format!(
        "<presence type='error' from='{ROOM}/Alice'><error type='wait'><remote-server-timeout xmlns='{NS_STANZAS}'/></error></presence>"
    )
}

/// Phone and laptop ask to join, the room says nothing, the join times out.
fn timed_out(w: &mut World) {
    w.client(PHONE, &join_xml());
    w.client(LAPTOP, &join_xml());
    let step = w.tick(TIMEOUT);
    assert_eq!(step.recipients(), vec![LAPTOP.to_owned(), PHONE.to_owned()]);
    let leave = step.routed();
    assert_eq!(
        leave.len(),
        1,
        "the account leaves, in case the join gets in after all"
    );
    assert_eq!(leave[0].attr("type"), Some("unavailable"));
}

/// Everything the room sends after the join got in late: nobody hears it, nothing is sent.
fn late_join_answers_reach_nobody(w: &mut World) {
    for xml in [
        occupant_presence(ROOM, "Frank", None),
        self_presence(ROOM, "Alice", &[110]),
        subject(),
        format!("<message type='groupchat' from='{ROOM}/Frank'><body>history</body></message>"),
    ] {
        let step = w.room(ALICE, &xml);
        assert!(
            step.handled(),
            "claimed, so Prosody neither broadcasts nor bounces it: {xml}"
        );
        assert!(
            step.outcome.actions.is_empty(),
            "{xml}: {:?}",
            step.outcome.actions
        );
    }
}

#[test]
fn a_late_answer_to_a_timed_out_join_reaches_no_session_and_the_account_leaves() {
    let mut w = world();
    timed_out(&mut w);
    late_join_answers_reach_nobody(&mut w);
    assert!(!w
        .mm
        .should_archive(&bare(ALICE), &bare(ROOM).into(), Some("groupchat")));
    let answer = w.room(ALICE, &self_unavailable());
    assert!(answer.handled() && answer.outcome.actions.is_empty());
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
    assert!(
        !w.mm.tracks(&bare(ALICE), &bare(ROOM)),
        "nothing left once the leave is answered"
    );
    assert!(w
        .mm
        .accounts()
        .all(|(_, a)| a.rooms.is_empty() && a.abandoned.is_empty()));
}

#[test]
fn a_join_made_right_after_a_timeout_completes_with_the_rooms_answer_to_it_only() {
    let mut w = world();
    timed_out(&mut w);
    let again = w.client(PHONE, &join_xml());
    assert_eq!(
        again.routed().len(),
        1,
        "a new join goes out after the leave"
    );
    late_join_answers_reach_nobody(&mut w);
    // The room's answer to the leave is the old join's, not a kick of the new one.
    let answer = w.room(ALICE, &self_unavailable());
    assert!(answer.handled() && answer.outcome.actions.is_empty());
    assert!(matches!(
        w.mm.join(&bare(ALICE), &bare(ROOM)).map(|j| j.phase),
        Some(Phase::Joining { .. })
    ));

    let frank = w.room(ALICE, &occupant_presence(ROOM, "Frank", None));
    assert_eq!(frank.to(PHONE).len(), 1);
    let own = w.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
    let got = own.to(PHONE);
    assert_eq!(got.len(), 1);
    assert_eq!(codes(&got[0]), vec![110]);
    assert_eq!(w.room(ALICE, &subject()).to(PHONE).len(), 1);
    assert!(own.to(LAPTOP).is_empty(), "the laptop did not ask again");
    assert_eq!(
        w.mm.join(&bare(ALICE), &bare(ROOM)).map(|j| j.phase),
        Some(Phase::Joined)
    );
}

#[test]
fn a_bounced_join_and_leave_reach_nobody_and_a_later_join_is_answered() {
    let mut w = world();
    timed_out(&mut w);
    w.client(PHONE, &join_xml());
    // The s2s link failed: the join, the leave and the new join all bounce; the first two
    // are the abandoned join's.
    for _ in 0..2 {
        let step = w.room(ALICE, &bounced_join());
        assert!(step.handled() && step.outcome.actions.is_empty());
    }
    // A room that answers at last: the new join's traffic is the new join's.
    let own = w.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
    assert_eq!(own.to(PHONE).len(), 1);
    assert_eq!(
        w.mm.join(&bare(ALICE), &bare(ROOM)).map(|j| j.phase),
        Some(Phase::Joined)
    );
}

#[test]
fn an_unanswered_abandoned_join_is_forgotten_after_another_join_timeout() {
    let mut w = world();
    timed_out(&mut w);
    assert!(w.mm.tracks(&bare(ALICE), &bare(ROOM)));
    assert!(w.mm.poll_timeout().is_some(), "a deadline to forget it");
    w.tick(TIMEOUT);
    assert!(!w.mm.tracks(&bare(ALICE), &bare(ROOM)));
    assert!(w
        .mm
        .accounts()
        .all(|(_, a)| a.rooms.is_empty() && a.abandoned.is_empty()));
    // From then on the room's traffic is nobody's business, as for any stranger.
    assert!(!w
        .room(ALICE, &self_presence(ROOM, "Alice", &[110]))
        .handled());
}

#[test]
fn abandoned_joins_are_bounded_by_max_rooms_the_oldest_going_first() {
    let mut acct = super::Account::default();
    for (i, room) in [
        "a@rooms.remote.localhost",
        "b@rooms.remote.localhost",
        "c@rooms.remote.localhost",
    ]
    .into_iter()
    .enumerate()
    {
        super::abandoned::abandon(&mut acct, bare(room), 1_000 * i as u64, TIMEOUT, 2);
    }
    let kept: Vec<String> = acct.abandoned.keys().map(|r| r.to_string()).collect();
    assert_eq!(
        kept,
        vec!["b@rooms.remote.localhost", "c@rooms.remote.localhost"]
    );
}
