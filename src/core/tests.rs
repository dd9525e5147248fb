//! Behaviour tests of the core, one rule each, named as the rule. XEP-0045 sections in comments.

use super::muc::{NS_MUC, NS_MUC_USER};
use super::testkit::*;
use super::{Config, Phase};

const ROOM: &str = "room@muc.localhost";
const PHONE: &str = "alice@a.localhost/phone";
const LAPTOP: &str = "alice@a.localhost/laptop";
const DESK: &str = "alice@a.localhost/desk";
const ALICE: &str = "alice@a.localhost";

fn join_xml(nick: &str) -> String {
    format!("<presence to='{ROOM}/{nick}'><x xmlns='{NS_MUC}'/></presence>")
}

fn groupchat(from_nick: &str, body: &str) -> String {
    format!("<message type='groupchat' id='m-{body}' from='{ROOM}/{from_nick}'><body>{body}</body></message>")
}

#[test]
fn first_join_makes_the_account_join_once_and_is_recorded_before_sending() {
    let mut w = World::new();
    let step = w.client(PHONE, &join_xml("Alice"));
    assert!(step.handled());
    let routed = step.routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].attr("from"), Some(ALICE));
    assert_eq!(routed[0].attr("to"), Some("room@muc.localhost/Alice"));
    assert!(routed[0].has_child("x", NS_MUC), "the join payload is kept");
    // The state exists already when the action is handed out (the local MUC answers inside send).
    assert!(matches!(
        w.mm.join(&bare(ALICE), &bare(ROOM)).map(|j| j.phase),
        Some(Phase::Joining { .. })
    ));
    assert_eq!(
        w.mm.sessions_in(&bare(ALICE), &bare(ROOM)),
        vec![full(PHONE)]
    );
}

#[test]
fn room_answers_during_the_join_reach_the_joining_session_addressed_to_it() {
    let mut w = World::new();
    let steps = w.join_local(PHONE, ROOM, "Alice", "Bob");
    for step in &steps[1..] {
        assert!(step.handled(), "room traffic is claimed, never bounced");
        let got = step.to(PHONE);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].attr("to"), Some(PHONE));
    }
    assert_eq!(codes(&steps[2].to(PHONE)[0]), vec![110]);
    assert_eq!(
        w.mm.join(&bare(ALICE), &bare(ROOM)).map(|j| j.phase),
        Some(Phase::Joined)
    );
}

#[test]
fn second_session_gets_cached_occupants_then_own_presence_then_history_then_subject() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.room(ALICE, &occupant_presence(ROOM, "Carol", None));
    w.room(ALICE, &groupchat("Bob", "hello"));
    let step = w.client(LAPTOP, &join_xml("Alice"));
    assert!(step.handled());
    assert!(
        step.routed().is_empty(),
        "the room sees nothing when a second session joins"
    );
    let got = step.to(LAPTOP);
    let froms: Vec<_> = got
        .iter()
        .map(|s| (s.name().to_owned(), s.attr("from").unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        froms,
        vec![
            ("presence".into(), format!("{ROOM}/Bob")),
            ("presence".into(), format!("{ROOM}/Carol")),
            ("presence".into(), format!("{ROOM}/Alice")),
            ("message".into(), format!("{ROOM}/Bob")),
            ("message".into(), format!("{ROOM}/Bob")),
        ]
    );
    assert!(got.iter().all(|s| s.attr("to") == Some(LAPTOP)));
    assert_eq!(
        codes(&got[2]),
        vec![110],
        "own presence last among presences, with 110"
    );
    assert!(got[3].has_child("body", super::muc::NS_CLIENT));
    assert!(
        got[3].has_child("delay", super::muc::NS_DELAY),
        "history carries a delay"
    );
    assert!(
        got[4].has_child("subject", super::muc::NS_CLIENT),
        "subject last"
    );
    assert!(
        step.to(PHONE).is_empty(),
        "the first session sees nothing of the replay"
    );
}

#[test]
fn late_session_with_another_nick_gets_the_accounts_nick_with_status_210() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let step = w.client(LAPTOP, &join_xml("Ally"));
    let own = step
        .to(LAPTOP)
        .into_iter()
        .find(|s| s.attr("from") == Some("room@muc.localhost/Alice"))
        .unwrap();
    assert_eq!(codes(&own), vec![110, 210]);
    assert!(step.routed().is_empty(), "no nick change for the account");
}

#[test]
fn sessions_that_did_not_join_get_none_of_the_rooms_traffic() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(LAPTOP, &join_xml("Alice"));
    for xml in [
        groupchat("Bob", "hi"),
        occupant_presence(ROOM, "Dan", None),
        occupant_presence(ROOM, "Dan", Some("unavailable")),
    ] {
        let step = w.room(ALICE, &xml);
        assert!(step.handled());
        assert_eq!(
            step.recipients(),
            vec![LAPTOP.to_string(), PHONE.to_string()]
        );
        assert!(step.to(DESK).is_empty());
        assert_eq!(step.to(PHONE).len(), 1, "exactly once");
    }
}

#[test]
fn groupchat_from_a_session_goes_to_the_room_from_the_account() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let step = w.client(
        PHONE,
        &format!("<message type='groupchat' id='x1' to='{ROOM}'><body>hey</body></message>"),
    );
    assert!(step.handled());
    let routed = step.routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].attr("from"), Some(ALICE));
    assert_eq!(routed[0].attr("id"), Some("x1"));
    // The room's reflection reaches each joined session once.
    w.client(LAPTOP, &join_xml("Alice"));
    let reflection = w.room(ALICE, &groupchat("Alice", "hey"));
    assert_eq!(reflection.to(PHONE).len(), 1);
    assert_eq!(reflection.to(LAPTOP).len(), 1);
}

#[test]
fn groupchat_from_a_session_that_did_not_join_passes_to_the_room_unchanged() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let step = w.client(
        DESK,
        &format!("<message type='groupchat' to='{ROOM}'><body>hey</body></message>"),
    );
    assert!(!step.handled());
}

#[test]
fn groupchat_is_claimed_even_when_no_session_is_joined() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.closed(PHONE);
    let step = w.room(ALICE, &groupchat("Bob", "anyone?"));
    assert!(
        step.handled(),
        "an unclaimed groupchat bounces and the room kicks the account"
    );
    assert!(step.recipients().is_empty());
}

#[test]
fn traffic_from_rooms_the_account_is_not_in_passes_untouched() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let step = w.room(
        ALICE,
        "<message type='groupchat' from='other@muc.localhost/Bob'><body>x</body></message>",
    );
    assert!(!step.handled());
    let step = w.room("bob@a.localhost", &groupchat("Bob", "x"));
    assert!(!step.handled(), "one account's rooms are not another's");
}

