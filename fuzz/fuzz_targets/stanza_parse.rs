//! Arbitrary text → minidom parse → the core's pure stanza helpers. None may panic, and what
//! they build from a parsed stanza must serialize again.
//!
//! The element is rebuilt the way the bridge builds one from a util.stanza table
//! (`Element::bare` + attributes + children, no prefix declarations) before the helpers see
//! it: minidom 0.19's writer *panics* on a parsed element that rebinds a prefix
//! (`<a xmlns:u='b'><a xmlns:u='t'/></a>`: "prefix declaration conflicts with global prefix"),
//! which the bridge can never produce. Parsed text reaches `xml::serialized_len` only through
//! that rebuild.
//!
//! The bridge's Lua-facing conversion (`src/bridge/stanza.rs`) needs a Lua state, which a
//! module-mode mlua build cannot create under cargo: it is not fuzzed here (its pure helpers
//! are private to the `module` feature; the busted specs cover it against real util.stanza).
#![no_main]

use jid::{BareJid, FullJid};
use libfuzzer_sys::fuzz_target;
use minidom::Element;
use minimix::core::muc::{self, HistoryRequest, StatusCode};
use minimix::core::presence::{self, Availability};
use minimix::core::{archive, replay, time, xml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    datetime(text);
    // A root without a namespace is a c2s stanza, as Prosody's parser would have it.
    let parsed = text.parse::<Element>().or_else(|_| {
        let with_ns = match text.find(['>', '/', ' ']) {
            Some(i) if text.starts_with('<') => {
                format!("{} xmlns='jabber:client'{}", &text[..i], &text[i..])
            }
            _ => return Err(()),
        };
        with_ns.parse::<Element>().map_err(|_| ())
    });
    if let Ok(el) = parsed {
        stanza(&as_bridge_builds_it(&el, 0));
    }
});

/// A copy without prefix declarations, as `element_from_lua` would build it.
fn as_bridge_builds_it(el: &Element, depth: usize) -> Element {
    let mut out = Element::bare(el.name(), el.ns());
    *out.attrs_mut() = el.attrs().clone();
    if depth < 64 {
        for node in el.nodes() {
            match node {
                minidom::Node::Element(c) => {
                    out.append_child(as_bridge_builds_it(c, depth + 1));
                }
                minidom::Node::Text(t) => out.append_text(t.as_str()),
            }
        }
    }
    out
}

/// XEP-0082 parsing of arbitrary text; what parses formats and parses back to the same second.
fn datetime(text: &str) {
    if let Some(t) = time::parse_datetime(text) {
        let formatted = time::format_datetime(t);
        if let Some(back) = time::parse_datetime(&formatted) {
            assert_eq!(back, t - t % 1000, "{text:?} -> {formatted}");
        }
    }
}

fn serializes(el: &Element, what: &str) {
    let mut out = Vec::new();
    assert!(el.write_to(&mut out).is_ok(), "{what} does not serialize");
}

fn stanza(el: &Element) {
    assert!(xml::serialized_len(el) > 0, "a parsed element serializes");
    let session: FullJid = "alice@example.org/phone".parse().unwrap();
    let account: BareJid = session.to_bare();

    let _ = muc::status_codes(el);
    let _ = muc::has_status(el, StatusCode::SelfPresence);
    let _ = muc::is_join_request(el);
    let _ = muc::is_subject_message(el);
    let _ = muc::is_history_worthy(el);
    let _ = muc::item_nick(el);
    let _ = muc::is_destroy(el);
    let _ = muc::stanza_type(el);
    let _ = archive::archive_id(el, &account);
    let _ = HistoryRequest::from_join(el);
    let _ = Availability::of(el);

    let payload = presence::payload_of(el);
    serializes(&payload, "payload_of");
    let _ = xml::serialized_len(&payload);
    let _ = presence::aggregate([(el, 1u64), (&payload, 2u64)].into_iter());

    let mut c = el.clone();
    muc::add_status(&mut c, StatusCode::NickAssigned);
    muc::add_status(&mut c, StatusCode::SelfPresence);
    assert!(
        muc::has_status(&c, StatusCode::NickAssigned),
        "add_status adds"
    );
    muc::remove_status(&mut c, StatusCode::NickAssigned);
    assert!(
        !muc::has_status(&c, StatusCode::NickAssigned),
        "remove_status removes"
    );
    muc::show_session_as_real_jid(&mut c, &session);
    serializes(&c, "status edits");

    let own = replay::self_presence_for(el, &session, true);
    serializes(&own, "self_presence_for");
    serializes(&replay::addressed(el, &session), "addressed");
    serializes(&muc::sent_carbon(el, &account, &session), "sent_carbon");

    // Every attribute value and text in the tree through the date parser.
    walk(el, 0);
}

fn walk(el: &Element, depth: usize) {
    if depth > 64 {
        return;
    }
    for (_, v) in el.attrs().iter() {
        datetime(v);
    }
    datetime(&el.text());
    for child in el.children() {
        walk(child, depth + 1);
    }
}
