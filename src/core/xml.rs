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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_len_counts_the_bytes_written() {
        let mut el = Element::bare("message", "jabber:client");
        el.append_child(text_element("body", "jabber:client", "héllo ☃"));
        let mut out = Vec::new();
        el.write_to(&mut out).unwrap();
        assert_eq!(serialized_len(&el), out.len());
    }
}
