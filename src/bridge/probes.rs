//! Conversion probes for the busted specs: they expose exactly the stanza bridge the module
//! uses, and never raise (each returns its result, or `nil, "message"`).
//! - `_roundtrip(stanza) -> stanza`: table → Element → table;
//! - `_to_xml(stanza) -> string`: table → Element → XML text;
//! - `_from_xml(string) -> stanza`: XML text → Element → table;
//! - `_attr(stanza, name) -> string|nil`: the hot-path attribute read.

use mlua::{Lua, Result as LuaResult, Table, Value};

use super::stanza::{attr_of, element_from_lua, element_to_lua, StanzaError};

type Probe<T> = (Option<T>, Option<String>);

fn probe<T, E: std::fmt::Display>(r: Result<T, E>) -> Probe<T> {
    match r {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

fn as_stanza(v: Value) -> Result<Table, StanzaError> {
    match v {
        Value::Table(t) => Ok(t),
        _ => Err(StanzaError::NotAStanza("expected a table")),
    }
}

fn to_xml(stanza: Value) -> Result<String, String> {
    let el = as_stanza(stanza)
        .and_then(|t| element_from_lua(&t))
        .map_err(|e| e.to_string())?;
    // `String::from(&Element)` panics on writer errors; write_to reports them.
    let mut out = Vec::new();
    el.write_to(&mut out).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

fn from_xml(lua: &Lua, xml: Value) -> Result<Table, String> {
    let Value::String(s) = xml else {
        return Err("expected a string".to_owned());
    };
    let s = s.to_str().map_err(|e| e.to_string())?;
    let el: minidom::Element = s.parse().map_err(|e: minidom::Error| e.to_string())?;
    element_to_lua(lua, &el).map_err(|e| e.to_string())
}

pub fn export_probes(lua: &Lua, exports: &Table) -> LuaResult<()> {
    exports.set(
        "_roundtrip",
        lua.create_function(|lua, stanza: Value| {
            Ok(probe(
                as_stanza(stanza)
                    .and_then(|t| element_from_lua(&t))
                    .and_then(|el| element_to_lua(lua, &el)),
            ))
        })?,
    )?;
    exports.set(
        "_to_xml",
        lua.create_function(|_, stanza: Value| Ok(probe(to_xml(stanza))))?,
    )?;
    exports.set(
        "_from_xml",
        lua.create_function(|lua, xml: Value| Ok(probe(from_xml(lua, xml))))?,
    )?;
    exports.set(
        "_attr",
        lua.create_function(|_, (stanza, name): (Value, String)| {
            Ok(match as_stanza(stanza).and_then(|t| attr_of(&t, &name)) {
                Ok(value) => (value, None),
                Err(e) => (None, Some(e.to_string())),
            })
        })?,
    )?;
    Ok(())
}