#[test]
fn session_leaving_while_others_stay_gets_a_local_self_unavailable_and_the_room_sees_nothing() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(LAPTOP, &join_xml("Alice"));
    let step = w.client(
        LAPTOP,
        &format!("<presence type='unavailable' to='{ROOM}/Alice'/>"),
    );
    assert!(step.handled());
    assert!(step.routed().is_empty());
    let got = step.to(LAPTOP);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attr("type"), Some("unavailable"));
    assert_eq!(got[0].attr("from"), Some("room@muc.localhost/Alice"));
    assert_eq!(codes(&got[0]), vec![110]);
    assert!(w
        .room(ALICE, &groupchat("Bob", "after"))
        .to(LAPTOP)
        .is_empty());
}

#[test]
fn last_session_leaving_makes_the_account_leave_and_it_gets_the_rooms_answer() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let step = w.client(
        PHONE,
        &format!("<presence type='unavailable' to='{ROOM}/Alice'><status>bye</status></presence>"),
    );
    let routed = step.routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].attr("type"), Some("unavailable"));
    assert_eq!(routed[0].attr("from"), Some(ALICE));
    assert_eq!(routed[0].attr("to"), Some("room@muc.localhost/Alice"));
    let answer = w.room(
        ALICE,
        &format!("<presence type='unavailable' from='{ROOM}/Alice'><x xmlns='{NS_MUC_USER}'><item role='none'/><status code='110'/></x></presence>"),
    );
    assert_eq!(answer.to(PHONE).len(), 1);
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
    assert!(w.mm.rooms_of(&bare(ALICE)).is_empty());
    w.tick(60_000);
    assert!(
        w.mm.accounts().next().is_none(),
        "no state left behind once the join-rate window passed"
    );
}

#[test]
fn session_closing_keeps_the_account_in_the_room_and_shows_it_away() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let step = w.closed(PHONE);
    assert!(!step.handled(), "resource-unbind goes on to other modules");
    let routed = step.routed();
    assert_eq!(routed.len(), 1, "one presence update, not a leave");
    assert_eq!(routed[0].attr("type"), None);
    assert_eq!(
        routed[0]
            .get_child("show", super::muc::NS_CLIENT)
            .map(|s| s.text()),
        Some("xa".into())
    );
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_some());
    assert!(w.mm.sessions_in(&bare(ALICE), &bare(ROOM)).is_empty());
}

#[test]
fn kick_reaches_every_joined_session_and_a_later_join_starts_afresh() {
    for code in [307, 301, 321, 322, 332, 333] {
        let mut w = World::new();
        w.join_local(PHONE, ROOM, "Alice", "Bob");
        w.client(LAPTOP, &join_xml("Alice"));
        let kick = w.room(ALICE, &format!(
            "<presence type='unavailable' from='{ROOM}/Alice'><x xmlns='{NS_MUC_USER}'><item role='none'/><status code='110'/><status code='{code}'/></x></presence>"
        ));
        assert!(kick.handled());
        assert_eq!(kick.to(PHONE).len(), 1);
        assert_eq!(kick.to(LAPTOP).len(), 1);
        assert!(
            w.mm.join(&bare(ALICE), &bare(ROOM)).is_none(),
            "state dropped after {code}"
        );
        let again = w.client(PHONE, &join_xml("Alice"));
        assert_eq!(again.routed().len(), 1, "a fresh join is sent after {code}");
    }
}

#[test]
fn room_destruction_reaches_every_joined_session_and_drops_the_state() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let step = w.room(ALICE, &format!(
        "<presence type='unavailable' from='{ROOM}/Alice'><x xmlns='{NS_MUC_USER}'><item role='none'/><destroy><reason>gone</reason></destroy><status code='110'/></x></presence>"
    ));
    assert_eq!(step.to(PHONE).len(), 1);
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
}

#[test]
fn join_error_reaches_the_waiting_sessions_and_nothing_blocks_a_later_join() {
    let mut w = World::new();
    w.client(PHONE, &join_xml("Alice"));
    w.client(LAPTOP, &join_xml("Alice"));
    let err = w.room(ALICE, &format!(
        "<presence type='error' from='{ROOM}/Alice'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    ));
    assert!(err.handled());
    assert_eq!(err.to(PHONE).len(), 1);
    assert_eq!(err.to(LAPTOP).len(), 1);
    assert_eq!(err.to(PHONE)[0].attr("to"), Some(PHONE));
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
    assert_eq!(w.client(PHONE, &join_xml("Alice2")).routed().len(), 1);
}

#[test]
fn a_second_session_joining_while_the_join_is_in_flight_waits_for_it() {
    let mut w = World::new();
    w.client(PHONE, &join_xml("Alice"));
    w.room(ALICE, &occupant_presence(ROOM, "Bob", None));
    let step = w.client(LAPTOP, &join_xml("Alice"));
    assert!(step.routed().is_empty(), "the account joins once");
    assert_eq!(step.to(LAPTOP).len(), 1, "what arrived so far");
    let own = w.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
    assert_eq!(own.to(LAPTOP).len(), 1);
    assert_eq!(own.to(PHONE).len(), 1);
}

#[test]
fn a_join_that_never_completes_times_out_with_an_error_to_the_waiting_sessions() {
    let mut w = World::new();
    w.client(PHONE, &join_xml("Alice"));
    assert!(w.mm.poll_timeout().is_some());
    assert!(w.tick(1_000).to(PHONE).is_empty(), "not yet");
    let step = w.tick(60_000);
    let got = step.to(PHONE);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attr("type"), Some("error"));
    assert!(got[0]
        .get_child("error", super::muc::NS_CLIENT)
        .unwrap()
        .has_child("remote-server-timeout", super::muc::NS_STANZAS));
    // For one more timeout a late answer is still taken (the account then leaves again),
    // with no session in it; then the join is forgotten.
    assert!(w.mm.sessions_in(&bare(ALICE), &bare(ROOM)).is_empty());
    let last = w.tick(60_000);
    assert!(last.recipients().is_empty() && last.routed().is_empty());
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
}

#[test]
fn a_join_that_timed_out_and_gets_through_late_is_left_again_without_telling_anyone() {
    let mut w = World::new();
    w.client(PHONE, &join_xml("Alice"));
    w.tick(60_000);
    let late = w.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
    assert!(
        late.handled(),
        "claimed, not left to reach the account's sessions"
    );
    assert!(late.recipients().is_empty());
    let routed = late.routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].attr("type"), Some("unavailable"));
    assert_eq!(routed[0].attr("to"), Some("room@muc.localhost/Alice"));
    let answer = w.room(ALICE, &self_unavailable(ROOM, "Alice", &[110]));
    assert!(answer.handled() && answer.recipients().is_empty());
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
}

#[test]
fn a_session_joining_after_a_timeout_gets_the_late_answer_to_the_accounts_join() {
    let mut w = World::new();
    w.client(PHONE, &join_xml("Alice"));
    w.tick(60_000);
    let again = w.client(PHONE, &join_xml("Alice"));
    assert!(
        again.routed().is_empty(),
        "the first join may still get through"
    );
    let late = w.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
    assert_eq!(codes(&late.to(PHONE)[0]), vec![110]);
    assert!(
        late.routed().is_empty(),
        "no leave: a session wants the room"
    );
    assert_eq!(
        w.mm.join(&bare(ALICE), &bare(ROOM)).map(|j| j.phase),
        Some(Phase::Joined)
    );
}

