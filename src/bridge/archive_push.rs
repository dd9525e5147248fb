//! Handle methods for XEP-0313 queries of the account's archive and for XEP-0357 pushes of
//! groupchat (the decisions are the core's, in `core::mam` and `core::push`):
//! - `h:mam_includes_groupchat(iq) -> true | false | nil, "reason"`: whether a query asks
//!   for groupchat (`nil, reason` for a bad `include-groupchat` value);
//! - `h:mam_groupchat_filter() -> filter`: a fresh filter for one page of a query that leaves
//!   groupchat out, with `filter:keep(item)` (item: a stored stanza or its serialized table),
//!   `filter:scan_limit(limit)` and `filter:skipped()`;
//! - `h:mam_form_with_groupchat(reply) -> stanza | nil`: the form reply with the
//!   `include-groupchat` field added (nil: not a form reply);
//! - `h:push_without_sessions(account, stanza) -> boolean`: hand this room message to the
//!   push path (no session joined to the room, and it concerns the account);
//! - `h:push_verdict(account, stanza, path, service_live) -> nil | true | false, reason`:
//!   whether mod_cloud_notify may push it (`nil`: not a groupchat from the account's rooms).
//!
//! Nothing here raises for bad input: it logs and answers as if the stanza were not ours.

use std::panic::{catch_unwind, AssertUnwindSafe};

use jid::{BareJid, Jid};
use mlua::{Lua, MultiValue, Table, UserData, UserDataMethods, Value};

use super::handle::MinimixHandle;
use super::log_sink as bridge_log;
use super::stanza::{attr_of, element_from_lua, element_to_lua};
use crate::core::mam::{self, GroupchatFilter};
use crate::core::push::{PushPath, PushVerdict};

/// One page's [`GroupchatFilter`], as Lua userdata.
pub struct GroupchatFilterHandle(GroupchatFilter);

impl UserData for GroupchatFilterHandle {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("keep", |_, this, item: Value| {
            // Only `attr.type` is read; an item without attributes is kept (not groupchat).
            let kind = match &item {
                Value::Table(t) => attr_of(t, "type").ok().flatten(),
                _ => None,
            };
            Ok(this.0.keep(kind.as_deref()))
        });
        methods.add_method("scan_limit", |_, this, limit: f64| {
            let limit = if limit.is_finite() && limit > 0.0 {
                limit as usize
            } else {
                0
            };
            Ok(this.0.scan_limit(limit) as f64)
        });
        methods.add_method("skipped", |_, this, ()| Ok(this.0.skipped()));
    }
}

fn guarded<T>(lua: &Lua, fallback: T, f: impl FnOnce() -> Result<T, String>) -> T {
    let result = catch_unwind(AssertUnwindSafe(f));
    let value = match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            log::warn!("minimix: {e}");
            fallback
        }
        Err(_) => fallback,
    };
    bridge_log::flush(lua);
    value
}

/// A groupchat message from a room the account tracks, judged on attributes alone (the hot
/// path: nothing is converted for other traffic).
fn tracked_groupchat(handle: &MinimixHandle, account: &BareJid, stanza: &Table) -> Option<BareJid> {
    if attr_of(stanza, "type").ok().flatten().as_deref() != Some("groupchat") {
        return None;
    }
    let room = attr_of(stanza, "from")
        .ok()
        .flatten()
        .and_then(|f| f.parse::<Jid>().ok())?
        .to_bare();
    handle.core.tracks(account, &room).then_some(room)
}

pub fn add_methods<M: UserDataMethods<MinimixHandle>>(methods: &mut M) {
    methods.add_method("mam_includes_groupchat", |lua, _, iq: Value| {
        let Value::Table(iq) = iq else {
            return Ok(MultiValue::from_iter([Value::Boolean(false)]));
        };
        let answer = guarded(lua, Ok(false), || {
            let el = element_from_lua(&iq).map_err(|e| format!("archive query: {e}"))?;
            Ok(mam::query_includes_groupchat(&el).map_err(|e| e.to_string()))
        });
        Ok(match answer {
            Ok(include) => MultiValue::from_iter([Value::Boolean(include)]),
            Err(reason) => {
                MultiValue::from_iter([Value::Nil, Value::String(lua.create_string(reason)?)])
            }
        })
    });
    methods.add_method("mam_groupchat_filter", |_, this, ()| {
        Ok(GroupchatFilterHandle(GroupchatFilter::new(
            this.core.config().mam_max_skipped,
        )))
    });
    methods.add_method("mam_form_with_groupchat", |lua, _, reply: Value| {
        let Value::Table(reply) = reply else {
            return Ok(Value::Nil);
        };
        let el = guarded(lua, None, || {
            let mut el = element_from_lua(&reply).map_err(|e| format!("archive form: {e}"))?;
            Ok(mam::advertise_groupchat_field(&mut el).then_some(el))
        });
        match el {
            Some(el) => match element_to_lua(lua, &el) {
                Ok(t) => Ok(Value::Table(t)),
                Err(e) => {
                    log::warn!("minimix: cannot build the archive form: {e}");
                    bridge_log::flush(lua);
                    Ok(Value::Nil)
                }
            },
            None => Ok(Value::Nil),
        }
    });
    methods.add_method(
        "push_without_sessions",
        |lua, this, (account, stanza): (String, Value)| {
            let Value::Table(stanza) = stanza else {
                return Ok(false);
            };
            Ok(guarded(lua, false, || {
                let Ok(account) = account.parse::<BareJid>() else {
                    return Ok(false);
                };
                let Some(room) = tracked_groupchat(this, &account, &stanza) else {
                    return Ok(false);
                };
                if !this.core.push_candidate(&account, &room) {
                    return Ok(false);
                }
                let el = element_from_lua(&stanza).map_err(|e| format!("room message: {e}"))?;
                Ok(this.core.push_without_sessions(&account, &el))
            }))
        },
    );
    methods.add_method(
        "push_verdict",
        |lua, this, (account, stanza, path, live): (String, Value, String, bool)| {
            let Value::Table(stanza) = stanza else {
                return Ok(MultiValue::new());
            };
            let verdict = guarded(lua, PushVerdict::NotOurs, || {
                let Ok(account) = account.parse::<BareJid>() else {
                    return Ok(PushVerdict::NotOurs);
                };
                let Some(path) = PushPath::parse(&path) else {
                    return Err(format!("unknown push path '{path}'"));
                };
                if tracked_groupchat(this, &account, &stanza).is_none() {
                    return Ok(PushVerdict::NotOurs);
                }
                let el = element_from_lua(&stanza).map_err(|e| format!("pushed message: {e}"))?;
                Ok(this.core.push_verdict(&account, &el, path, live))
            });
            Ok(match verdict {
                PushVerdict::NotOurs => MultiValue::new(),
                PushVerdict::Allow => MultiValue::from_iter([Value::Boolean(true)]),
                PushVerdict::Block(reason) => MultiValue::from_iter([
                    Value::Boolean(false),
                    Value::String(lua.create_string(reason)?),
                ]),
            })
        },
    );
}
