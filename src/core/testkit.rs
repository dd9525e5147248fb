//! Test harness for the core: one host, sessions and rooms driven with XML literals,
//! like quinn's `Pair` — feed inputs, read back exactly what each session would receive.

use jid::{BareJid, FullJid};
use minidom::Element;

use super::{Action, Config, Input, Millis, Minimix, Outcome, Verdict};

/// Parses an XML literal; a root without `xmlns` is a jabber:client stanza.
pub fn el(xml: &str) -> Element {
    let xml = xml.trim();
    let with_ns = if xml.contains("xmlns=") && xml.find("xmlns=") < xml.find('>') {
        xml.to_owned()
    } else {
        let name_end = xml.find([' ', '/', '>']).expect("an element");
        format!(
            "{} xmlns='jabber:client'{}",
            &xml[..name_end],
            &xml[name_end..]
        )
    };
    with_ns
        .parse()
        .unwrap_or_else(|e| panic!("bad test XML {xml}: {e}"))
}

pub fn full(s: &str) -> FullJid {
    s.parse().expect("a full JID")
}

pub fn bare(s: &str) -> BareJid {
    s.parse().expect("a bare JID")
}

/// The outcome with every `DeliverShared` turned into the `Deliver` it stands for (the cached
/// stanza addressed, extras appended), for checks that read delivered stanzas.
pub fn materialized(outcome: &Outcome) -> Outcome {
    let actions = outcome
        .actions
        .iter()
        .map(|a| match a {
            Action::DeliverShared { to, stanza, extra } => Action::Deliver {
                to: to.clone(),
                stanza: stanza.materialize(to, extra).expect("cached stanza parses"),
            },
            other => other.clone(),
        })
        .collect();
    Outcome {
        verdict: outcome.verdict,
        actions,
    }
}

/// One host's core plus a clock the test moves by hand.
pub struct World {
    pub mm: Minimix,
    pub now: Millis,
}

/// The outcome of one input together with the stanza it carried, so `Forward` can be resolved.
pub struct Step {
    pub outcome: Outcome,
    pub input: Option<Element>,
}

impl Step {
    pub fn handled(&self) -> bool {
        self.outcome.verdict == Verdict::Handled
    }

    /// Everything the session `to` receives from this step, in order.
    pub fn to(&self, to: &str) -> Vec<Element> {
        let to = full(to);
        self.outcome
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Deliver { to: t, stanza } | Action::Carbon { to: t, stanza }
                    if *t == to =>
                {
                    Some(stanza.clone())
                }
                Action::DeliverShared {
                    to: t,
                    stanza,
                    extra,
                } if *t == to => Some(stanza.materialize(t, extra).expect("cached stanza parses")),
                Action::Forward { to: t } if *t == to => {
                    let mut s = self.input.clone().expect("Forward needs an input stanza");
                    super::xml::set_attr(&mut s, "to", t.as_str());
                    Some(s)
                }
                _ => None,
            })
            .collect()
    }

    /// Every session that receives anything from this step.
    pub fn recipients(&self) -> Vec<String> {
        let mut r: Vec<String> = self
            .outcome
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Deliver { to, .. }
                | Action::DeliverShared { to, .. }
                | Action::Carbon { to, .. }
                | Action::Forward { to } => Some(to.to_string()),
                _ => None,
            })
            .collect();
        r.dedup();
        r
    }

    /// What the account routes (sends) from this step.
    pub fn routed(&self) -> Vec<Element> {
        self.outcome
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Route { stanza } => Some(stanza.clone()),
                Action::RouteInput { from, id } => {
                    let mut s = self
                        .input
                        .clone()
                        .expect("RouteInput needs an input stanza");
                    super::xml::set_attr(&mut s, "from", from.as_str());
                    if let Some(id) = id {
                        super::xml::set_attr(&mut s, "id", id.as_str());
                    }
                    Some(s)
                }
                _ => None,
            })
            .collect()
    }
}

