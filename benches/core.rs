//! Micro benchmarks of the sans-IO core (issue 7). Run with
//!
//! ```sh
//! cargo bench --no-default-features --bench core            # full run (~1 min)
//! cargo bench --no-default-features --bench core -- --quick # what `make bench` runs
//! ```
//!
//! `--no-default-features`: the default features build the mlua bridge in module mode, whose
//! Lua symbols only exist inside a Lua interpreter; the bridge is measured from Lua instead
//! (`bench/lua/bridge_bench.lua`).
//!
//! Groups (criterion ids, also read by `bench/report.py`):
//! - `fork/groupchat/S`: the decision for one groupchat from a tracked room whose account has S
//!   joined sessions (history push with `<delay/>` + S `Forward`s);
//! - `fork/occupant_presence`: an occupant's presence update in a room of 100 (cache + fork);
//! - `fork/untracked`: a groupchat from a room the account is not in (the core's pass);
//! - `tracks/accounts_N`: the bridge's hot-path question (`Minimix::tracks`) with N accounts;
//! - `replay/late_join/N`: a second session joining a room of N occupants with 20 messages of
//!   history (N presences + self-presence + 20 history + subject, each for it: the cached ones
//!   as shared references, with the history's archive id and `<delay/>` as extras);
//! - `xml/*`: minidom parse / serialize / clone of a typical groupchat, for scale.
//!
//! Before the timed groups, a counting global allocator reports the bytes the core keeps for
//! one (account, room) with 100 (and 1000) occupants, with an empty and with a full history
//! buffer, alone and with 100 accounts of the host in the same room (the room's stanzas
//! shared), as `MEMORY key=value` lines (`bench/report.py` picks them up from stdout).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion};
use jid::{BareJid, FullJid};
use minidom::Element;
use minimix::core::{Action, Config, Input, Minimix, Verdict};

// ---------------------------------------------------------------------------------------------
// Counting allocator (only counts while COUNTING is set; otherwise one relaxed load).

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Relaxed);
        }
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live heap bytes and allocation calls made while building `f`'s result (kept alive).
fn measure<T>(f: impl FnOnce() -> T) -> (T, isize, usize) {
    let (live0, n0) = (LIVE.load(Relaxed), ALLOCS.load(Relaxed));
    COUNTING.store(true, Relaxed);
    let value = f();
    COUNTING.store(false, Relaxed);
    (value, LIVE.load(Relaxed) - live0, ALLOCS.load(Relaxed) - n0)
}

// ---------------------------------------------------------------------------------------------
// Fixtures: the stanzas Prosody's MUC sends, as the bridge hands them to the core.

const MUC: &str = "muc.localhost";
const ROOM: &str = "bench@muc.localhost";
const ACCOUNT: &str = "u1@a.localhost";
const NICK: &str = "u1";
const BODY: &str =
    "The quick brown fox jumps over the lazy dog; a typical chat line of 60-ish chars.";

fn el(xml: &str) -> Element {
    xml.parse()
        .unwrap_or_else(|e| panic!("bad fixture {xml}: {e}"))
}

fn session(account: &str, i: usize) -> FullJid {
    format!("{account}/s{i}").parse().unwrap()
}

fn join_presence(room: &str, nick: &str) -> Element {
    el(&format!(
        "<presence xmlns='jabber:client' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/>\
         <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org/client' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>"
    ))
}

fn occupant_presence(room: &str, nick: &str, to: &str, show: Option<&str>) -> Element {
    let show = show
        .map(|s| format!("<show>{s}</show>"))
        .unwrap_or_default();
    el(&format!(
        "<presence xmlns='jabber:client' from='{room}/{nick}' to='{to}'>{show}\
         <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org/client' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/>\
         <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>"
    ))
}

fn self_presence(room: &str, nick: &str, to: &str) -> Element {
    el(&format!(
        "<presence xmlns='jabber:client' from='{room}/{nick}' to='{to}'>\
         <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>\
         <status code='110'/></x></presence>"
    ))
}

fn subject(room: &str, to: &str) -> Element {
    el(&format!(
        "<message xmlns='jabber:client' type='groupchat' from='{room}' to='{to}'><subject>Benchmarks</subject></message>"
    ))
}