#[test]
fn nick_change_from_a_session_changes_the_accounts_nick_once_and_all_sessions_see_303() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(LAPTOP, &join_xml("Alice"));
    let step = w.client(PHONE, &format!("<presence to='{ROOM}/Alicia'/>"));
    let routed = step.routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].attr("to"), Some("room@muc.localhost/Alicia"));
    let gone = w.room(ALICE, &format!(
        "<presence type='unavailable' from='{ROOM}/Alice'><x xmlns='{NS_MUC_USER}'><item nick='Alicia' role='participant'/><status code='303'/><status code='110'/></x></presence>"
    ));
    assert_eq!(gone.recipients().len(), 2);
    assert!(
        w.mm.join(&bare(ALICE), &bare(ROOM)).is_some(),
        "a nick change is not a leave"
    );
    let new = w.room(ALICE, &self_presence(ROOM, "Alicia", &[110]));
    assert_eq!(new.recipients().len(), 2);
    assert_eq!(w.mm.join(&bare(ALICE), &bare(ROOM)).unwrap().nick, "Alicia");
    assert_eq!(
        codes(&new.to(LAPTOP)[0]),
        vec![110],
        "no 210 for a change the session saw"
    );
}

#[test]
fn refused_nick_change_reaches_only_the_session_that_asked() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(LAPTOP, &join_xml("Alice"));
    w.client(PHONE, &format!("<presence to='{ROOM}/Bob'/>"));
    let err = w.room(ALICE, &format!(
        "<presence type='error' from='{ROOM}/Bob'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    ));
    assert_eq!(err.recipients(), vec![PHONE.to_string()]);
    assert_eq!(w.mm.join(&bare(ALICE), &bare(ROOM)).unwrap().nick, "Alice");
}

#[test]
fn the_room_sees_the_most_available_session_and_one_update_per_change() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let away = w.client(
        LAPTOP,
        &format!("<presence to='{ROOM}/Alice'><show>away</show><x xmlns='{NS_MUC}'/></presence>"),
    );
    assert!(
        away.routed().is_empty(),
        "phone (online) still wins over an away laptop"
    );
    let phone_dnd = w.client(
        PHONE,
        &format!("<presence to='{ROOM}/Alice'><show>dnd</show></presence>"),
    );
    let routed = phone_dnd.routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(
        routed[0]
            .get_child("show", super::muc::NS_CLIENT)
            .unwrap()
            .text(),
        "dnd"
    );
    let again = w.client(
        PHONE,
        &format!("<presence to='{ROOM}/Alice'><show>dnd</show></presence>"),
    );
    assert!(
        again.routed().is_empty(),
        "no update when the aggregate does not change"
    );
    let laptop_chat = w.client(
        LAPTOP,
        &format!("<presence to='{ROOM}/Alice'><show>chat</show></presence>"),
    );
    assert_eq!(
        laptop_chat.routed()[0]
            .get_child("show", super::muc::NS_CLIENT)
            .unwrap()
            .text(),
        "chat"
    );
}

#[test]
fn late_session_history_honours_maxstanzas() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    for i in 0..5 {
        w.room(ALICE, &groupchat("Bob", &format!("n{i}")));
    }
    let step = w.client(LAPTOP, &format!("<presence to='{ROOM}/Alice'><x xmlns='{NS_MUC}'><history maxstanzas='2'/></x></presence>"));
    let bodies: Vec<String> = step
        .to(LAPTOP)
        .iter()
        .filter_map(|s| s.get_child("body", super::muc::NS_CLIENT).map(|b| b.text()))
        .collect();
    assert_eq!(bodies, vec!["n3", "n4"], "newest two, oldest first");
}

#[test]
fn history_buffer_is_bounded_by_the_configured_size() {
    let mut w = World::with_config(Config {
        history_max_messages: 3,
        history_length: 3,
        ..Config::default()
    });
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    for i in 0..10 {
        w.room(ALICE, &groupchat("Bob", &format!("n{i}")));
    }
    assert_eq!(
        w.mm.join(&bare(ALICE), &bare(ROOM))
            .unwrap()
            .cache
            .history
            .len(),
        3
    );
}

#[test]
fn iq_to_an_occupant_goes_as_the_account_and_the_answer_reaches_the_asking_session_with_its_id() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let step = w.client(
        PHONE,
        &format!("<iq type='get' id='v1' to='{ROOM}/Bob'><query xmlns='jabber:iq:version'/></iq>"),
    );
    let routed = step.routed();
    assert_eq!(routed[0].attr("from"), Some(ALICE));
    let new_id = routed[0].attr("id").unwrap().to_owned();
    assert_ne!(new_id, "v1");
    let answer = w.room(ALICE, &format!("<iq type='result' id='{new_id}' from='{ROOM}/Bob'><query xmlns='jabber:iq:version'/></iq>"));
    assert!(answer.handled());
    let got = answer.to(PHONE);
    assert_eq!(got[0].attr("id"), Some("v1"));
    assert_eq!(got[0].attr("to"), Some(PHONE));
}

#[test]
fn iq_answer_from_someone_else_is_not_taken_for_the_rooms() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let routed = w
        .client(
            PHONE,
            &format!(
                "<iq type='get' id='v1' to='{ROOM}/Bob'><query xmlns='jabber:iq:version'/></iq>"
            ),
        )
        .routed();
    let new_id = routed[0].attr("id").unwrap().to_owned();
    let spoof = w.room(
        ALICE,
        &format!("<iq type='result' id='{new_id}' from='evil@x.example/y'/>"),
    );
    assert!(!spoof.handled());
}

#[test]
fn self_ping_is_answered_from_local_state() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let ping =
        format!("<iq type='get' id='p1' to='{ROOM}/Alice'><ping xmlns='urn:xmpp:ping'/></iq>");
    let ok = w.client(PHONE, &ping);
    assert_eq!(ok.to(PHONE)[0].attr("type"), Some("result"));
    assert!(ok.routed().is_empty());
    let not_joined = w.client(LAPTOP, &ping);
    let reply = &not_joined.to(LAPTOP)[0];
    assert_eq!(reply.attr("type"), Some("error"));
    assert!(reply
        .get_child("error", super::muc::NS_CLIENT)
        .unwrap()
        .has_child("not-acceptable", super::muc::NS_STANZAS));
}

