//! Conversion between Prosody's `util.stanza` tables and [`minidom::Element`].
//!
//! # The Lua shape (Prosody 0.12 / 13, `util/stanza.lua`)
//!
//! A stanza is a table with:
//! * `name`: the local element name;
//! * `attr`: string → string. The key `xmlns` is the element's namespace, `xml:lang` (and
//!   `xml:space`, …) are attributes in the XML namespace, and `"uri\1local"` keys are
//!   namespaced attributes (the legacy `"uri|local"` form of `st.deserialize` is accepted on
//!   input);
//! * `tags`: the child elements only;
//! * array part `[1..n]`: all children in document order, element tables and text strings.
//!   A child element is the *same table* in `tags` and in the array part.
//!
//! `last_add` and `namespaces` are ignored on input and never created on output. On input
//! only the array part is read (as Prosody's serializer does); `tags` is not consulted.
//!
//! # Namespaces
//!
//! Lua → XML: an element's namespace is its own `attr.xmlns`, else its parent's, else
//! `jabber:client` ([`NS_CLIENT`]).
//!
//! XML → Lua mirrors Prosody's stream parser (`util/xmppstream.lua`): `attr.xmlns` is set on
//! every element whose namespace is not `jabber:client` **and on every descendant of such
//! an element**, so `get_child(name, xmlns)` finds converted children. A top-level
//! `jabber:client` stanza and its `jabber:client` children get no `xmlns`.
//!
//! # Validation
//!
//! Lua → XML is strict (stricter than `util.stanza`, which accepts bytes 0x14-0x1F): names
//! must be XML NCNames, text, attribute values and namespace URIs must be valid UTF-8 made of
//! XML 1.0 characters, nesting is limited to [`MAX_DEPTH`] levels. Anything else is a
//! [`StanzaError`]; nothing here panics on input. This also guarantees that serializing the
//! resulting `Element` (`String::from(&el)`, which unwraps writer errors) cannot fail.

use std::fmt;

use minidom::rxml::{strings, AttrMap, Namespace, NcName, XMLNS_XML, XMLNS_XMLNS};
use minidom::{Element, Node};
use mlua::{Lua, String as LuaString, Table, Value};

/// The default namespace of c2s streams, implied for elements without `attr.xmlns`.
pub const NS_CLIENT: &str = "jabber:client";

/// Maximum element nesting depth (the top-level element is depth 1).
pub const MAX_DEPTH: usize = 64;

/// Registry key under which [`set_stanza_mt`] stores `util.stanza`'s `stanza_mt`.
pub const STANZA_MT_KEY: &str = "minimix.stanza_mt";

/// Longest name or key quoted in an error message.
const MAX_QUOTED: usize = 64;

/// Errors converting stanzas; never panics on input.
#[derive(Debug)]
pub enum StanzaError {
    /// The value is not shaped like a stanza (missing `name`/`attr`, bad child type, …).
    NotAStanza(&'static str),
    /// An element name that is not a valid XML NCName (or not UTF-8).
    BadName(String),
    /// A text node that is not valid UTF-8 or contains characters XML 1.0 forbids.
    BadText,
    /// An attribute (named by its key) with an invalid key, value or namespace.
    BadAttr(String),
    /// Elements nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An error raised by the Lua API itself.
    Lua(mlua::Error),
}

impl fmt::Display for StanzaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StanzaError::NotAStanza(what) => write!(f, "not a stanza: {what}"),
            StanzaError::BadName(name) => write!(f, "invalid element name {name:?}"),
            StanzaError::BadText => {
                f.write_str("invalid text: not UTF-8 or not XML 1.0 characters")
            }
            StanzaError::BadAttr(key) => write!(f, "invalid attribute {key:?}"),
            StanzaError::TooDeep => write!(f, "stanza nested deeper than {MAX_DEPTH} levels"),
            StanzaError::Lua(e) => write!(f, "Lua error: {e}"),
        }
    }
}

impl std::error::Error for StanzaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StanzaError::Lua(e) => Some(e),
            _ => None,
        }
    }
}

impl From<mlua::Error> for StanzaError {
    fn from(e: mlua::Error) -> Self {
        StanzaError::Lua(e)
    }
}

