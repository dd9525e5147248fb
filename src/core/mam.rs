//! XEP-0313 queries of the account's own archive. The module stores each groupchat message
//! of the account's rooms there once (see `archive.rs`); a query decides with the
//! `include-groupchat` form field (XEP-0313 "Including groupchat results in a user archive")
//! whether its results contain them. Without the field they are left out: clients that never
//! heard of the field would otherwise page through every room's traffic to find their chats.
//!
//! The field is advertised with `urn:xmpp:mam:2#groupchat-field` (the server understands
//! it) and `urn:xmpp:mam:2#groupchat-available` (groupchat is stored in user archives).

use minidom::Element;

use super::xml;

/// XEP-0313: Message Archive Management.
pub const NS_MAM: &str = "urn:xmpp:mam:2";
/// XEP-0004: data forms.
pub const NS_DATA: &str = "jabber:x:data";
/// The query field that asks for groupchat results.
pub const FIELD_INCLUDE_GROUPCHAT: &str = "include-groupchat";
/// Disco feature: queries understand `include-groupchat`.
pub const FEATURE_GROUPCHAT_FIELD: &str = "urn:xmpp:mam:2#groupchat-field";
/// Disco feature: user archives hold groupchat messages.
pub const FEATURE_GROUPCHAT_AVAILABLE: &str = "urn:xmpp:mam:2#groupchat-available";

/// A query whose `include-groupchat` field is not a XEP-0004 boolean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeGroupchatError {
    pub value: String,
}

impl std::fmt::Display for IncludeGroupchatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "'{}' is not a boolean ({FIELD_INCLUDE_GROUPCHAT} takes true, false, 1 or 0)",
            self.value
        )
    }
}

impl std::error::Error for IncludeGroupchatError {}

/// Whether a MAM `<query/>` (or the iq carrying it) asks for groupchat results: only an
/// `include-groupchat` field set to true does; absent, it does not.
pub fn query_includes_groupchat(stanza: &Element) -> Result<bool, IncludeGroupchatError> {
    let query = if stanza.is("query", NS_MAM) {
        Some(stanza)
    } else {
        stanza.get_child("query", NS_MAM)
    };
    let Some(form) = query.and_then(|q| q.get_child("x", NS_DATA)) else {
        return Ok(false);
    };
    let Some(field) = form
        .children()
        .find(|f| f.is("field", NS_DATA) && f.attr("var") == Some(FIELD_INCLUDE_GROUPCHAT))
    else {
        return Ok(false);
    };
    let Some(value) = field.get_child("value", NS_DATA) else {
        return Ok(false);
    };
    match value.text().trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(IncludeGroupchatError {
            value: other.to_owned(),
        }),
    }
}

/// Adds the `include-groupchat` boolean to the query form of a reply to a form request
/// (`<iq type=result><query xmlns=mam:2><x type=form/>`), unless it is there already.
/// Returns whether the reply holds the field afterwards.
pub fn advertise_groupchat_field(reply: &mut Element) -> bool {
    let Some(query) = reply.get_child_mut("query", NS_MAM) else {
        return false;
    };
    let Some(form) = query.get_child_mut("x", NS_DATA) else {
        return false;
    };
    let present = form
        .children()
        .any(|f| f.is("field", NS_DATA) && f.attr("var") == Some(FIELD_INCLUDE_GROUPCHAT));
    if !present {
        form.append_child(xml::element(
            "field",
            NS_DATA,
            &[("var", FIELD_INCLUDE_GROUPCHAT), ("type", "boolean")],
        ));
    }
    true
}

/// What one page of a query that leaves groupchat out skips. Skipping is bounded: a page
/// would otherwise read the whole archive behind a busy room to find one chat message. Past
/// `max_skipped`, the rest of the page keeps groupchat too, so the page stays a contiguous
/// stretch of the archive and paging on from its last id misses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupchatFilter {
    max_skipped: usize,
    skipped: usize,
}

impl GroupchatFilter {
    pub fn new(max_skipped: usize) -> Self {
        Self {
            max_skipped,
            skipped: 0,
        }
    }