#[test]
fn joins_beyond_the_room_limit_get_resource_constraint() {
    let mut w = World::with_config(Config {
        max_rooms: 1,
        ..Config::default()
    });
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let step = w.client(PHONE, "<presence to='second@muc.localhost/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
    assert!(step.routed().is_empty());
    let got = step.to(PHONE);
    assert_eq!(got[0].attr("type"), Some("error"));
    assert!(got[0]
        .get_child("error", super::muc::NS_CLIENT)
        .unwrap()
        .has_child("resource-constraint", super::muc::NS_STANZAS));
}

#[test]
fn account_leaves_after_the_configured_idle_time() {
    let mut w = World::with_config(Config {
        leave_after_ms: Some(10_000),
        ..Config::default()
    });
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.closed(PHONE);
    assert!(w.tick(5_000).routed().is_empty());
    let step = w.tick(5_000);
    let routed = step.routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].attr("type"), Some("unavailable"));
}

#[test]
fn account_never_leaves_by_default_when_sessions_go() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.closed(PHONE);
    let routed = w.tick(10 * 24 * 3600 * 1000).routed();
    assert!(
        routed.iter().all(|s| s.name() != "presence"),
        "no leave (only self-pings)"
    );

    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_some());
}

#[test]
fn errors_a_session_sends_towards_the_room_never_leave_as_the_account() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let step = w.client(PHONE, &format!("<message type='error' to='{ROOM}/Bob'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    assert!(step.handled());
    assert!(step.routed().is_empty());
}

#[test]
fn room_error_about_a_sessions_message_goes_back_to_that_session_only() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(LAPTOP, &join_xml("Alice"));
    w.client(
        PHONE,
        &format!("<message type='groupchat' id='g1' to='{ROOM}'><body>x</body></message>"),
    );
    let err = w.room(ALICE, &format!("<message type='error' id='g1' from='{ROOM}'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    assert!(err.handled());
    assert_eq!(err.recipients(), vec![PHONE.to_string()]);
}

#[test]
fn private_message_goes_as_the_account_and_other_joined_sessions_get_a_sent_carbon() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(LAPTOP, &join_xml("Alice"));
    let step = w.client(
        PHONE,
        &format!("<message type='chat' id='pm1' to='{ROOM}/Bob'><body>psst</body></message>"),
    );
    assert_eq!(step.routed()[0].attr("from"), Some(ALICE));
    let carbon = &step.to(LAPTOP)[0];
    let sent = carbon
        .get_child("sent", super::muc::NS_CARBONS)
        .expect("a sent carbon");
    let inner = sent
        .get_child("forwarded", super::muc::NS_FORWARD)
        .unwrap()
        .get_child("message", super::muc::NS_CLIENT)
        .unwrap();
    assert_eq!(
        inner.attr("from"),
        Some(PHONE),
        "the carbon shows the sending session"
    );
    assert!(step.to(PHONE).is_empty());
    assert!(
        step.to(DESK).is_empty(),
        "sessions that did not join get no carbon"
    );
}

#[test]
fn private_messages_from_occupants_reach_every_joined_session() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(LAPTOP, &join_xml("Alice"));
    let step = w.room(ALICE, &format!("<message type='chat' from='{ROOM}/Bob'><body>hi</body><x xmlns='{NS_MUC_USER}'/></message>"));
    assert!(step.handled());
    assert_eq!(
        step.recipients(),
        vec![LAPTOP.to_string(), PHONE.to_string()]
    );
}

#[test]
fn occupants_iq_to_the_account_goes_to_the_most_available_joined_session() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(
        LAPTOP,
        &format!("<presence to='{ROOM}/Alice'><show>away</show><x xmlns='{NS_MUC}'/></presence>"),
    );
    let iq = format!("<iq type='get' id='room-encoded' from='{ROOM}/Bob'><query xmlns='jabber:iq:version'/></iq>");
    let step = w.room(ALICE, &iq);
    assert!(step.handled());
    assert_eq!(step.recipients(), vec![PHONE.to_string()]);
    // The session's answer goes back from the account with the room's id unchanged.
    let answer = w.client(
        PHONE,
        &format!("<iq type='result' id='room-encoded' to='{ROOM}/Bob'/>"),
    );
    assert_eq!(answer.routed()[0].attr("from"), Some(ALICE));
    assert_eq!(answer.routed()[0].attr("id"), Some("room-encoded"));
    // vCard requests are the account's, answered by the server.
    let vcard = w.room(
        ALICE,
        &format!("<iq type='get' id='vc' from='{ROOM}/Bob'><vCard xmlns='vcard-temp'/></iq>"),
    );
    assert!(!vcard.handled());
    // With no session joined, the server answers (with a proper error for unknown payloads).
    w.closed(PHONE);
    w.closed(LAPTOP);
    assert!(!w.room(ALICE, &iq).handled());
}

#[test]
fn self_presence_names_the_session_as_the_real_jid_as_a_direct_join_would() {
    let mut w = World::new();
    w.client(PHONE, &join_xml("Alice"));
    let own = w.room(ALICE, &format!(
        "<presence from='{ROOM}/Alice'><x xmlns='{NS_MUC_USER}'><item affiliation='owner' role='moderator' jid='{ALICE}'/><status code='110'/></x></presence>"
    ));
    let got = &own.to(PHONE)[0];
    let item = got
        .get_child("x", NS_MUC_USER)
        .unwrap()
        .get_child("item", NS_MUC_USER)
        .unwrap();
    assert_eq!(item.attr("jid"), Some(PHONE));
    let late = w.client(LAPTOP, &join_xml("Alice"));
    let own_late = late
        .to(LAPTOP)
        .into_iter()
        .find(|s| codes(s).contains(&110))
        .unwrap();
    let item = own_late
        .get_child("x", NS_MUC_USER)
        .unwrap()
        .get_child("item", NS_MUC_USER)
        .unwrap();
    assert_eq!(item.attr("jid"), Some(LAPTOP));
}

#[test]
fn confirmed_joins_and_leaves_ask_for_persistence() {
    let mut w = World::new();
    let steps = w.join_local(PHONE, ROOM, "Alice", "Bob");
    let persisted = |s: &Step| {
        s.outcome
            .actions
            .iter()
            .any(|a| matches!(a, super::Action::Persist { .. }))
    };
    assert!(!persisted(&steps[0]), "an unconfirmed join is not kept");
    assert!(
        persisted(&steps[2]),
        "the room's self-presence confirms the join"
    );
    let stored = w.mm.persisted(&bare(ALICE));
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].nick, "Alice");
    w.client(
        PHONE,
        &format!("<presence type='unavailable' to='{ROOM}/Alice'/>"),
    );
    let gone = w.room(ALICE, &format!("<presence type='unavailable' from='{ROOM}/Alice'><x xmlns='{NS_MUC_USER}'><status code='110'/></x></presence>"));
    assert!(persisted(&gone));
    assert!(w.mm.persisted(&bare(ALICE)).is_empty());
}

