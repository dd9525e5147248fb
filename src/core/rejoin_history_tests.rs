//! A rejoin (after a local restart, or a quiet one after the room dropped the account) asks
//! the room for history from a little before the last message heard, and recognises the
//! room's replays of what was heard: nothing the room sent is lost (not even in the same
//! whole second as the last message heard, as rooms stamp history), nothing is repeated to
//! sessions, cached twice or archived twice.

use minidom::Element;

use super::archive::NS_SID;
use super::muc::{NS_DELAY, NS_MUC};
use super::persist::PersistedRoom;
use super::testkit::*;
use super::time::{self, Millis};
use super::{Action, Config};

const ROOM: &str = "room@muc.example";
const ALICE: &str = "alice@a.localhost";
const PHONE: &str = "alice@a.localhost/phone";
const LAPTOP: &str = "alice@a.localhost/laptop";
const DESK: &str = "alice@a.localhost/desk";
/// The start of a whole second.
const SECOND: Millis = 1_800_000_000_000;

/// A world plus what mod_mam would do before the module's hook: ask `should_archive_message`
/// and, if so, store the message and stamp it with the archive's id.
struct Rig {
    w: World,
    /// (archive id, body), in the order stored.
    archive: Vec<(String, String)>,
    stored: usize,
}

impl Rig {
    fn new(config: Config, now: Millis) -> Self {
        let mut w = World::with_config(config);
        w.now = now;
        Self {
            w,
            archive: Vec::new(),
            stored: 0,
        }
    }

    /// The room sends `xml` to the account, through mod_mam.
    fn room_says(&mut self, xml: &str) -> Step {
        let mut stanza = el(xml);
        super::xml::set_attr(&mut stanza, "to", ALICE);
        if self.w.mm.should_archive_message(&bare(ALICE), &stanza) {
            self.stored += 1;
            let id = format!("arch-{}", self.stored);
            self.archive.push((id.clone(), body_of(&stanza)));
            stanza.append_child(super::xml::element(
                "stanza-id",
                NS_SID,
                &[("by", ALICE), ("id", &id)],
            ));
        }
        let step = self.w.room(ALICE, &String::from(&stanza));
        // The shim takes messages back out of the archive by id.
        for action in &step.outcome.actions {
            if let Action::Unarchive { account, id } = action {
                assert_eq!(account.as_str(), ALICE);
                let before = self.archive.len();
                self.archive.retain(|(i, _)| i != id);
                assert_eq!(self.archive.len() + 1, before, "{id} was archived once");
            }
        }
        step
    }

    /// The archived messages with a body (the room's subject is archived too).
    fn archived(&self) -> Vec<&str> {
        self.archive
            .iter()
            .map(|(_, b)| b.as_str())
            .filter(|b| !b.is_empty())
            .collect()
    }

    /// What `session` gets while the room sends `xmls`, one after the other.
    fn answer_to(&mut self, session: &str, xmls: &[String]) -> Vec<Element> {
        xmls.iter()
            .flat_map(|xml| self.room_says(xml).to(session))
            .collect()
    }