    /// Whether a stored message of this `type` goes into the results.
    pub fn keep(&mut self, stanza_type: Option<&str>) -> bool {
        if stanza_type != Some("groupchat") || self.skipped >= self.max_skipped {
            return true;
        }
        self.skipped += 1;
        false
    }

    /// How many stored messages to ask the archive for, to fill a page of `limit` results.
    pub fn scan_limit(&self, limit: usize) -> usize {
        limit.saturating_add(self.max_skipped)
    }

    /// Groupchat messages left out so far.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Whether the bound was reached (the rest of the page keeps groupchat).
    pub fn exhausted(&self) -> bool {
        self.skipped >= self.max_skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(fields: &str) -> Element {
        format!(
            "<iq xmlns='jabber:client' type='set' id='q'><query xmlns='{NS_MAM}' queryid='f'>\
             <x xmlns='{NS_DATA}' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>{NS_MAM}</value></field>{fields}</x>\
             </query></iq>"
        )
        .parse()
        .expect("test query parses")
    }

    fn include(value: &str) -> String {
        format!("<field var='include-groupchat'><value>{value}</value></field>")
    }

    #[test]
    fn groupchat_is_left_out_unless_the_query_asks_for_it() {
        let bare: Element =
            format!("<iq xmlns='jabber:client' type='set' id='q'><query xmlns='{NS_MAM}'/></iq>")
                .parse()
                .expect("parses");
        assert_eq!(query_includes_groupchat(&bare), Ok(false));
        assert_eq!(query_includes_groupchat(&query("")), Ok(false));
        assert_eq!(query_includes_groupchat(&query(&include("true"))), Ok(true));
        assert_eq!(query_includes_groupchat(&query(&include("1"))), Ok(true));
        assert_eq!(
            query_includes_groupchat(&query(&include(" true "))),
            Ok(true)
        );
        assert_eq!(
            query_includes_groupchat(&query(&include("false"))),
            Ok(false)
        );
        assert_eq!(query_includes_groupchat(&query(&include("0"))), Ok(false));
        assert_eq!(
            query_includes_groupchat(&query("<field var='include-groupchat'/>")),
            Ok(false)
        );
    }

    #[test]
    fn a_value_that_is_not_a_boolean_is_an_error() {
        let err = query_includes_groupchat(&query(&include("yes"))).unwrap_err();
        assert_eq!(err.value, "yes");
        assert!(err.to_string().contains("include-groupchat"));
    }

    #[test]
    fn the_field_is_added_once_to_the_served_form() {
        let mut reply: Element = format!(
            "<iq xmlns='jabber:client' type='result' id='f'><query xmlns='{NS_MAM}'>\
             <x xmlns='{NS_DATA}' type='form'><field var='FORM_TYPE' type='hidden'/>\
             <field var='with' type='jid-single'/></x></query></iq>"
        )
        .parse()
        .expect("parses");
        assert!(advertise_groupchat_field(&mut reply));
        assert!(advertise_groupchat_field(&mut reply));
        let form = reply
            .get_child("query", NS_MAM)
            .and_then(|q| q.get_child("x", NS_DATA))
            .expect("form");
        let fields: Vec<_> = form
            .children()
            .filter(|f| f.attr("var") == Some(FIELD_INCLUDE_GROUPCHAT))
            .collect();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].attr("type"), Some("boolean"));

        let mut other: Element = "<iq xmlns='jabber:client' type='result' id='f'/>"
            .parse()
            .expect("parses");
        assert!(!advertise_groupchat_field(&mut other));
    }

    #[test]
    fn the_filter_skips_groupchat_up_to_its_bound_then_keeps_everything() {
        let mut f = GroupchatFilter::new(2);
        assert!(f.keep(Some("chat")));
        assert!(f.keep(None));
        assert!(!f.keep(Some("groupchat")));
        assert!(!f.keep(Some("groupchat")));
        assert!(f.exhausted());
        assert!(f.keep(Some("groupchat")));
        assert!(f.keep(Some("chat")));
        assert_eq!(f.skipped(), 2);
        assert_eq!(f.scan_limit(21), 23);
        assert_eq!(GroupchatFilter::new(usize::MAX).scan_limit(5), usize::MAX);
    }
}