fn groupchat(room: &str, nick: &str, to: &str, i: usize) -> Element {
    el(&format!(
        "<message xmlns='jabber:client' type='groupchat' id='6f1c2a9e-{i:08}' from='{room}/{nick}' to='{to}'>\
         <body>{BODY} #{i}</body><origin-id xmlns='urn:xmpp:sid:0' id='6f1c2a9e-{i:08}'/>\
         <active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    ))
}

fn config() -> Config {
    Config {
        // No self-pings and no join rate limit in the way of repeated joins.
        ping_interval_ms: None,
        max_joins_per_minute: 1_000_000,
        ..Config::default()
    }
}

/// A core where `account` is joined to `room` with `sessions` sessions, the room has
/// `occupants` other occupants, a subject, and `history` messages of history.
fn joined(
    mm: &mut Minimix,
    now: &mut u64,
    account: &str,
    room: &str,
    sessions: usize,
    occupants: usize,
    history: usize,
) {
    let account_jid: BareJid = account.parse().unwrap();
    let nick = account.split('@').next().unwrap();
    let mut step = |mm: &mut Minimix, input: Input| {
        *now += 1;
        mm.handle(*now, input)
    };
    let out = step(
        mm,
        Input::ClientPresence {
            session: session(account, 1),
            stanza: join_presence(room, nick),
        },
    );
    assert!(
        out.actions
            .iter()
            .any(|a| matches!(a, Action::Route { .. })),
        "the first join is routed from the account: {out:?}"
    );
    for o in 0..occupants {
        step(
            mm,
            Input::RoomPresence {
                account: account_jid.clone(),
                stanza: occupant_presence(room, &format!("occupant{o:04}"), account, None),
            },
        );
    }
    step(
        mm,
        Input::RoomPresence {
            account: account_jid.clone(),
            stanza: self_presence(room, nick, account),
        },
    );
    step(
        mm,
        Input::RoomMessage {
            account: account_jid.clone(),
            stanza: subject(room, account),
        },
    );
    for i in 0..history {
        // As mod_mam hands it on: with the account archive's id appended.
        let mut stanza = groupchat(room, "occupant0000", account, i);
        stanza.append_child(el(&format!(
            "<stanza-id xmlns='urn:xmpp:sid:0' by='{account}' id='{account}-{i:08}'/>"
        )));
        step(
            mm,
            Input::RoomMessage {
                account: account_jid.clone(),
                stanza,
            },
        );
    }
    for s in 2..=sessions {
        let out = step(
            mm,
            Input::ClientPresence {
                session: session(account, s),
                stanza: join_presence(room, nick),
            },
        );
        assert_eq!(out.verdict, Verdict::Handled);
    }
    assert_eq!(
        mm.sessions_in(&account_jid, &room.parse().unwrap()).len(),
        sessions
    );
}

fn world(sessions: usize, occupants: usize, history: usize) -> (Minimix, u64) {
    let mut mm = Minimix::new(config()).unwrap();
    let mut now = 1_800_000_000_000;
    joined(
        &mut mm, &mut now, ACCOUNT, ROOM, sessions, occupants, history,
    );
    (mm, now)
}

// ---------------------------------------------------------------------------------------------
// Memory

fn memory_report() {
    let mut lines = Vec::new();
    for &(occupants, history) in &[(100usize, 0usize), (100, 20), (100, 100), (1000, 100)] {
        // Three joined sessions, as in the e2e benchmark.
        let ((mm, _), bytes, allocs) = measure(|| world(3, occupants, history));
        let account: BareJid = ACCOUNT.parse().unwrap();
        let join = mm.join(&account, &ROOM.parse().unwrap()).unwrap();
        let hist_bytes = join.cache.history_bytes();
        lines.push(format!(
            "MEMORY account_room_occupants_{occupants}_history_{history}_bytes={bytes} allocs={allocs} \
             cached_occupants={} history={} history_serialized_bytes={hist_bytes}",
            join.cache.occupants.len(),
            join.cache.history.len(),
        ));
        black_box(mm);
    }
    // Many accounts of one host in the same room: what one (account, room) costs when the
    // room's stanzas are shared. `mean` divides the whole host's heap by the accounts;
    // `marginal` is what one more account adds to a host that already has the others.
    for &(accounts, occupants, history) in &[(100usize, 100usize, 0usize), (100, 100, 100)] {
        let account = |a: usize| format!("u{a}@a.localhost");
        let ((mm, _), total, allocs) = measure(|| {
            let mut mm = Minimix::new(config()).unwrap();
            let mut now = 1_800_000_000_000u64;
            for a in 1..=accounts {
                joined(&mut mm, &mut now, &account(a), ROOM, 3, occupants, history);
            }
            (mm, now)
        });
        let shared = mm.shared_stanzas();
        lines.push(format!(
            "MEMORY account_room_shared_{accounts}_accounts_occupants_{occupants}_history_{history}_mean_bytes={} allocs={} \
             host_bytes={total} shared_stanzas={} shared_xml_bytes={}",
            total / accounts as isize,
            allocs / accounts,
            shared.len(),
            shared.bytes(),
        ));
        black_box(mm);
        let mut mm = Minimix::new(config()).unwrap();
        let mut now = 1_800_000_000_000u64;
        for a in 1..accounts {
            joined(&mut mm, &mut now, &account(a), ROOM, 3, occupants, history);
        }
        let ((), bytes, allocs) = measure(|| {
            joined(
                &mut mm,
                &mut now,
                &account(accounts),
                ROOM,
                3,
                occupants,
                history,
            )
        });
        lines.push(format!(
            "MEMORY account_room_shared_{accounts}_accounts_occupants_{occupants}_history_{history}_marginal_bytes={bytes} allocs={allocs}"
        ));
        black_box(mm);
    }
    // One cached occupant presence and one history entry, on their own.
    let (p, bytes, allocs) = measure(|| occupant_presence(ROOM, "occupant0001", ACCOUNT, None));
    lines.push(format!(
        "MEMORY one_occupant_presence_element_bytes={bytes} allocs={allocs} serialized_bytes={}",
        String::from(&p).len()
    ));
    let (m, bytes, allocs) = measure(|| groupchat(ROOM, "occupant0000", ACCOUNT, 1));
    lines.push(format!(
        "MEMORY one_groupchat_element_bytes={bytes} allocs={allocs} serialized_bytes={}",
        String::from(&m).len()
    ));
    // The fixed part: an empty core and one account joined with no occupants and no history.
    let ((mm, _), bytes, allocs) = measure(|| world(3, 0, 0));
    lines.push(format!(
        "MEMORY account_room_empty_bytes={bytes} allocs={allocs}"
    ));
    let (core, bytes, allocs) = measure(|| Minimix::new(config()).unwrap());
    lines.push(format!("MEMORY core_empty_bytes={bytes} allocs={allocs}"));
    black_box((p, m, mm, core));
    for l in lines {
        println!("{l}");
    }
}

// ---------------------------------------------------------------------------------------------
// Timed groups

fn bench_fork(c: &mut Criterion) {
    let mut g = c.benchmark_group("fork");
    let account: BareJid = ACCOUNT.parse().unwrap();
    for sessions in [1usize, 3, 10] {
        let (mut mm, now) = world(sessions, 100, 100);
        let msg = groupchat(ROOM, "occupant0001", ACCOUNT, 42);
        // Sanity: one Forward per joined session.
        let out = mm.clone().handle(
            now,
            Input::RoomMessage {
                account: account.clone(),
                stanza: msg.clone(),
            },
        );
        assert_eq!(out.verdict, Verdict::Handled);
        assert_eq!(
            out.actions
                .iter()
                .filter(|a| matches!(a, Action::Forward { .. }))
                .count(),
            sessions
        );
        g.bench_with_input(
            BenchmarkId::new("groupchat", sessions),
            &sessions,
            |b, _| {
                // The stanza is moved into the core, as the bridge does: clone it outside the timing.
                b.iter_batched(
                    || msg.clone(),
                    |stanza| {
                        mm.handle(
                            now,
                            Input::RoomMessage {
                                account: account.clone(),
                                stanza,
                            },
                        )
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    {
        let (mut mm, now) = world(3, 100, 100);
        let shows = [
            occupant_presence(ROOM, "occupant0050", ACCOUNT, Some("away")),
            occupant_presence(ROOM, "occupant0050", ACCOUNT, None),
        ];
        let mut i = 0usize;
        g.bench_function("occupant_presence", |b| {
            b.iter_batched(
                || {
                    i += 1;
                    shows[i % 2].clone()
                },
                |stanza| {
                    mm.handle(
                        now,
                        Input::RoomPresence {
                            account: account.clone(),
                            stanza,
                        },
                    )
                },
                BatchSize::SmallInput,
            )
        });
    }
    {
        let (mut mm, now) = world(3, 100, 20);
        let other = groupchat("elsewhere@muc.localhost", "x", ACCOUNT, 1);
        g.bench_function("untracked", |b| {
            b.iter_batched(
                || other.clone(),
                |stanza| {
                    let out = mm.handle(
                        now,
                        Input::RoomMessage {
                            account: account.clone(),
                            stanza,
                        },
                    );
                    debug_assert_eq!(out.verdict, Verdict::Pass);
                    out
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("tracks");
    for accounts in [1usize, 1000] {
        let mut mm = Minimix::new(config()).unwrap();
        let mut now = 1_800_000_000_000;
        for a in 0..accounts {
            joined(
                &mut mm,
                &mut now,
                &format!("u{}@a.localhost", a + 1),
                ROOM,
                1,
                0,
                0,
            );
        }
        let room: BareJid = ROOM.parse().unwrap();
        let elsewhere: BareJid = "elsewhere@muc.localhost".parse().unwrap();
        g.bench_function(
            BenchmarkId::new("hit", format!("accounts_{accounts}")),
            |b| b.iter(|| mm.tracks(black_box(&account), black_box(&room))),
        );
        g.bench_function(
            BenchmarkId::new("miss", format!("accounts_{accounts}")),
            |b| b.iter(|| mm.tracks(black_box(&account), black_box(&elsewhere))),
        );
        // What the bridge really does per stanza: parse both JIDs, then look up.
        g.bench_function(
            BenchmarkId::new("parse_and_miss", format!("accounts_{accounts}")),
            |b| {
                b.iter(|| {
                    let a: BareJid = black_box(ACCOUNT).parse().unwrap();
                    let r: jid::Jid = black_box("elsewhere@muc.localhost/nick").parse().unwrap();
                    mm.tracks(&a, &r.to_bare())
                })
            },
        );
    }
    g.finish();
}

fn bench_replay(c: &mut Criterion) {
    let mut g = c.benchmark_group("replay");
    for occupants in [100usize, 1000] {
        let (mm, now) = world(1, occupants, 100);
        let late = session(ACCOUNT, 2);
        let stanza = join_presence(ROOM, NICK);
        let out = mm.clone().handle(
            now + 1,
            Input::ClientPresence {
                session: late.clone(),
                stanza: stanza.clone(),
            },
        );
        let delivered = out
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Deliver { .. } | Action::DeliverShared { .. }))
            .count();
        // occupants + self-presence + 20 history + subject (all but the self-presence shared)
        assert_eq!(
            delivered,
            occupants + 1 + 20 + 1,
            "{:?}",
            out.actions.first()
        );
        if occupants >= 1000 {
            g.sample_size(20);
        }
        g.bench_with_input(
            BenchmarkId::new("late_join", occupants),
            &occupants,
            |b, _| {
                b.iter_batched(
                    || (mm.clone(), stanza.clone()),
                    |(mut mm, stanza)| {
                        let out = mm.handle(
                            now + 1,
                            Input::ClientPresence {
                                session: late.clone(),
                                stanza,
                            },
                        );
                        // Drop the core outside the measured part as far as criterion lets us:
                        // return both, criterion drops them after timing.
                        (mm, out)
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
    g.finish();
}

fn bench_xml(c: &mut Criterion) {
    let mut g = c.benchmark_group("xml");
    let msg = groupchat(ROOM, "occupant0001", ACCOUNT, 7);
    let text = String::from(&msg);
    g.bench_function("parse_groupchat", |b| {
        b.iter(|| black_box(&text).parse::<Element>().unwrap())
    });
    g.bench_function("serialize_groupchat", |b| {
        b.iter(|| String::from(black_box(&msg)))
    });
    g.bench_function("clone_groupchat", |b| b.iter(|| black_box(&msg).clone()));
    let pres = occupant_presence(ROOM, "occupant0001", ACCOUNT, None);
    g.bench_function("clone_presence", |b| b.iter(|| black_box(&pres).clone()));
    g.finish();
}

fn main() {
    memory_report();
    let _ = MUC;
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_fork(&mut c);
    bench_replay(&mut c);
    bench_xml(&mut c);
    c.final_summary();
}