    /// The bodies in the account's history buffer for the room, oldest first.
    fn cached(&self) -> Vec<String> {
        self.w
            .mm
            .join(&bare(ALICE), &bare(ROOM))
            .map(|j| {
                j.cache
                    .history
                    .iter()
                    .map(|h| body_of(&h.stanza.element().unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn body_of(stanza: &Element) -> String {
    stanza
        .get_child("body", super::muc::NS_CLIENT)
        .map(|b| b.text())
        .unwrap_or_default()
}

fn bodies(stanzas: &[Element]) -> Vec<String> {
    stanzas
        .iter()
        .filter(|s| s.name() == "message")
        .map(body_of)
        .filter(|b| !b.is_empty())
        .collect()
}

/// A message as the room broadcasts it live; `sid` is the room's XEP-0359 id (muc_mam).
fn live(body: &str, sid: Option<&str>) -> String {
    let sid = sid
        .map(|id| format!("<stanza-id xmlns='{NS_SID}' by='{ROOM}' id='{id}'/>"))
        .unwrap_or_default();
    format!("<message type='groupchat' id='m-{body}' from='{ROOM}/Bob'><body>{body}</body>{sid}</message>")
}

/// The room's history copy of a message: the live one plus a whole-second `<delay/>`.
fn replay(body: &str, sid: Option<&str>, stamp: Millis) -> String {
    let sid = sid
        .map(|id| format!("<stanza-id xmlns='{NS_SID}' by='{ROOM}' id='{id}'/>"))
        .unwrap_or_default();
    let stamp = time::format_datetime(stamp);
    format!("<message type='groupchat' id='m-{body}' from='{ROOM}/Bob'><body>{body}</body><delay xmlns='{NS_DELAY}' from='{ROOM}' stamp='{stamp}'/>{sid}</message>")
}

fn subject() -> String {
    format!("<message type='groupchat' from='{ROOM}/Bob'><subject>Welcome</subject></message>")
}

fn join_as(nick: &str) -> String {
    format!("<presence to='{ROOM}/{nick}'><x xmlns='{NS_MUC}'/></presence>")
}

/// The `since` of the history a (re)join asks for.
fn since_asked(routed: &[Element]) -> Millis {
    let history = routed
        .iter()
        .find_map(|s| s.get_child("x", NS_MUC))
        .and_then(|x| x.get_child("history", NS_MUC))
        .expect("a join with <history/>");
    time::parse_datetime(history.attr("since").expect("since")).expect("a date")
}

/// phone joins; Bob says `before-1` and `before-2` within one second (the last heard).
fn heard_two_in_one_second(sid: bool) -> Rig {
    let mut rig = Rig::new(Config::default(), SECOND - 5_000);
    rig.w.join_local(PHONE, ROOM, "Alice", "Bob");
    rig.w.now = SECOND + 200;
    rig.room_says(&live("before-1", sid.then_some("R1")));
    rig.w.now = SECOND + 600;
    rig.room_says(&live("before-2", sid.then_some("R2")));
    assert_eq!(rig.archived(), ["before-1", "before-2"]);
    rig
}

/// The server restarts: what was persisted is restored and the account rejoins.
fn restarted(rig: Rig, now: Millis) -> (Rig, Vec<Element>) {
    let stored = rig.w.mm.persisted(&bare(ALICE));
    assert_eq!(stored.len(), 1);
    let mut after = Rig::new(Config::default(), now);
    after.archive = rig.archive;
    after.stored = rig.stored;
    after.w.mm.restore_account(now, bare(ALICE), stored);
    let resume = after.w.mm.resume(now);
    let routed = resume
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Route { stanza } => Some(stanza.clone()),
            _ => None,
        })
        .collect();
    (after, routed)
}

fn restart_loses_nothing_and_repeats_nothing(sid: bool) {
    let rig = heard_two_in_one_second(sid);
    // While the server restarts, Bob goes on in the same second, then in the next.
    let (mut rig, routed) = restarted(rig, SECOND + 4_000);
    let since = since_asked(&routed);
    assert!(
        since <= SECOND,
        "asks for the whole last-heard second: {}",
        time::format_datetime(since)
    );
    rig.room_says(&self_presence(ROOM, "Alice", &[110]));
    // The room replays everything it stamped since then, whole seconds.
    rig.room_says(&replay("before-1", sid.then_some("R1"), SECOND));
    rig.room_says(&replay("before-2", sid.then_some("R2"), SECOND));
    rig.room_says(&replay("missed-1", sid.then_some("R3"), SECOND));
    rig.room_says(&replay("missed-2", sid.then_some("R4"), SECOND + 1_000));
    rig.room_says(&subject());
    assert_eq!(
        rig.archived(),
        ["before-1", "before-2", "missed-1", "missed-2"],
        "each message archived once"
    );
    assert_eq!(
        rig.cached(),
        ["before-1", "before-2", "missed-1", "missed-2"],
        "each message cached once"
    );
    // A later session's history has each message once, in order.
    let late = rig.w.client(LAPTOP, &join_as("Alice"));
    assert_eq!(
        bodies(&late.to(LAPTOP)),
        ["before-1", "before-2", "missed-1", "missed-2"]
    );
    // ... and the replays keep the archive ids they had (the archive's copy is the same).
    let ids: Vec<_> = late
        .to(LAPTOP)
        .iter()
        .filter(|s| !body_of(s).is_empty())
        .map(|s| super::archive::archive_id(s, &bare(ALICE)).map(str::to_owned))
        .collect();
    assert_eq!(
        ids,
        [
            Some("arch-1".to_owned()),
            Some("arch-2".to_owned()),
            Some("arch-3".to_owned()),
            Some("arch-4".to_owned())
        ]
    );
}

#[test]
fn a_restart_loses_nothing_sent_in_the_last_heard_second_and_repeats_nothing() {
    restart_loses_nothing_and_repeats_nothing(true);
}

#[test]
fn without_the_rooms_stanza_ids_the_replays_are_recognised_by_their_content() {
    restart_loses_nothing_and_repeats_nothing(false);
}

/// A rig whose account self-pings its rooms every minute (XEP-0410), from `now`.
fn self_pinging(now: Millis) -> Rig {
    Rig::new(
        Config {
            ping_interval_ms: Some(60_000),
            ..Config::default()
        },
        now,
    )
}

/// phone is joined; the room drops the account and the self-ping notices: it rejoins.
fn quietly_rejoining(rig: &mut Rig) -> Vec<Element> {
    let tick = rig.w.tick(60_000);
    let id = tick.routed()[0].attr("id").unwrap().to_owned();
    let dropped = rig.room_says(&format!("<iq type='error' id='{id}' from='{ROOM}/Alice'><error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    dropped.routed()
}

#[test]
fn a_quiet_rejoin_gives_joined_sessions_only_what_they_missed() {
    let mut rig = self_pinging(SECOND - 59_000);
    rig.w.join_local(PHONE, ROOM, "Alice", "Bob");
    rig.w.now = SECOND + 200;
    assert_eq!(
        bodies(&rig.room_says(&live("before-1", Some("R1"))).to(PHONE)),
        ["before-1"]
    );
    rig.w.now = SECOND + 600;
    rig.room_says(&live("before-2", Some("R2")));
    let routed = quietly_rejoining(&mut rig);
    assert!(since_asked(&routed) <= SECOND);
    // A session joining while the rejoin is in flight gets the whole replay.
    rig.w.client(DESK, &join_as("Alice"));
    let mut at_phone = Vec::new();
    let mut at_desk = Vec::new();
    for xml in [
        occupant_presence(ROOM, "Bob", None),
        self_presence(ROOM, "Alice", &[110]),
        replay("before-1", Some("R1"), SECOND),
        replay("before-2", Some("R2"), SECOND),
        replay("missed-1", Some("R3"), SECOND),
        subject(),
    ] {
        let step = rig.room_says(&xml);
        at_phone.extend(step.to(PHONE));
        at_desk.extend(step.to(DESK));
    }
    assert_eq!(bodies(&at_phone), ["missed-1"], "only what phone missed");
    assert_eq!(bodies(&at_desk), ["before-1", "before-2", "missed-1"]);
    assert_eq!(rig.archived(), ["before-1", "before-2", "missed-1"]);
    assert_eq!(rig.cached(), ["before-1", "before-2", "missed-1"]);
    // Live traffic flows on, and a later session's history has each message once.
    assert_eq!(
        bodies(&rig.room_says(&live("after", Some("R4"))).to(PHONE)),
        ["after"]
    );
    let late = rig.w.client(LAPTOP, &join_as("Alice"));
    assert_eq!(
        bodies(&late.to(LAPTOP)),
        ["before-1", "before-2", "missed-1", "after"]
    );
}

/// phone heard two messages and leaves (the account's leave goes out); laptop joins at once.
fn phone_leaves_as_laptop_joins() -> Rig {
    let mut rig = heard_two_in_one_second(true);
    rig.w.client(
        PHONE,
        &format!("<presence type='unavailable' to='{ROOM}/Alice'/>"),
    );
    rig.w.client(LAPTOP, &join_as("Alice"));
    rig
}

#[test]
fn a_sessions_own_join_still_gets_the_history_the_account_heard() {
    // phone leaves (the account's leave is in flight) and laptop joins at once: the room
    // answers the leave, then laptop's join with the history laptop asked for. A new
    // membership: its history is news, buffered and archived again (as after any leave).
    let mut rig = phone_leaves_as_laptop_joins();
    rig.room_says(&self_unavailable(ROOM, "Alice", &[110]));
    let at_laptop = rig.answer_to(
        LAPTOP,
        &[
            self_presence(ROOM, "Alice", &[110]),
            replay("before-1", Some("R1"), SECOND),
            replay("before-2", Some("R2"), SECOND),
            subject(),
        ],
    );
    assert_eq!(bodies(&at_laptop), ["before-1", "before-2"]);
    assert_eq!(rig.cached(), ["before-1", "before-2"]);
    assert_eq!(
        rig.archived(),
        ["before-1", "before-2", "before-1", "before-2"]
    );
    // A later session's history has each once, in order.
    let late = rig.w.client(DESK, &join_as("Alice"));
    assert_eq!(bodies(&late.to(DESK)), ["before-1", "before-2"]);
}

/// The room says "during" before it gets the account's leave: laptop, not in yet, gets
/// nothing of it.
fn says_during_the_leave(rig: &mut Rig) {
    rig.w.now = SECOND + 800;
    assert!(rig
        .room_says(&live("during", Some("R3")))
        .to(LAPTOP)
        .is_empty());
}

/// The room answers laptop's join with everything said so far; what laptop gets.
fn answers_with_what_was_said(rig: &mut Rig) -> Vec<Element> {
    rig.answer_to(
        LAPTOP,
        &[
            self_presence(ROOM, "Alice", &[110]),
            replay("before-1", Some("R1"), SECOND),
            replay("before-2", Some("R2"), SECOND),
            replay("during", Some("R3"), SECOND),
            subject(),
        ],
    )
}

#[test]
fn live_messages_while_the_leave_is_in_flight_wait_for_the_next_membership() {
    // phone leaves and laptop joins at once; the room says something before it gets the
    // leave. Laptop is not in yet: it gets that message as its join's history, once.
    let mut rig = phone_leaves_as_laptop_joins();
    says_during_the_leave(&mut rig);
    rig.room_says(&self_unavailable(ROOM, "Alice", &[110]));
    let at_laptop = answers_with_what_was_said(&mut rig);
    assert_eq!(bodies(&at_laptop), ["before-1", "before-2", "during"]);
    assert_eq!(rig.cached(), ["before-1", "before-2", "during"]);
}

#[test]
fn a_lost_leave_keeps_the_membership_and_what_was_heard_in_it() {
    // phone leaves, but the room never gets the leave; laptop joins meanwhile and the room
    // says something. The room answers laptop's join as a rejoin of the same membership:
    // laptop gets the message once (as history), and the archive keeps one copy.
    let mut rig = phone_leaves_as_laptop_joins();
    says_during_the_leave(&mut rig);
    let at_laptop = answers_with_what_was_said(&mut rig);
    assert_eq!(bodies(&at_laptop), ["before-1", "before-2", "during"]);
    assert_eq!(rig.archived(), ["before-1", "before-2", "during"]);
    assert_eq!(rig.cached(), ["before-1", "before-2", "during"]);
}

#[test]
fn older_history_before_a_heard_message_is_given_but_not_archived_after_newer() {
    // As above, but the room had forgotten the account: laptop's join starts a membership,
    // whose history brings "older" (never heard) before what the account heard.
    let mut rig = phone_leaves_as_laptop_joins();
    let at_laptop = rig.answer_to(
        LAPTOP,
        &[
            self_presence(ROOM, "Alice", &[110]),
            replay("older", Some("R0"), SECOND - 1_000),
            replay("before-1", Some("R1"), SECOND),
            replay("before-2", Some("R2"), SECOND),
            subject(),
        ],
    );
    // Laptop asked for history and gets it all, in order; the archive, which holds the
    // newer ones already, does not get the older one after them.
    assert_eq!(bodies(&at_laptop), ["older", "before-1", "before-2"]);
    assert_eq!(rig.archived(), ["before-1", "before-2"]);
    assert_eq!(rig.cached(), ["older", "before-1", "before-2"]);
    let late = rig.w.client(DESK, &join_as("Alice"));
    assert_eq!(bodies(&late.to(DESK)), ["older", "before-1", "before-2"]);
}

#[test]
fn what_was_heard_survives_storage_and_old_records_still_restore() {
    let rig = heard_two_in_one_second(true);
    let stored = rig.w.mm.persisted(&bare(ALICE));
    let keys: Vec<_> = stored[0].heard.messages().map(|m| m.key.clone()).collect();
    assert_eq!(keys, ["sid:R1", "sid:R2"]);
    assert_eq!(
        stored[0]
            .heard
            .messages()
            .map(|m| m.archive_id.clone())
            .collect::<Vec<_>>(),
        [Some("arch-1".to_owned()), Some("arch-2".to_owned())]
    );

    // A record from before the memory existed: no `heard`. It restores, and its rejoin asks
    // from a little before the last message heard (nothing lost; it cannot know what to skip).
    let old = PersistedRoom {
        room: bare(ROOM),
        nick: "Alice".into(),
        password: None,
        last_seen: Some(SECOND + 600),
        heard: Default::default(),
    };
    let mut w = World::new();
    w.now = SECOND + 4_000;
    w.mm.restore_account(w.now, bare(ALICE), vec![old]);
    assert!(w.mm.tracks(&bare(ALICE), &bare(ROOM)));
    let resume = w.mm.resume(w.now);
    let routed: Vec<Element> = resume
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Route { stanza } => Some(stanza.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(since_asked(&routed), SECOND - 2_000);
    // The history it gets is kept and archived as any new history.
    let mut rig = Rig {
        w,
        archive: vec![],
        stored: 0,
    };
    rig.room_says(&self_presence(ROOM, "Alice", &[110]));
    rig.room_says(&replay("before-2", Some("R2"), SECOND));
    rig.room_says(&subject());
    assert_eq!(rig.archived(), ["before-2"]);
    assert_eq!(rig.cached(), ["before-2"]);
}

#[test]
fn a_burst_beyond_the_memory_is_not_asked_for_again() {
    let mut rig = heard_two_in_one_second(true);
    // Then more messages than are remembered, over the next two seconds.
    for i in 0..super::heard::HEARD_KEPT as u64 + 2 {
        rig.w.now = SECOND + 1_000 + i * 50;
        rig.room_says(&live(&format!("burst-{i}"), Some(&format!("B{i}"))));
    }
    let (_, routed) = restarted(rig, SECOND + 10_000);
    // before-1/2 and the first two of the burst (in second +1) are forgotten: not asked for
    // again, though the last message heard (+2.65 s) would reach back into second 0.
    assert_eq!(since_asked(&routed), SECOND + 2_000);
}

/// The messages of a step, as `(session, body)`, in order.
fn bodies_to(step: &Step, sessions: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in sessions {
        for b in bodies(&step.to(s)) {
            out.push((s.to_string(), b));
        }
    }
    out
}

#[test]
fn a_message_said_just_before_the_account_joined_is_not_taken_for_a_missed_one() {
    // Bob says "just-before"; a moment later, in the same second, phone joins asking for no
    // history; then the account hears "heard".
    let mut rig = Rig::new(Config::default(), SECOND + 50);
    rig.w.now = SECOND + 100;
    rig.w.join_local(PHONE, ROOM, "Alice", "Bob");
    rig.w.now = SECOND + 600;
    rig.room_says(&live("heard", Some("R2")));
    // The rejoin after a restart asks from before "just-before" (whole seconds).
    let (mut rig, routed) = restarted(rig, SECOND + 4_000);
    assert!(since_asked(&routed) <= SECOND);
    rig.w.client(DESK, &join_as("Alice"));
    let at_desk = rig.answer_to(
        DESK,
        &[
            self_presence(ROOM, "Alice", &[110]),
            replay("just-before", Some("R1"), SECOND),
            replay("heard", Some("R2"), SECOND),
            replay("missed", Some("R3"), SECOND + 1_000),
            subject(),
        ],
    );
    // It comes before a message the account heard: it was never missed. Nobody gets it, and
    // the archive, which stored it as it arrived, has it no more.
    assert_eq!(bodies(&at_desk), ["heard", "missed"]);
    assert_eq!(rig.archived(), ["heard", "missed"]);
    assert_eq!(rig.cached(), ["heard", "missed"]);
    let late = rig.w.client(LAPTOP, &join_as("Alice"));
    assert_eq!(bodies(&late.to(LAPTOP)), ["heard", "missed"]);
}

#[test]
fn a_subject_change_before_the_rejoins_answer_does_not_end_it() {
    // As above, but the room (which still had the account) changes its subject live between
    // the restart's rejoin and the room's answer to it.
    let mut rig = Rig::new(Config::default(), SECOND + 50);
    rig.w.now = SECOND + 100;
    rig.w.join_local(PHONE, ROOM, "Alice", "Bob");
    rig.w.now = SECOND + 600;
    rig.room_says(&live("heard", Some("R2")));
    let (mut rig, _) = restarted(rig, SECOND + 4_000);
    rig.w.client(DESK, &join_as("Alice"));
    let change = format!(
        "<message xmlns='jabber:client' type='groupchat' from='{ROOM}/Bob' to='{ALICE}'><subject>New topic</subject></message>"
    );
    rig.room_says(&change);
    let at_desk = rig.answer_to(
        DESK,
        &[
            self_presence(ROOM, "Alice", &[110]),
            replay("just-before", Some("R1"), SECOND),
            replay("heard", Some("R2"), SECOND),
            subject(),
        ],
    );
    // The rejoin's answer still places "just-before": before "heard", so never missed.
    assert_eq!(bodies(&at_desk), ["heard"]);
    assert_eq!(rig.archived(), ["heard"]);
    assert_eq!(rig.cached(), ["heard"]);
}

#[test]
fn what_a_rejoin_cannot_place_yet_waits_for_the_end_of_the_history() {
    let mut rig = self_pinging(SECOND - 59_000);
    rig.w.join_local(PHONE, ROOM, "Alice", "Bob");
    for (at, text, sid) in [(200, "before-1", "R1"), (600, "before-2", "R2")] {
        rig.w.now = SECOND + at;
        rig.room_says(&live(text, Some(sid)));
    }
    quietly_rejoining(&mut rig);
    rig.room_says(&occupant_presence(ROOM, "Bob", None));
    rig.room_says(&self_presence(ROOM, "Alice", &[110]));
    // Unheard, and no heard message replayed yet: it may come before one, so it waits.
    let held = rig.room_says(&replay("missed-1", Some("R3"), SECOND));
    assert!(held.handled());
    assert_eq!(bodies(&held.to(PHONE)), Vec::<String>::new());
    // A room that sends live traffic before its subject: the history is over, so what waited
    // was missed, and goes first.
    let step = rig.room_says(&live("live", Some("R4")));
    assert_eq!(
        bodies_to(&step, &[PHONE]),
        [
            (PHONE.to_owned(), "missed-1".to_owned()),
            (PHONE.to_owned(), "live".to_owned())
        ]
    );
    assert_eq!(rig.archived(), ["before-1", "before-2", "missed-1", "live"]);
    assert_eq!(rig.cached(), ["before-1", "before-2", "missed-1", "live"]);
}

#[test]
fn a_quiet_rejoin_does_not_hand_a_session_again_what_it_got_from_the_archive() {
    let mut rig = self_pinging(SECOND + 100);
    // "old" was heard in an earlier membership: it is in the archive only.
    let old = |stamp: bool| {
        let mut m = el(&live("old", Some("R0")));
        super::xml::set_attr(&mut m, "to", ALICE);
        if stamp {
            m.append_child(super::xml::element(
                "stanza-id",
                NS_SID,
                &[("by", ALICE), ("id", "arch-0")],
            ));
        }
        m
    };
    rig.archive.push(("arch-0".into(), "old".into()));
    rig.w.now = SECOND + 200;
    rig.w.join_local(PHONE, ROOM, "Alice", "Bob");
    // laptop asks for history: the buffer has none, the archive has "old".
    let join = rig.w.client(LAPTOP, &join_as("Alice"));
    let fetch = join
        .outcome
        .actions
        .iter()
        .any(|a| matches!(a, Action::FetchHistory { .. }));
    assert!(fetch, "older history is fetched from the archive");
    let archived = vec![super::archive::ArchivedMessage {
        id: "arch-0".into(),
        stanza: old(true),
        when: SECOND + 100,
    }];
    let got = rig
        .w
        .mm
        .archived_history(&full(LAPTOP), &bare(ROOM), 20, archived);
    assert_eq!(got.actions.len(), 1);
    // The room forgets the account; the quiet rejoin asks from before "old" (the last thing
    // heard is the subject of the join, in the same second).
    let routed = quietly_rejoining(&mut rig);
    assert!(since_asked(&routed) <= SECOND);
    let mut at = Vec::new();
    let mut at_phone = Vec::new();
    for xml in [
        occupant_presence(ROOM, "Bob", None),
        self_presence(ROOM, "Alice", &[110]),
        replay("old", Some("R0"), SECOND),
        subject(),
    ] {
        let step = rig.room_says(&xml);
        at.extend(bodies_to(&step, &[PHONE, LAPTOP]));
        at_phone.extend(step.to(PHONE).into_iter().filter(|s| body_of(s) == "old"));
    }
    // The archive's new copy went back out: phone's copy does not name it.
    assert_eq!(at_phone.len(), 1);
    assert_eq!(super::archive::archive_id(&at_phone[0], &bare(ALICE)), None);
    // Nothing heard in this membership tells where it stands: phone, which never had it,
    // gets it as history; laptop had it from the archive and does not get it twice; the
    // archive keeps one copy.
    assert_eq!(at, [(PHONE.to_owned(), "old".to_owned())]);
    assert_eq!(rig.archived(), ["old"]);
}
