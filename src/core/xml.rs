//! Small helpers over `minidom::Element` so the rest of the core reads like XEP-0045,
//! not like attribute-map plumbing.

use minidom::rxml::{Namespace, NcName};
use minidom::Element;

/// Sets (or replaces) an unnamespaced attribute. `name` is always a literal from this crate.
pub fn set_attr(el: &mut Element, name: &'static str, value: impl Into<String>) {
    // A literal attribute name that is not an NCName is a bug in this crate, not bad input.
    let name = NcName::try_from(name).expect("attribute names in minimix are valid NCNames");
    let value: String = value.into();
    if let Some(slot) = el.attrs_mut().get_mut(&Namespace::NONE, &name) {
        *slot = value;
    } else {
        el.attrs_mut().insert(Namespace::NONE, name, value);
    }
}

/// Removes an unnamespaced attribute if present.
pub fn remove_attr(el: &mut Element, name: &str) {
    el.attrs_mut().remove(&Namespace::NONE, name);
}

/// Builds `<name xmlns=ns/>` with the given attributes.
pub fn element(name: &str, ns: &str, attrs: &[(&'static str, &str)]) -> Element {
    let mut el = Element::bare(name, ns);
    for (k, v) in attrs {
        set_attr(&mut el, k, *v);
    }
    el
}

/// Builds `<name xmlns=ns>text</name>`.
pub fn text_element(name: &str, ns: &str, text: &str) -> Element {
    let mut el = Element::bare(name, ns);
    el.append_text(text);
    el
}

/// Serialized size of an element, used for byte limits. Never panics: an element that cannot
/// be serialized (the writer errs, or panics on content it does not expect) counts as
/// `usize::MAX`, so it fits no limit, rather than as free or as a crash halfway through an
/// input with the core's state half updated.
pub fn serialized_len(el: &Element) -> usize {
    let mut counter = ByteCounter(0);
    let written =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| el.write_to(&mut counter)));
    match written {
        Ok(Ok(())) => counter.0,
        Ok(Err(_)) | Err(_) => usize::MAX,
    }
}

/// An `io::Write` that only counts (sizes without building the text).
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Removes every direct child named `name` in namespace `ns`.
pub fn remove_children(el: &mut Element, name: &str, ns: &str) {
    while el.remove_child(name, ns).is_some() {}
}

/// Removes every direct child element for which `unwanted` holds; text and the other
/// children stay, in order.
pub fn remove_children_where(el: &mut Element, unwanted: impl Fn(&Element) -> bool) {
    let kept: Vec<minidom::Node> = el
        .take_nodes()
        .into_iter()
        .filter(|n| match n {
            minidom::Node::Element(e) => !unwanted(e),
            minidom::Node::Text(_) => true,
        })
        .collect();
    for n in kept {
        el.append_node(n);
    }
}

/// What [`write_compact`] leaves out of the top-level element: the parts that differ between
/// the accounts receiving the same stanza, so that equal stanzas serialize equally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Omit {
    /// The top-level `to` attribute (each account receives its own).
    pub to: bool,
    /// The top-level element's last node (an account's own archive `<stanza-id/>`).
    pub last_node: bool,
}

/// Serializes `el` as XML into `out` (appending), leaving out what `omit` says. The output
/// parses back (`str::parse::<Element>`) to an equal element: namespaces are declared where
/// they change, `xml:` attributes keep their prefix, other namespaced attributes get a local
/// prefix, and characters XML parsers would normalise (CR, tabs and newlines in attribute
/// values) are written as character references. Nothing is allocated but `out`'s growth
/// and, for elements whose namespace differs from their parent's, the namespace string.
pub fn write_compact(el: &Element, omit: Omit, out: &mut String) {
    write_element(el, None, omit, out);
}

fn write_element(el: &Element, parent_ns: Option<&str>, omit: Omit, out: &mut String) {
    out.push('<');
    out.push_str(el.name());
    let own_ns;
    let ns: &str = match parent_ns {
        Some(p) if el.has_ns(p) => p,
        _ => {
            own_ns = el.ns();
            out.push_str(" xmlns='");
            escape_attr(&own_ns, out);
            out.push('\'');
            &own_ns
        }
    };
    let mut prefixes = 0usize;
    for ((ans, name), value) in el.attrs().iter() {
        if ans.is_none() {
            if omit.to && name.as_str() == "to" {
                continue;
            }
            out.push(' ');
        } else if *ans == Namespace::XML {
            out.push_str(" xml:");
        } else {
            // A prefix of our own per namespaced attribute: never clashes, always declared.
            out.push_str(" xmlns:a");
            push_decimal(prefixes, out);
            out.push_str("='");
            escape_attr(ans.as_str(), out);
            out.push_str("' a");
            push_decimal(prefixes, out);
            out.push(':');
            prefixes += 1;
        }
        out.push_str(name.as_str());
        out.push_str("='");
        escape_attr(value, out);
        out.push('\'');
    }
    let nodes = el.nodes().as_slice();
    let nodes = if omit.last_node && !nodes.is_empty() {
        &nodes[..nodes.len() - 1]
    } else {
        nodes
    };
    if nodes.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for node in nodes {
        match node {
            minidom::Node::Element(child) => write_element(child, Some(ns), Omit::default(), out),
            minidom::Node::Text(text) => escape_text(text, out),
        }
    }
    out.push_str("</");
    out.push_str(el.name());
    out.push('>');
}