#[test]
fn restored_rooms_claim_their_traffic_and_resync_with_a_join_asking_for_missed_history() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.room(ALICE, &groupchat("Bob", "before"));
    let stored = w.mm.persisted(&bare(ALICE));
    assert!(stored[0].last_seen.is_some());

    let mut after = World::new();
    after.mm.restore_account(after.now, bare(ALICE), stored);
    // Before the resync, a message from the room is still claimed (no bounce, no kick).
    assert!(after.room(ALICE, &groupchat("Bob", "early")).handled());
    let resume = after.mm.resume(after.now);
    let routed: Vec<_> = resume
        .actions
        .iter()
        .filter_map(|a| match a {
            super::Action::Route { stanza } => Some(stanza.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].attr("from"), Some(ALICE));
    assert_eq!(routed[0].attr("to"), Some("room@muc.localhost/Alice"));
    let history = routed[0]
        .get_child("x", NS_MUC)
        .unwrap()
        .get_child("history", NS_MUC)
        .unwrap();
    assert!(
        history.attr("since").is_some(),
        "asks only for what was missed"
    );
    // The room answers as for a rejoin; a session joining afterwards gets a full replay.
    after.room(ALICE, &occupant_presence(ROOM, "Bob", None));
    after.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
    let late = after.client(LAPTOP, &join_xml("Alice"));
    let routed = late.routed();
    assert_eq!(
        routed.len(),
        1,
        "only the account's presence comes back from away"
    );
    assert!(
        !routed[0].has_child("x", NS_MUC),
        "a presence update, not a join"
    );
    assert!(routed[0].get_child("show", super::muc::NS_CLIENT).is_none());
    assert!(late.to(LAPTOP).iter().any(|s| codes(s).contains(&110)));
}

#[test]
fn deleting_an_account_leaves_its_rooms_and_forgets_it() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let out = w.mm.forget_account(&bare(ALICE));
    assert!(
        matches!(&out.actions[0], super::Action::Route { stanza } if stanza.attr("type") == Some("unavailable"))
    );
    assert!(w.mm.accounts().next().is_none());
}

#[test]
fn groupchat_from_rooms_the_account_is_in_is_archived_and_nothing_else() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let from = |s: &str| s.parse::<jid::Jid>().unwrap();
    assert!(w.mm.should_archive(
        &bare(ALICE),
        &from("room@muc.localhost/Bob"),
        Some("groupchat")
    ));
    assert!(
        !w.mm
            .should_archive(&bare(ALICE), &from("room@muc.localhost/Bob"), Some("chat")),
        "PMs follow mod_mam's own rules"
    );
    assert!(!w.mm.should_archive(
        &bare(ALICE),
        &from("other@muc.localhost/Bob"),
        Some("groupchat")
    ));
    assert!(!w.mm.should_archive(
        &bare("bob@a.localhost"),
        &from("room@muc.localhost/Bob"),
        Some("groupchat")
    ));
}

fn conference(autojoin: &str, nick: &str) -> minidom::Element {
    el(&format!("<conference xmlns='urn:xmpp:bookmarks:1' autojoin='{autojoin}'><nick>{nick}</nick></conference>"))
}

fn bookmark(w: &mut World, autojoin: &str, nick: &str) -> Step {
    let input = super::Input::BookmarkPublished {
        account: bare(ALICE),
        room: bare(ROOM),
        conference: conference(autojoin, nick),
    };
    Step {
        outcome: w.mm.handle(w.now, input),
        input: None,
    }
}

#[test]
fn autojoin_bookmark_makes_the_account_join_with_no_session_online() {
    let mut w = World::new();
    let step = bookmark(&mut w, "true", "Alice");
    let routed = step.routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].attr("from"), Some(ALICE));
    assert_eq!(routed[0].attr("to"), Some("room@muc.localhost/Alice"));
    assert!(routed[0].has_child("x", NS_MUC));
    // The room's answer is claimed though no session joined; a session joining later gets the replay.
    assert!(w
        .room(ALICE, &self_presence(ROOM, "Alice", &[110]))
        .handled());
    assert!(w.room(ALICE, &groupchat("Bob", "hi")).handled());
    let late = w.client(PHONE, &join_xml("Alice"));
    assert!(late.to(PHONE).iter().any(|s| codes(s).contains(&110)));
}

#[test]
fn clearing_autojoin_or_retracting_the_bookmark_makes_the_account_leave_and_sessions_hear_the_room()
{
    for retract in [false, true] {
        let mut w = World::new();
        bookmark(&mut w, "true", "Alice");
        w.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
        w.client(PHONE, &join_xml("Alice"));
        let step = if retract {
            let input = super::Input::BookmarkRetracted {
                account: bare(ALICE),
                room: bare(ROOM),
            };
            Step {
                outcome: w.mm.handle(w.now, input),
                input: None,
            }
        } else {
            bookmark(&mut w, "false", "Alice")
        };
        assert_eq!(step.routed()[0].attr("type"), Some("unavailable"));
        let answer = w.room(ALICE, &format!("<presence type='unavailable' from='{ROOM}/Alice'><x xmlns='{NS_MUC_USER}'><status code='110'/></x></presence>"));
        assert_eq!(
            answer.to(PHONE).len(),
            1,
            "the joined session gets the room's unavailable"
        );
        assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
    }
}