impl From<StanzaError> for mlua::Error {
    fn from(e: StanzaError) -> Self {
        match e {
            StanzaError::Lua(e) => e,
            other => mlua::Error::external(other),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers (unit-tested without a Lua state).

/// Is `s` a valid XML NCName (non-empty, no colon)?
pub fn is_ncname(s: &str) -> bool {
    strings::validate_ncname(s).is_ok()
}

/// Is `s` made only of XML 1.0 characters (no C0 controls except tab, LF, CR; no U+FFFE/FFFF)?
pub fn is_xml_text(s: &str) -> bool {
    strings::validate_cdata(s).is_ok()
}

/// Can `uri` be an element's namespace (`attr.xmlns`)?
///
/// The empty string means "no namespace" (`xmlns=''`, which Prosody's parser also produces).
/// The reserved `xml` and `xmlns` namespaces are rejected: rxml's writer *panics* on an
/// element in the `xmlns` namespace.
pub fn is_element_namespace(uri: &str) -> bool {
    uri != XMLNS_XML && uri != XMLNS_XMLNS && is_xml_text(uri)
}

/// Can `uri` be the namespace of a `"uri\1local"` attribute (other than the XML namespace,
/// which maps to `xml:`)? Must be non-empty and not `xmlns`.
pub fn is_attr_namespace(uri: &str) -> bool {
    !uri.is_empty() && is_element_namespace(uri)
}

/// What an `attr` key of a stanza table means.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum AttrKey<'a> {
    /// `xmlns`: the element's namespace, not an attribute.
    Xmlns,
    /// A plain attribute (no namespace).
    Plain(&'a str),
    /// `xml:<local>` (e.g. `xml:lang`): an attribute in the XML namespace.
    Xml(&'a str),
    /// `"uri\1local"` (or legacy `"uri|local"`): a namespaced attribute.
    Namespaced(&'a str, &'a str),
}

/// Classify an `attr` key. Does not validate names; see [`attr_target`].
pub fn classify_attr_key(key: &str) -> AttrKey<'_> {
    if key == "xmlns" {
        return AttrKey::Xmlns;
    }
    if let Some((uri, local)) = key.split_once('\u{1}') {
        return AttrKey::Namespaced(uri, local);
    }
    if let Some(local) = key.strip_prefix("xml:") {
        return AttrKey::Xml(local);
    }
    // Legacy form accepted by st.deserialize: "^([^|]+)|(.+)$".
    if let Some((uri, local)) = key.split_once('|') {
        if !uri.is_empty() && !local.is_empty() {
            return AttrKey::Namespaced(uri, local);
        }
    }
    AttrKey::Plain(key)
}

/// Validate an attribute key other than `xmlns` and return its (namespace, local name).
pub fn attr_target(key: AttrKey<'_>) -> Option<(Namespace<'static>, NcName)> {
    let (ns, local) = match key {
        AttrKey::Xmlns => return None,
        AttrKey::Plain(local) => (Namespace::NONE, local),
        AttrKey::Xml(local) => (Namespace::XML, local),
        AttrKey::Namespaced(uri, local) if uri == XMLNS_XML => (Namespace::XML, local),
        AttrKey::Namespaced(uri, local) => {
            if !is_attr_namespace(uri) {
                return None;
            }
            (Namespace::from(uri.to_owned()), local)
        }
    };
    let local = NcName::try_from(local).ok()?;
    Some((ns, local))
}

/// Quote (lossily, truncated) a possibly non-UTF-8 Lua string for an error message.
fn quote(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    match s.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Lua → Element

/// util.stanza table -> Element. A top-level element without `attr.xmlns` is in
/// [`NS_CLIENT`]; see [`element_from_lua_in`] to convert a child element on its own.
pub fn element_from_lua(table: &Table) -> Result<Element, StanzaError> {
    element_from_lua_in(table, NS_CLIENT)
}

/// Like [`element_from_lua`], for an element whose parent's namespace is `inherited_ns`
/// (e.g. a payload taken out of a stanza, whose `attr.xmlns` may be nil).
pub fn element_from_lua_in(table: &Table, inherited_ns: &str) -> Result<Element, StanzaError> {
    if !is_element_namespace(inherited_ns) {
        return Err(StanzaError::BadAttr("xmlns".to_owned()));
    }
    from_lua_inner(table, inherited_ns, 1, false)
}

/// Like [`element_from_lua`], but leaves out what it cannot convert (children nested too
/// deeply, invalid text or attributes, odd children) instead of failing, and says whether it
/// did. For stanzas that must not be dropped: an unclaimed groupchat from a room the account
/// is in bounces and gets the account kicked, and a join that passes through unconverted
/// would make the session itself an occupant. Only the top-level name and `attr` must be valid.
pub fn element_from_lua_lossy(table: &Table) -> Result<Element, StanzaError> {
    from_lua_inner(table, NS_CLIENT, 1, true)
}

fn from_lua_inner(
    table: &Table,
    inherited_ns: &str,
    depth: usize,
    lossy: bool,
) -> Result<Element, StanzaError> {
    if depth > MAX_DEPTH {
        return Err(StanzaError::TooDeep);
    }

    let name = match table.raw_get::<Value>("name")? {
        Value::String(s) => s,
        _ => return Err(StanzaError::NotAStanza("`name` is missing or not a string")),
    };
    let name_bytes = name.as_bytes();
    let name = match std::str::from_utf8(&name_bytes) {
        Ok(n) if is_ncname(n) => n,
        _ => return Err(StanzaError::BadName(quote(&name_bytes))),
    };

    let attr = match table.raw_get::<Value>("attr")? {
        Value::Table(t) => t,
        _ => return Err(StanzaError::NotAStanza("`attr` is missing or not a table")),
    };
    let mut attrs = AttrMap::new();
    let mut xmlns: Option<String> = None;
    let mut failure: Option<StanzaError> = None;
    let walked = attr.for_each(|k: Value, v: Value| {
        match convert_attr(&k, &v, &mut attrs, &mut xmlns) {
            Ok(()) => Ok(()),
            Err(_) if lossy && depth > 1 => Ok(()),
            Err(e) => {
                failure = Some(e);
                // Only stops the traversal; replaced by `failure` below.
                Err(mlua::Error::runtime("invalid attribute"))
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    walked?;

    let ns: &str = xmlns.as_deref().unwrap_or(inherited_ns);
    let mut el = Element::bare(name, ns);
    *el.attrs_mut() = attrs;

    // Like util.stanza's serializer: children are t[1..#t].
    let len = table.raw_len();
    for i in 1..=len {
        match table.raw_get::<Value>(i)? {
            Value::String(s) => {
                let text = match s.to_str() {
                    Ok(t) if is_xml_text(&t) => t,
                    _ if lossy => continue,
                    _ => return Err(StanzaError::BadText),
                };
                if !text.is_empty() {
                    // Merges adjacent runs, like Prosody's parser.
                    el.append_text(&*text);
                }
            }
            Value::Table(child) => match from_lua_inner(&child, ns, depth + 1, lossy) {
                Ok(child) => {
                    el.append_child(child);
                }
                Err(_) if lossy => continue,
                Err(e) => return Err(e),
            },
            _ if lossy => continue,
            _ => {
                return Err(StanzaError::NotAStanza(
                    "child is neither an element table nor a string",
                ))
            }
        }
    }
    Ok(el)
}

fn convert_attr(
    key: &Value,
    value: &Value,
    attrs: &mut AttrMap,
    xmlns: &mut Option<String>,
) -> Result<(), StanzaError> {
    let key = match key {
        Value::String(k) => k,
        _ => return Err(StanzaError::BadAttr("<non-string key>".to_owned())),
    };
    let key_bytes = key.as_bytes();
    let bad = || StanzaError::BadAttr(quote(&key_bytes));
    let key = std::str::from_utf8(&key_bytes).map_err(|_| bad())?;
    let value = match value {
        Value::String(v) => v.to_str().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    if !is_xml_text(&value) {
        return Err(bad());
    }
    match classify_attr_key(key) {
        AttrKey::Xmlns => {
            if !is_element_namespace(&value) {
                return Err(bad());
            }
            *xmlns = Some(String::from(&*value));
        }
        other => {
            let (ns, local) = attr_target(other).ok_or_else(bad)?;
            attrs.insert(ns, local, String::from(&*value));
        }
    }
    Ok(())
}

/// Reads only `attr[name]` of a stanza table without converting it (hot path helper).
///
/// `Ok(None)` if the attribute is absent; an error if the table has no `attr` table or the
/// value is not a UTF-8 string.
/// Whether a Lua stanza has a direct child element `name` whose own `attr.xmlns` is `ns`
/// (as Prosody's `get_child(name, ns)` finds it), without converting anything.
pub fn has_child(table: &Table, name: &str, ns: &str) -> bool {
    let len = table.raw_len();
    (1..=len).any(|i| {
        let Ok(Value::Table(child)) = table.raw_get::<Value>(i) else {
            return false;
        };
        let named = matches!(child.raw_get::<Value>("name"), Ok(Value::String(n)) if n.as_bytes() == name.as_bytes());
        let in_ns = match child.raw_get::<Value>("attr") {
            Ok(Value::Table(attr)) => {
                matches!(attr.raw_get::<Value>("xmlns"), Ok(Value::String(x)) if x.as_bytes() == ns.as_bytes())
            }
            _ => false,
        };
        named && in_ns
    })
}

pub fn attr_of(table: &Table, name: &str) -> Result<Option<String>, StanzaError> {
    let attr = match table.raw_get::<Value>("attr")? {
        Value::Table(t) => t,
        _ => return Err(StanzaError::NotAStanza("`attr` is missing or not a table")),
    };
    match attr.raw_get::<Value>(name)? {
        Value::Nil => Ok(None),
        Value::String(s) => match s.to_str() {
            Ok(v) => Ok(Some(String::from(&*v))),
            Err(_) => Err(StanzaError::BadAttr(quote(name.as_bytes()))),
        },
        _ => Err(StanzaError::BadAttr(quote(name.as_bytes()))),
    }
}

// ---------------------------------------------------------------------------------------------
// Element → Lua

/// Store `util.stanza`'s `stanza_mt` for [`element_to_lua`]. Call once from the Lua shim with
/// `require "util.stanza".stanza_mt`.
pub fn set_stanza_mt(lua: &Lua, mt: Table) -> mlua::Result<()> {
    lua.set_named_registry_value(STANZA_MT_KEY, mt)
}

/// Key strings for building tables, created once per conversion instead of once per field.
/// (The Lua → Element direction uses `&str` keys: a `Table` does not expose its `Lua`.)
struct Keys {
    name: LuaString,
    attr: LuaString,
    tags: LuaString,
    xmlns: LuaString,
}

impl Keys {
    fn new(lua: &Lua) -> mlua::Result<Self> {
        Ok(Keys {
            name: lua.create_string("name")?,
            attr: lua.create_string("attr")?,
            tags: lua.create_string("tags")?,
            xmlns: lua.create_string("xmlns")?,
        })
    }
}

/// A namespace URI and the Lua string for it, shared by a subtree in that namespace.
struct NsEntry {
    uri: String,
    lua: LuaString,
}

struct ToLua<'a> {
    lua: &'a Lua,
    mt: Table,
    keys: Keys,
    /// Scratch buffer for building `uri\1local` keys.
    buf: Vec<u8>,
}

/// Element -> util.stanza table with the stanza metatable set.
///
/// Mirrors Prosody's parser: `attr.xmlns` is set on every element whose namespace differs
/// from `jabber:client`, and on all descendants of such an element.
pub fn element_to_lua(lua: &Lua, el: &Element) -> Result<Table, StanzaError> {
    let mt = match lua.named_registry_value::<Value>(STANZA_MT_KEY)? {
        Value::Table(mt) => mt,
        _ => {
            return Err(StanzaError::Lua(mlua::Error::runtime(
                "stanza metatable not registered: call set_stanza_mt(require\"util.stanza\".stanza_mt) first",
            )))
        }
    };
    let mut ctx = ToLua {
        lua,
        mt,
        keys: Keys::new(lua)?,
        buf: Vec::new(),
    };
    ctx.convert(el, None, 1)
}

/// A new stanza table that is `base` addressed to `to` with `extra` children appended. Only
/// the top level is new: the children are `base`'s own tables (shared, as Prosody's MUC
/// shares one stanza between its occupants).
pub fn extended_copy(
    lua: &Lua,
    base: &Table,
    to: &str,
    extra: &[Element],
) -> Result<Table, StanzaError> {
    let len = base.raw_len();
    let t = lua.create_table_with_capacity(len + extra.len(), 3)?;
    t.raw_set("name", base.raw_get::<Value>("name")?)?;
    let attr = lua.create_table()?;
    if let Value::Table(base_attr) = base.raw_get::<Value>("attr")? {
        base_attr.for_each(|k: Value, v: Value| attr.raw_set(k, v))?;
    }
    attr.raw_set("to", to)?;
    t.raw_set("attr", attr)?;
    let tags = lua.create_table()?;
    if let Value::Table(base_tags) = base.raw_get::<Value>("tags")? {
        for i in 1..=base_tags.raw_len() {
            tags.raw_set(i, base_tags.raw_get::<Value>(i)?)?;
        }
    }
    for i in 1..=len {
        t.raw_set(i, base.raw_get::<Value>(i)?)?;
    }
    for child in extra {
        let c = element_to_lua(lua, child)?;
        tags.raw_push(&c)?;
        t.raw_push(c)?;
    }
    t.raw_set("tags", tags)?;
    t.set_metatable(base.metatable())?;
    Ok(t)
}

impl ToLua<'_> {
    /// `parent_ns` is `Some` iff the parent carries `attr.xmlns`, in which case this element
    /// must carry one too (parser behaviour).
    fn convert(
        &mut self,
        el: &Element,
        parent_ns: Option<&NsEntry>,
        depth: usize,
    ) -> Result<Table, StanzaError> {
        if depth > MAX_DEPTH {
            return Err(StanzaError::TooDeep);
        }
        let own: NsEntry;
        let ns: Option<&NsEntry> = match parent_ns {
            Some(p) if el.has_ns(p.uri.as_str()) => Some(p),
            None if el.has_ns(NS_CLIENT) => None,
            _ => {
                let uri = el.ns();
                let lua = self.lua.create_string(&uri)?;
                own = NsEntry { uri, lua };
                Some(&own)
            }
        };

        let nodes = el.nodes();
        let n_children = el.children().count();
        let t = self.lua.create_table_with_capacity(nodes.len(), 3)?;
        t.raw_set(&self.keys.name, el.name())?;

        let attrs = el.attrs();
        let attr = self
            .lua
            .create_table_with_capacity(0, attrs.len() + usize::from(ns.is_some()))?;
        if let Some(ns) = ns {
            attr.raw_set(&self.keys.xmlns, &ns.lua)?;
        }
        for ((ans, aname), value) in attrs.iter() {
            if ans.is_none() {
                attr.raw_set(aname.as_str(), value.as_str())?;
            } else {
                self.buf.clear();
                if *ans == Namespace::XML {
                    self.buf.extend_from_slice(b"xml:");
                } else {
                    self.buf.extend_from_slice(ans.as_bytes());
                    self.buf.push(1);
                }
                self.buf.extend_from_slice(aname.as_bytes());
                let key = self.lua.create_string(&self.buf)?;
                attr.raw_set(key, value.as_str())?;
            }
        }
        t.raw_set(&self.keys.attr, attr)?;

        let tags = self.lua.create_table_with_capacity(n_children, 0)?;
        let mut i = 0usize;
        let mut j = 0usize;
        for node in nodes {
            match node {
                Node::Element(child) => {
                    let c = self.convert(child, ns, depth + 1)?;
                    j += 1;
                    tags.raw_set(j, &c)?;
                    i += 1;
                    t.raw_set(i, c)?;
                }
                Node::Text(text) => {
                    if !text.is_empty() {
                        i += 1;
                        t.raw_set(i, text.as_str())?;
                    }
                }
            }
        }
        t.raw_set(&self.keys.tags, tags)?;
        t.set_metatable(Some(self.mt.clone()))?;
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ncnames() {
        assert!(is_ncname("message"));
        assert!(is_ncname("x_1.-y"));
        assert!(is_ncname("名前"));
        assert!(!is_ncname(""));
        assert!(!is_ncname("a:b"));
        assert!(!is_ncname("a b"));
        assert!(!is_ncname("1abc"));
        assert!(!is_ncname("a<b"));
        assert!(!is_ncname("a\u{1}b"));
    }

    #[test]
    fn xml_text() {
        assert!(is_xml_text(""));
        assert!(is_xml_text("hi\t\n\r<&>'\""));
        assert!(is_xml_text("😀 中文"));
        for c in (0u32..0x20).filter(|c| ![9, 10, 13].contains(c)) {
            let s = format!("a{}b", char::from_u32(c).unwrap());
            assert!(!is_xml_text(&s), "{c:#x} accepted");
        }
        assert!(!is_xml_text("\u{FFFE}"));
        assert!(!is_xml_text("x\u{FFFF}"));
        assert!(is_xml_text("\u{FFFD}\u{10FFFF}"));
    }

    #[test]
    fn namespaces() {
        assert!(is_element_namespace("jabber:client"));
        assert!(is_element_namespace(""));
        assert!(!is_element_namespace(XMLNS_XML));
        assert!(!is_element_namespace(XMLNS_XMLNS));
        assert!(!is_element_namespace("urn:\u{0}"));
        assert!(is_attr_namespace("urn:x"));
        assert!(!is_attr_namespace(""));
        assert!(!is_attr_namespace(XMLNS_XMLNS));
    }

    #[test]
    fn attr_keys() {
        assert_eq!(classify_attr_key("xmlns"), AttrKey::Xmlns);
        assert_eq!(classify_attr_key("to"), AttrKey::Plain("to"));
        assert_eq!(classify_attr_key("xml:lang"), AttrKey::Xml("lang"));
        assert_eq!(
            classify_attr_key("urn:a\u{1}b"),
            AttrKey::Namespaced("urn:a", "b")
        );
        assert_eq!(
            classify_attr_key("urn:a|b"),
            AttrKey::Namespaced("urn:a", "b")
        );
        // "\1" wins over "|", as in st.deserialize.
        assert_eq!(
            classify_attr_key("urn:a|x\u{1}b"),
            AttrKey::Namespaced("urn:a|x", "b")
        );
        assert_eq!(classify_attr_key("|b"), AttrKey::Plain("|b"));
    }

    #[test]
    fn attr_targets() {
        let (ns, n) = attr_target(classify_attr_key("xml:lang")).unwrap();
        assert_eq!(ns, Namespace::XML);
        assert_eq!(n.as_str(), "lang");
        let (ns, n) = attr_target(classify_attr_key(&format!("{XMLNS_XML}\u{1}lang"))).unwrap();
        assert_eq!(ns, Namespace::XML);
        assert_eq!(n.as_str(), "lang");
        let (ns, n) = attr_target(classify_attr_key("urn:x\u{1}y")).unwrap();
        assert_eq!(ns.as_str(), "urn:x");
        assert_eq!(n.as_str(), "y");
        assert!(attr_target(classify_attr_key("xmlns")).is_none());
        assert!(attr_target(classify_attr_key("a:b")).is_none());
        assert!(attr_target(classify_attr_key("xmlns:foo")).is_none());
        assert!(attr_target(classify_attr_key("\u{1}y")).is_none());
        assert!(attr_target(classify_attr_key(&format!("{XMLNS_XMLNS}\u{1}y"))).is_none());
        assert!(attr_target(classify_attr_key("urn:x\u{1}")).is_none());
        assert!(attr_target(classify_attr_key("")).is_none());
    }

    #[test]
    fn quote_truncates() {
        assert_eq!(quote(b"abc"), "abc");
        assert_eq!(quote(b"a\xffb"), "a\u{FFFD}b");
        let long = "é".repeat(100);
        assert_eq!(quote(long.as_bytes()).chars().count(), MAX_QUOTED + 1);
    }

    /// Whatever passes validation must serialize (String::from(&el) unwraps writer errors).
    #[test]
    fn validated_elements_serialize() {
        let mut el = Element::bare("message", NS_CLIENT);
        for key in ["to", "xml:lang", "urn:x\u{1}y", "urn:a|b"] {
            let (ns, n) = attr_target(classify_attr_key(key)).unwrap();
            el.attrs_mut().insert(ns, n, "v'\"<&\t\n".to_owned());
        }
        let mut child = Element::bare("x", "urn:x");
        child.append_text("a\r\nb <&> 😀");
        child.append_child(Element::bare("y", "urn:x"));
        child.append_child(Element::bare("body", NS_CLIENT));
        child.append_child(Element::bare("none", ""));
        el.append_child(child);
        let xml = String::from(&el);
        let back: Element = xml.parse().unwrap();
        assert_eq!(back, el);
        assert_eq!(back.attr_ns(&Namespace::XML, "lang"), Some("v'\"<&\t\n"));
    }
}