fn push_decimal(n: usize, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

/// Escapes text content: markup characters and CR (which parsers would turn into LF).
pub fn escape_text(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(i) = rest.find(['&', '<', '>', '\r']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            _ => "&#xD;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Escapes an attribute value: markup characters, both quotes, and the whitespace that
/// attribute-value normalisation would otherwise turn into spaces.
pub fn escape_attr(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(i) = rest.find(['&', '<', '>', '\'', '"', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\'' => "&apos;",
            b'"' => "&quot;",
            b'\t' => "&#x9;",
            b'\n' => "&#xA;",
            _ => "&#xD;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// The length [`escape_attr`] gives `s`, without writing it.
pub fn escaped_attr_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'&' => 5,
            b'<' | b'>' => 4,
            b'\'' | b'"' => 6,
            b'\t' | b'\n' | b'\r' => 5,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-z &<>'\"\t\n\r\u{e9}\u{1F600}]{1,12}").unwrap()
    }

    fn leaf() -> impl Strategy<Value = Element> {
        let name = prop_oneof![Just("body"), Just("item"), Just("x")];
        let ns = prop_oneof![Just("jabber:client"), Just("urn:a"), Just("")];
        let attrs = proptest::collection::vec(
            (prop_oneof![Just(0u8), Just(1), Just(2), Just(3)], text()),
            0..4,
        );
        (name, ns, attrs, proptest::option::of(text())).prop_map(|(name, ns, attrs, body)| {
            let mut el = Element::bare(name, ns);
            for (kind, value) in attrs {
                let (ns, local) = match kind {
                    0 => (Namespace::NONE, "to"),
                    1 => (Namespace::NONE, "id"),
                    2 => (Namespace::XML, "lang"),
                    _ => (Namespace::from("urn:attr".to_owned()), "k"),
                };
                el.attrs_mut()
                    .insert(ns, NcName::try_from(local).unwrap(), value);
            }
            if let Some(body) = body {
                el.append_text(body);
            }
            el
        })
    }

    fn tree() -> impl Strategy<Value = Element> {
        leaf().prop_recursive(3, 16, 4, |inner| {
            (leaf(), proptest::collection::vec(inner, 0..4)).prop_map(|(mut el, children)| {
                for c in children {
                    el.append_child(c);
                }
                el
            })
        })
    }

    proptest! {
        /// What the compact writer writes parses back to an equal element.
        #[test]
        fn compact_xml_round_trips(el in tree()) {
            let mut text = String::new();
            write_compact(&el, Omit::default(), &mut text);
            let back: Element = text.parse().map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
            prop_assert_eq!(back, el);
        }

        /// Leaving out `to` and the last node is the same as writing an element without them.
        #[test]
        fn omitted_parts_are_as_if_absent(mut el in tree()) {
            let mut text = String::new();
            write_compact(&el, Omit { to: true, last_node: true }, &mut text);
            remove_attr(&mut el, "to");
            let mut nodes = el.take_nodes();
            nodes.pop();
            for n in nodes {
                el.append_node(n);
            }
            let mut expected = String::new();
            write_compact(&el, Omit::default(), &mut expected);
            prop_assert_eq!(text, expected);
        }
    }

    #[test]
    fn escaped_length_matches_escaping() {
        let s = "a&b<c>d'e\"f\tg\nh\ri\u{e9}";
        let mut out = String::new();
        escape_attr(s, &mut out);
        assert_eq!(escaped_attr_len(s), out.len());
    }

    #[test]
    fn serialized_len_counts_the_bytes_written() {
        let mut el = Element::bare("message", "jabber:client");
        el.append_child(text_element("body", "jabber:client", "héllo ☃"));
        let mut out = Vec::new();
        el.write_to(&mut out).unwrap();
        assert_eq!(serialized_len(&el), out.len());
    }
}