#[test]
fn leaving_for_good_clears_the_bookmarks_autojoin() {
    let mut w = World::new();
    bookmark(&mut w, "true", "Alice");
    w.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
    let kick = w.room(ALICE, &format!("<presence type='unavailable' from='{ROOM}/Alice'><x xmlns='{NS_MUC_USER}'><status code='110'/><status code='307'/></x></presence>"));
    let published: Vec<_> = kick
        .outcome
        .actions
        .iter()
        .filter_map(|a| match a {
            super::Action::PublishBookmark { conference, .. } => Some(conference.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].attr("autojoin"), Some("false"));
    assert_eq!(
        published[0]
            .get_child("nick", "urn:xmpp:bookmarks:1")
            .map(|n| n.text()),
        Some("Alice".into()),
        "the rest is kept"
    );
}

#[test]
fn a_joined_room_that_is_not_bookmarked_gets_a_bookmark_when_configured() {
    let mut w = World::with_config(Config {
        bookmark_joins: true,
        ..Config::default()
    });
    let steps = w.join_local(PHONE, ROOM, "Alice", "Bob");
    assert!(steps[2]
        .outcome
        .actions
        .iter()
        .any(|a| matches!(a, super::Action::PublishBookmark { .. })));
    let mut off = World::new();
    let steps = off.join_local(PHONE, ROOM, "Alice", "Bob");
    assert!(
        !steps[2]
            .outcome
            .actions
            .iter()
            .any(|a| matches!(a, super::Action::PublishBookmark { .. })),
        "off by default"
    );
}

#[test]
fn the_account_self_pings_its_rooms_and_rejoins_one_that_dropped_it_without_sessions_seeing_a_leave(
) {
    let mut w = World::with_config(Config {
        ping_interval_ms: Some(60_000),
        ..Config::default()
    });
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let tick = w.tick(60_000);
    let ping = &tick.routed()[0];
    assert!(ping.has_child("ping", "urn:xmpp:ping"));
    assert_eq!(ping.attr("from"), Some(ALICE));
    let id = ping.attr("id").unwrap().to_owned();
    let dropped = w.room(ALICE, &format!("<iq type='error' id='{id}' from='{ROOM}/Alice'><error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    assert!(dropped.handled());
    assert!(dropped.recipients().is_empty(), "sessions see no leave");
    let rejoin = &dropped.routed()[0];
    assert!(rejoin.has_child("x", NS_MUC), "a join from the account");
    assert_eq!(
        w.mm.sessions_in(&bare(ALICE), &bare(ROOM)),
        vec![full(PHONE)]
    );
    // The room lets it back in; it is joined again and sessions keep getting traffic.
    w.room(ALICE, &self_presence(ROOM, "Alice", &[110]));
    assert_eq!(w.room(ALICE, &groupchat("Bob", "back")).to(PHONE).len(), 1);
}

#[test]
fn late_sessions_own_presence_shows_what_it_sent_not_the_accounts_away_presence() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.closed(PHONE);
    // The room reflects the account's "away from all devices" presence.
    w.room(ALICE, &format!(
        "<presence from='{ROOM}/Alice'><show>xa</show><x xmlns='{NS_MUC_USER}'><item affiliation='owner' role='moderator'/><status code='110'/></x></presence>"
    ));
    let late = w.client(
        LAPTOP,
        &format!(
            "<presence to='{ROOM}/Alice'><status>here</status><x xmlns='{NS_MUC}'/></presence>"
        ),
    );
    let own = late
        .to(LAPTOP)
        .into_iter()
        .find(|s| codes(s).contains(&110))
        .unwrap();
    assert!(
        own.get_child("show", super::muc::NS_CLIENT).is_none(),
        "available, as the session said"
    );
    assert_eq!(
        own.get_child("status", super::muc::NS_CLIENT)
            .map(|s| s.text()),
        Some("here".into())
    );
}

#[test]
fn joins_beyond_the_per_minute_limit_get_policy_violation_and_change_nothing() {
    let mut w = World::with_config(Config {
        max_joins_per_minute: 3,
        ..Config::default()
    });
    for i in 0..3 {
        let step = w.client(
            PHONE,
            &format!("<presence to='r{i}@muc.localhost/Alice'><x xmlns='{NS_MUC}'/></presence>"),
        );
        assert_eq!(step.routed().len(), 1);
    }
    let step = w.client(
        PHONE,
        &format!("<presence to='r9@muc.localhost/Alice'><x xmlns='{NS_MUC}'/></presence>"),
    );
    assert!(step.routed().is_empty());
    let err = &step.to(PHONE)[0];
    assert!(err
        .get_child("error", super::muc::NS_CLIENT)
        .unwrap()
        .has_child("policy-violation", super::muc::NS_STANZAS));
    assert_eq!(w.mm.rooms_of(&bare(ALICE)).len(), 3, "nothing else changes");
    w.now += 60_000;
    assert_eq!(
        w.client(
            PHONE,
            &format!("<presence to='r9@muc.localhost/Alice'><x xmlns='{NS_MUC}'/></presence>")
        )
        .routed()
        .len(),
        1,
        "a minute later it works"
    );
}

#[test]
fn late_session_asking_for_more_history_than_the_buffer_holds_gets_the_rest_from_the_archive() {
    let mut w = World::with_config(Config {
        history_max_messages: 5,
        history_length: 5,
        ..Config::default()
    });
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    for i in 0..2 {
        let mut m = el(&groupchat("Bob", &format!("buffered{i}")));
        m.append_child(el(&format!(
            "<stanza-id xmlns='urn:xmpp:sid:0' by='{ALICE}' id='arch-b{i}'/>"
        )));
        w.room(ALICE, &String::from(&m));
    }
    let step = w.client(LAPTOP, &format!("<presence to='{ROOM}/Alice'><x xmlns='{NS_MUC}'><history maxstanzas='4'/></x></presence>"));
    let fetch = step.outcome.actions.iter().find_map(|a| match a {
        super::Action::FetchHistory {
            to,
            limit,
            before,
            before_id,
            ..
        } => Some((to.clone(), *limit, *before, before_id.clone())),
        _ => None,
    });
    let (to, limit, before, before_id) = fetch.expect("asks the archive for the older part");
    assert_eq!((to, limit), (full(LAPTOP), 2));
    assert!(before.is_some());
    // What the archive stored before the oldest buffered message (messages of one second
    // cannot be told apart by time).
    assert_eq!(before_id.as_deref(), Some("arch-b0"));
    // The archive answers newest first, including a message the buffer also has.
    let archived = |id: &str, body: &str| super::archive::ArchivedMessage {
        id: id.into(),
        stanza: el(&groupchat("Bob", body)),
        when: 1_000,
    };
    let out = w.mm.archived_history(
        &full(LAPTOP),
        &bare(ROOM),
        2,
        vec![
            archived("arch-b0", "buffered0"),
            archived("a2", "old2"),
            archived("a1", "old1"),
        ],
    );
    let bodies: Vec<String> = out
        .actions
        .iter()
        .filter_map(|a| match a {
            super::Action::Deliver { stanza, .. } => stanza
                .get_child("body", super::muc::NS_CLIENT)
                .map(|b| b.text()),
            _ => None,
        })
        .collect();
    assert_eq!(
        bodies,
        vec!["old1", "old2"],
        "oldest first, without what the buffer replays"
    );
    // The order of the replay: presences, self, [archive], buffer, subject.
    let kinds: Vec<&str> = super::testkit::materialized(&step.outcome)
        .actions
        .iter()
        .map(|a| match a {
            super::Action::FetchHistory { .. } => "fetch",
            super::Action::Deliver { stanza, .. } if stanza.name() == "presence" => "presence",
            super::Action::Deliver { stanza, .. }
                if stanza.has_child("subject", super::muc::NS_CLIENT) =>
            {
                "subject"
            }
            super::Action::Deliver { .. } => "history",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        vec!["presence", "presence", "fetch", "history", "history", "subject"]
    );
}

#[test]
fn no_archive_query_when_the_buffer_satisfies_the_request_or_a_time_limit_cuts_it() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.room(ALICE, &groupchat("Bob", "one"));
    let zero = w.client(LAPTOP, &format!("<presence to='{ROOM}/Alice'><x xmlns='{NS_MUC}'><history maxstanzas='1'/></x></presence>"));
    assert!(!zero
        .outcome
        .actions
        .iter()
        .any(|a| matches!(a, super::Action::FetchHistory { .. })));
    // The buffer holds a message older than the window: everything wanted is in the buffer.
    w.now += 10_000;
    let recent = w.client(
        DESK,
        &format!(
            "<presence to='{ROOM}/Alice'><x xmlns='{NS_MUC}'><history seconds='5'/></x></presence>"
        ),
    );
    assert!(!recent
        .outcome
        .actions
        .iter()
        .any(|a| matches!(a, super::Action::FetchHistory { .. })));
}

#[test]
fn attaching_sessions_to_a_joined_room_does_not_count_against_the_join_rate() {
    let mut w = World::with_config(Config {
        max_joins_per_minute: 1,
        ..Config::default()
    });
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    for session in [LAPTOP, DESK] {
        let step = w.client(session, &join_xml("Alice"));
        assert!(
            step.to(session).iter().any(|s| codes(s).contains(&110)),
            "{session} attached"
        );
    }
}

// ----- answers matched to what the account asked (the fixes of the property tests' findings) ----

/// The id the core gave the presence routed by this step (Prosody's MUC reflects it).
fn routed_id(step: &Step) -> String {
    step.routed()[0].attr("id").expect("an id").to_owned()
}

/// The room's presence about the account with this id (`None`: a room that reflects none).
fn reflected(xml: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => xml.replacen("<presence ", &format!("<presence id='{id}' "), 1),
        None => xml.to_owned(),
    }
}

fn conflict_from(nick: &str, id: Option<&str>) -> String {
    reflected(&format!(
        "<presence type='error' from='{ROOM}/{nick}'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    ), id)
}

#[test]
fn an_answered_iq_leaves_no_empty_account_behind() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let iq = w.client(
        PHONE,
        &format!("<iq type='get' id='v1' to='{ROOM}/Bob'><query xmlns='jabber:iq:version'/></iq>"),
    );
    let id = routed_id(&iq);
    let leave = w.client(
        PHONE,
        &format!("<presence type='unavailable' to='{ROOM}/Alice'/>"),
    );
    w.room(
        ALICE,
        &reflected(
            &self_unavailable(ROOM, "Alice", &[110]),
            Some(&routed_id(&leave)),
        ),
    );
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
    // The minute of the join rate limit passes; only the iq is left.
    assert!(w.tick(60_000).recipients().is_empty());
    assert_eq!(w.mm.accounts().count(), 1);
    let answer = w.room(
        ALICE,
        &format!("<iq type='result' id='{id}' from='{ROOM}/Bob'/>"),
    );
    assert_eq!(answer.to(PHONE)[0].attr("id"), Some("v1"));
    assert_eq!(w.mm.accounts().count(), 0, "nothing left for the account");
}

#[test]
fn a_leave_the_room_never_answers_ends_with_a_local_self_unavailable_after_the_join_timeout() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    // The room forgot the account (a restart): it ignores the leave.
    w.client(
        PHONE,
        &format!("<presence type='unavailable' to='{ROOM}/Alice'/>"),
    );
    assert!(w.tick(59_000).to(PHONE).is_empty(), "not yet");
    let step = w.tick(1_000);
    let got = step.to(PHONE);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attr("type"), Some("unavailable"));
    assert_eq!(got[0].attr("from"), Some("room@muc.localhost/Alice"));
    assert_eq!(codes(&got[0]), vec![110]);
    assert!(
        w.mm.join(&bare(ALICE), &bare(ROOM)).is_none(),
        "a later join starts afresh"
    );
}