impl World {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        Self {
            mm: Minimix::new(config).expect("valid config"),
            now: 1_000_000,
        }
    }

    fn step(&mut self, input: Input, stanza: Option<Element>) -> Step {
        Step {
            outcome: self.mm.handle(self.now, input),
            input: stanza,
        }
    }

    /// A session sends a stanza (presence, message or iq by its name); `from` is set as Prosody does.
    pub fn client(&mut self, session: &str, xml: &str) -> Step {
        let mut stanza = el(xml);
        super::xml::set_attr(&mut stanza, "from", session);
        let session = full(session);
        let input = match stanza.name() {
            "presence" => Input::ClientPresence {
                session,
                stanza: stanza.clone(),
            },
            "message" => Input::ClientMessage {
                session,
                stanza: stanza.clone(),
            },
            "iq" => Input::ClientIq {
                session,
                stanza: stanza.clone(),
            },
            other => panic!("not a stanza: {other}"),
        };
        self.step(input, Some(stanza))
    }

    /// A room (or anyone) sends a stanza to the account's bare JID.
    pub fn room(&mut self, account: &str, xml: &str) -> Step {
        let mut stanza = el(xml);
        super::xml::set_attr(&mut stanza, "to", account);
        let account = bare(account);
        let input = match stanza.name() {
            "presence" => Input::RoomPresence {
                account,
                stanza: stanza.clone(),
            },
            "message" => Input::RoomMessage {
                account,
                stanza: stanza.clone(),
            },
            "iq" => Input::RoomIq {
                account,
                stanza: stanza.clone(),
            },
            other => panic!("not a stanza: {other}"),
        };
        self.step(input, Some(stanza))
    }

    pub fn closed(&mut self, session: &str) -> Step {
        self.step(
            Input::SessionClosed {
                session: full(session),
            },
            None,
        )
    }

    pub fn tick(&mut self, ms: Millis) -> Step {
        self.now += ms;
        Step {
            outcome: self.mm.handle_timeout(self.now),
            input: None,
        }
    }

    /// Drives a complete local join of `session` as `nick`, the room answering with one other
    /// occupant (`other`), the self-presence and a subject, as Prosody's MUC does.
    pub fn join_local(&mut self, session: &str, room: &str, nick: &str, other: &str) -> Vec<Step> {
        let account = full(session).to_bare().to_string();
        let join = self.client(
            session,
            &format!(
                "<presence to='{room}/{nick}'><x xmlns='{}'/></presence>",
                super::muc::NS_MUC
            ),
        );
        let occupant = self.room(&account, &occupant_presence(room, other, None));
        let own = self.room(&account, &self_presence(room, nick, &[110]));
        let subject = self.room(
            &account,
            &format!("<message type='groupchat' from='{room}/{other}'><subject>Welcome</subject></message>"),
        );
        vec![join, occupant, own, subject]
    }
}

/// A room presence for another occupant (type None or "unavailable").
pub fn occupant_presence(room: &str, nick: &str, ty: Option<&str>) -> String {
    let ty = ty.map(|t| format!(" type='{t}'")).unwrap_or_default();
    format!(
        "<presence from='{room}/{nick}'{ty}><x xmlns='{}'><item affiliation='none' role='participant'/></x></presence>",
        super::muc::NS_MUC_USER
    )
}

/// The room's presence about the account itself, with these status codes.
pub fn self_presence(room: &str, nick: &str, codes: &[u16]) -> String {
    let statuses: String = codes
        .iter()
        .map(|c| format!("<status code='{c}'/>"))
        .collect();
    format!(
        "<presence from='{room}/{nick}'><x xmlns='{}'><item affiliation='owner' role='moderator'/>{statuses}</x></presence>",
        super::muc::NS_MUC_USER
    )
}

pub fn codes(stanza: &Element) -> Vec<u16> {
    super::muc::status_codes(stanza)
        .into_iter()
        .map(|c| c.code())
        .collect()
}

/// The room's unavailable about the account itself (a leave's answer with just 110; a kick
/// with 110 and 307, …).
pub fn self_unavailable(room: &str, nick: &str, codes: &[u16]) -> String {
    let statuses: String = codes
        .iter()
        .map(|c| format!("<status code='{c}'/>"))
        .collect();
    format!(
        "<presence type='unavailable' from='{room}/{nick}'><x xmlns='{}'><item affiliation='owner' role='none'/>{statuses}</x></presence>",
        super::muc::NS_MUC_USER
    )
}