#[test]
fn join_errors_come_from_the_occupant_jid_each_session_asked_for() {
    let mut w = World::new();
    w.client(PHONE, &join_xml("Alice"));
    w.client(LAPTOP, &join_xml("Ally"));
    let step = w.tick(60_000);
    assert_eq!(
        step.to(PHONE)[0].attr("from"),
        Some("room@muc.localhost/Alice")
    );
    assert_eq!(
        step.to(LAPTOP)[0].attr("from"),
        Some("room@muc.localhost/Ally")
    );

    // The same for the room's own refusal.
    let mut w = World::new();
    let join = w.client(PHONE, &join_xml("Alice"));
    w.client(LAPTOP, &join_xml("Ally"));
    let err = w.room(ALICE, &conflict_from("Alice", Some(&routed_id(&join))));
    assert_eq!(
        err.to(PHONE)[0].attr("from"),
        Some("room@muc.localhost/Alice")
    );
    assert_eq!(
        err.to(LAPTOP)[0].attr("from"),
        Some("room@muc.localhost/Ally")
    );
    assert_eq!(err.to(LAPTOP)[0].attr("type"), Some("error"));
}

#[test]
fn a_session_joining_again_while_its_leave_is_unanswered_gets_only_its_joins_answer() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let leave = w.client(
        PHONE,
        &format!("<presence type='unavailable' to='{ROOM}/Alice'/>"),
    );
    let join = w.client(PHONE, &join_xml("Zed"));
    let left = w.room(
        ALICE,
        &reflected(
            &self_unavailable(ROOM, "Alice", &[110]),
            Some(&routed_id(&leave)),
        ),
    );
    assert!(left.handled());
    assert!(
        left.to(PHONE).is_empty(),
        "it no longer waits for that answer"
    );
    let err = w.room(ALICE, &conflict_from("Zed", Some(&routed_id(&join))));
    assert_eq!(err.to(PHONE).len(), 1, "its join's error, once");
}

#[test]
fn an_autojoined_room_with_no_session_is_left_after_minimix_leave_after() {
    let mut w = World::with_config(Config {
        leave_after_ms: Some(5_000),
        ..Config::default()
    });
    let join = bookmark(&mut w, "true", "Alice");
    w.room(
        ALICE,
        &reflected(
            &self_presence(ROOM, "Alice", &[110]),
            Some(&routed_id(&join)),
        ),
    );
    assert!(w.mm.poll_timeout().is_some_and(|t| t <= w.now + 5_000));
    let step = w.tick(5_000);
    let routed = step.routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].attr("type"), Some("unavailable"));
}

#[test]
fn after_a_refused_nick_change_the_room_still_gets_the_sessions_aggregate_presence() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(
        LAPTOP,
        &format!("<presence to='{ROOM}/Alice'><show>chat</show><x xmlns='{NS_MUC}'/></presence>"),
    );
    // The room shows chat (the laptop's). The phone asks for a taken nick, showing away.
    let change = w.client(
        PHONE,
        &format!("<presence to='{ROOM}/Bob'><show>away</show></presence>"),
    );
    w.room(ALICE, &conflict_from("Bob", Some(&routed_id(&change))));
    // The laptop goes away too: now the room must be told (it still shows chat).
    let update = w.client(
        LAPTOP,
        &format!("<presence to='{ROOM}/Alice'><show>away</show></presence>"),
    );
    let routed = update.routed();
    assert_eq!(routed.len(), 1, "the room still shows chat");
    assert_eq!(
        routed[0]
            .get_child("show", super::muc::NS_CLIENT)
            .map(|s| s.text()),
        Some("away".to_owned())
    );
}

#[test]
fn an_error_about_a_closed_sessions_message_reaches_nobody() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(LAPTOP, &join_xml("Alice"));
    w.client(
        PHONE,
        &format!("<message type='chat' id='pm1' to='{ROOM}/Nobody'><body>hi</body></message>"),
    );
    w.closed(PHONE);
    let err = w.room(ALICE, &format!("<message type='error' id='pm1' from='{ROOM}/Nobody'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    assert!(err.handled(), "claimed: never bounced to the room");
    assert!(
        err.recipients().is_empty(),
        "not the laptop, not a new phone session"
    );
}

#[test]
fn a_rejoin_starts_the_self_ping_interval_afresh() {
    let mut w = World::with_config(Config {
        ping_interval_ms: Some(30_000),
        ..Config::default()
    });
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    // The room forgot the account; the leave goes unanswered past the ping time.
    w.client(
        PHONE,
        &format!("<presence type='unavailable' to='{ROOM}/Alice'/>"),
    );
    w.tick(30_000);
    let join = w.client(PHONE, &join_xml("Alice"));
    w.room(
        ALICE,
        &reflected(
            &self_presence(ROOM, "Alice", &[110]),
            Some(&routed_id(&join)),
        ),
    );
    let due =
        w.mm.join(&bare(ALICE), &bare(ROOM))
            .and_then(|j| j.next_ping);
    assert_eq!(due, Some(w.now + 30_000));
    assert!(w.mm.poll_timeout().is_some_and(|t| t <= w.now + 30_000));
}

#[test]
fn the_answer_to_an_earlier_leave_reaches_only_who_left_and_keeps_the_new_join() {
    for reflects_ids in [true, false] {
        let mut w = World::new();
        let id = |step: &Step| reflects_ids.then(|| routed_id(step));
        // A remote room: nothing is answered until the end.
        let j1 = w.client(PHONE, &join_xml("Alice"));
        let l1 = w.client(
            PHONE,
            &format!("<presence type='unavailable' to='{ROOM}/Alice'/>"),
        );
        let j2 = w.client(LAPTOP, &join_xml("Alice"));
        let first = w.room(
            ALICE,
            &reflected(&self_presence(ROOM, "Alice", &[110]), id(&j1).as_deref()),
        );
        assert!(
            first.recipients().is_empty(),
            "about the first join, before the leave"
        );
        let left = w.room(
            ALICE,
            &reflected(&self_unavailable(ROOM, "Alice", &[110]), id(&l1).as_deref()),
        );
        assert_eq!(left.recipients(), vec![PHONE.to_string()]);
        assert!(matches!(
            w.mm.join(&bare(ALICE), &bare(ROOM)).map(|j| j.phase),
            Some(Phase::Joining { .. })
        ));
        let joined = w.room(
            ALICE,
            &reflected(&self_presence(ROOM, "Alice", &[110]), id(&j2).as_deref()),
        );
        assert_eq!(joined.recipients(), vec![LAPTOP.to_string()]);
        assert_eq!(
            w.mm.join(&bare(ALICE), &bare(ROOM)).map(|j| j.phase),
            Some(Phase::Joined)
        );
    }
}

#[test]
fn a_kick_while_leaving_is_no_answer_to_the_leave() {
    let mut w = World::new();
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    w.client(
        PHONE,
        &format!("<presence type='unavailable' to='{ROOM}/Alice'/>"),
    );
    w.client(LAPTOP, &join_xml("Alice"));
    // Kicked before the room got the leave: both hear it, and the state goes.
    let kick = w.room(ALICE, &self_unavailable(ROOM, "Alice", &[110, 307]));
    assert_eq!(kick.to(PHONE).len(), 1);
    assert_eq!(kick.to(LAPTOP).len(), 1);
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
}

#[test]
fn a_self_presence_from_before_the_leave_does_not_bring_the_join_back() {
    let mut w = World::with_config(Config {
        leave_after_ms: Some(5_000),
        ..Config::default()
    });
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let update = w.client(
        PHONE,
        &format!("<presence to='{ROOM}/Alice'><show>dnd</show></presence>"),
    );
    let leave = w.client(
        PHONE,
        &format!("<presence type='unavailable' to='{ROOM}/Alice'/>"),
    );
    let stale = w.room(
        ALICE,
        &reflected(
            &self_presence(ROOM, "Alice", &[110]),
            Some(&routed_id(&update)),
        ),
    );
    assert!(stale.recipients().is_empty());
    assert_eq!(
        w.mm.join(&bare(ALICE), &bare(ROOM)).map(|j| j.phase),
        Some(Phase::Leaving)
    );
    let left = w.room(
        ALICE,
        &reflected(
            &self_unavailable(ROOM, "Alice", &[110]),
            Some(&routed_id(&leave)),
        ),
    );
    assert_eq!(left.recipients(), vec![PHONE.to_string()]);
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
}

#[test]
fn a_failed_quiet_rejoin_removes_the_joined_sessions_with_status_333() {
    let mut w = World::with_config(Config {
        ping_interval_ms: Some(60_000),
        ..Config::default()
    });
    w.join_local(PHONE, ROOM, "Alice", "Bob");
    let ping = w.tick(60_000);
    let ping_id = routed_id(&ping);
    let dropped = w.room(ALICE, &format!("<iq type='error' id='{ping_id}' from='{ROOM}/Alice'><error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    // Someone took the nick meanwhile: the rejoin is refused.
    let refused = w.room(ALICE, &conflict_from("Alice", Some(&routed_id(&dropped))));
    let got = refused.to(PHONE);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].attr("type"),
        Some("unavailable"),
        "not a bare error while 'joined'"
    );
    assert_eq!(got[0].attr("from"), Some("room@muc.localhost/Alice"));
    assert_eq!(codes(&got[0]), vec![110, 333]);
    assert!(w.mm.join(&bare(ALICE), &bare(ROOM)).is_none());
}

#[test]
fn stored_rooms_with_a_bad_nick_or_password_are_not_restored() {
    use super::persist::{PersistedRoom, StoredRoomError};
    let stored = |room: &str, nick: &str, password: Option<&str>| PersistedRoom {
        room: bare(room),
        nick: nick.to_owned(),
        password: password.map(str::to_owned),
        last_seen: None,
        heard: Default::default(),
    };
    let rooms = vec![
        stored("good@muc.localhost", "Alice", Some("secret")),
        stored("empty@muc.localhost", "", None),
        stored("control@muc.localhost", "Al\u{7}ice", None),
        stored("long@muc.localhost", &"a".repeat(2000), None),
        stored("pw@muc.localhost", "Alice", Some("se\ncret")),
        stored("longpw@muc.localhost", "Alice", Some(&"p".repeat(5000))),
    ];
    assert_eq!(rooms[1].check(), Err(StoredRoomError::BadNick));
    assert_eq!(rooms[2].check(), Err(StoredRoomError::BadNick));
    assert_eq!(rooms[3].check(), Err(StoredRoomError::BadNick));
    assert_eq!(rooms[4].check(), Err(StoredRoomError::BadPassword));
    assert_eq!(rooms[5].check(), Err(StoredRoomError::BadPassword));
    let mut w = World::new();
    w.mm.restore_account(w.now, bare(ALICE), rooms);
    let restored: Vec<_> =
        w.mm.rooms_of(&bare(ALICE))
            .into_iter()
            .map(|(room, _, _)| room.to_string())
            .collect();
    assert_eq!(restored, vec!["good@muc.localhost".to_owned()]);
}
