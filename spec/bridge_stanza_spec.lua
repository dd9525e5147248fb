-- Conversion between util.stanza tables and minidom::Element (src/bridge/stanza.rs),
-- exercised through the test helpers exported by build/minimix.so.
-- Run: lua5.4 /usr/bin/busted spec/bridge_stanza_spec.lua

if not package.loaded["minimix"] then
	dofile("spec/helper.lua");
end

local st = require "util.stanza";
local xmppstream = require "util.xmppstream";
local minimix = require "minimix";

local NS_MUC_USER = "http://jabber.org/protocol/muc#user";
local XMLNS_XML = "http://www.w3.org/XML/1998/namespace";

-- Parse wire XML exactly as a c2s stream would (util.xmppstream, default ns jabber:client).
local function parse_wire(xml)
	local stanzas = {};
	local session = { notopen = true };
	local stream = xmppstream.new(session, {
		default_ns = "jabber:client";
		streamopened = function (s) s.notopen = nil; end;
		handlestanza = function (_, stanza) table.insert(stanzas, stanza); end;
		error = function (_, e, extra) error("xmppstream error: "..tostring(e).." "..tostring(extra)); end;
	});
	assert(stream:feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"));
	assert(stream:feed(xml));
	assert(#stanzas == 1, "expected exactly one stanza");
	return stanzas[1];
end

-- Plain nested tables (attribute tables copied), for assert.same on the exact in-memory shape.
local function plain(s)
	local attr = {};
	for k, v in pairs(s.attr) do attr[k] = v; end
	local children = {};
	for i = 1, #s do
		local c = s[i];
		children[i] = type(c) == "table" and plain(c) or c;
	end
	return { name = s.name, attr = attr, children = children };
end

-- Canonical string of a stanza: sorted attributes, quoted text. Only meaningful for
-- stanzas that came out of parse_wire (explicit namespaces, merged text runs).
local function canon(s)
	local keys = {};
	for k in pairs(s.attr) do keys[#keys + 1] = k; end
	table.sort(keys);
	local buf = { "<", s.name };
	for _, k in ipairs(keys) do
		buf[#buf + 1] = (" %q=%q"):format(k, s.attr[k]);
	end
	buf[#buf + 1] = ">";
	for i = 1, #s do
		local c = s[i];
		buf[#buf + 1] = type(c) == "table" and canon(c) or ("%q"):format(c);
	end
	buf[#buf + 1] = "</>";
	return table.concat(buf);
end

-- Same XML on the wire? Compare tostring() outputs after re-parsing (attribute order is
-- arbitrary, and xmlns may be explicit on one side and inherited on the other).
local function assert_same_xml(a, b)
	assert.equal(canon(parse_wire(tostring(a))), canon(parse_wire(tostring(b))));
end

-- tags must hold exactly the element children of the array part, as the same tables.
local function assert_consistent(s)
	local n = 0;
	for i = 1, #s do
		local c = s[i];
		if type(c) == "table" then
			n = n + 1;
			assert.is_true(rawequal(s.tags[n], c), "tags["..n.."] is not the same table as ["..i.."]");
			assert.is_true(st.is_stanza(c));
			assert.is_nil(rawget(c, "last_add"));
			assert_consistent(c);
		else
			assert.equal("string", type(c));
		end
	end
	assert.equal(n, #s.tags);
end

local function roundtrip(s)
	local r, err = minimix._roundtrip(s);
	assert.is_nil(err);
	assert.is_true(st.is_stanza(r));
	assert_consistent(r);
	return r;
end

-- A bare table with the stanza metatable, bypassing util.stanza's own validation.
local function raw_stanza(name, attr, ...)
	local s = setmetatable({ name = name, attr = attr or {}, tags = {} }, st.stanza_mt);
	for i = 1, select("#", ...) do
		local c = select(i, ...);
		s[i] = c;
		if type(c) == "table" then table.insert(s.tags, c); end
	end
	return s;
end

local function nested(depth)
	local root = st.stanza("a", { xmlns = "urn:deep" });
	local cur = root;
	for _ = 2, depth do
		local c = st.stanza("a");
		cur:add_direct_child(c);
		cur = c;
	end
	return root;
end

local function assert_rejected(s, pattern)
	local r, err = minimix._roundtrip(s);
	assert.is_nil(r);
	assert.equal("string", type(err));
	if pattern then assert.matches(pattern, err); end
	local x, err2 = minimix._to_xml(s);
	assert.is_nil(x);
	assert.equal(err, err2);
	return err;
end

describe("bridge.stanza", function ()
	describe("Lua -> Element -> Lua", function ()
		it("converts a builder stanza whose children have nil xmlns", function ()
			local s = st.message({ to = "room@muc.example", type = "groupchat", id = "m1" })
				:tag("body"):text("hi"):up()
				:tag("x", { xmlns = NS_MUC_USER })
					:tag("item", { affiliation = "member", role = "participant" }):up()
					:tag("status", { code = "110" }):up()
				:up();
			local r = roundtrip(s);
			assert_same_xml(s, r);
			assert.equal("hi", r:get_child_text("body"));
			assert.is_nil(r.tags[1].attr.xmlns); -- jabber:client child stays implicit
			local x = r:get_child("x", NS_MUC_USER);
			assert.is_not_nil(x);
			-- Unlike the builder stanza, descendants get an explicit xmlns (as from the parser).
			assert.is_nil(s:get_child("x", NS_MUC_USER):get_child("status", NS_MUC_USER));
			assert.equal("110", x:get_child("status", NS_MUC_USER).attr.code);
			assert.equal(NS_MUC_USER, x:get_child("item", NS_MUC_USER).attr.xmlns);
			assert.equal("member", x:get_child_with_attr("item", nil, "role", "participant").attr.affiliation);
			assert.equal("110", r:find("{"..NS_MUC_USER.."}x/status@code"));
		end);

		it("serializes st.message():tag('body'):text('hi') in jabber:client", function ()
			local s = st.message():tag("body"):text("hi");
			assert.equal("<message xmlns='jabber:client'><body>hi</body></message>", (minimix._to_xml(s)));
			local r = roundtrip(s);
			assert.equal("<message><body>hi</body></message>", tostring(r));
			assert.is_nil(r.attr.xmlns);
			assert.equal("hi", r:get_child_text("body"));
		end);

		it("lets children inherit the parent's namespace", function ()
			local s = st.iq({ type = "get", id = "1" }):tag("query", { xmlns = "jabber:iq:roster" }):tag("item", { jid = "a@b" });
			local xml = assert(minimix._to_xml(s));
			assert.equal("<iq xmlns='jabber:client' type='get' id='1'><query xmlns='jabber:iq:roster'><item jid='a@b'/></query></iq>",
				(xml:gsub(" id='1' type='get'", " type='get' id='1'")));
			local r = roundtrip(s);
			assert.equal("jabber:iq:roster", r.tags[1].tags[1].attr.xmlns);
			assert.is_not_nil(r:get_child("query", "jabber:iq:roster"):get_child("item", "jabber:iq:roster"));
		end);

		it("preserves a stanza parsed from the wire exactly", function ()
			local s = parse_wire([[<presence from='room@muc.example/nick' to='a@b/r' xml:lang='en'>]]
				..[[<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>]]
				..[[<status code='110'/><body xmlns='jabber:client'>in ns</body></x>]]
				..[[<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>]]
				..[[<status>away &amp; &lt;busy&gt; &apos;x&apos; &quot;y&quot;</status></presence>]]);
			local r = roundtrip(s);
			assert.same(plain(s), plain(r));
			assert_same_xml(s, r);
			-- A jabber:client element under a foreign one keeps its explicit xmlns, like the parser.
			assert.equal("jabber:client", r.tags[1].tags[3].attr.xmlns);
		end);

		it("keeps xml:lang as the xml:lang attribute", function ()
			local s = st.message({ ["xml:lang"] = "de" }):tag("body", { ["xml:lang"] = "fr" }):text("salut"):up();
			local xml = assert(minimix._to_xml(s));
			assert.matches("<message xmlns='jabber:client' xml:lang='de'>", xml, 1, true);
			assert.matches("<body xml:lang='fr'>", xml, 1, true);
			local r = roundtrip(s);
			assert.equal("de", r.attr["xml:lang"]);
			assert.equal("fr", r.tags[1].attr["xml:lang"]);
			assert_same_xml(s, r);
			-- The expanded "uri\1lang" spelling is accepted and normalized to xml:lang.
			local e = roundtrip(raw_stanza("message", { [XMLNS_XML.."\1lang"] = "it" }));
			assert.equal("it", e.attr["xml:lang"]);
			assert.is_nil(e.attr[XMLNS_XML.."\1lang"]);
		end);

		it("keeps namespaced attributes as 'uri\\1name'", function ()
			local s = st.message({ to = "a@b", ["urn:example:x\1flag"] = "yes" })
				:tag("body", { ["urn:example:y\1n"] = "1" }):text("t"):up();
			local r = roundtrip(s);
			assert.equal("yes", r.attr["urn:example:x\1flag"]);
			assert.equal("1", r.tags[1].attr["urn:example:y\1n"]);
			assert_same_xml(s, r);
			-- The parser produces the same key from our serialization.
			local p = parse_wire(assert(minimix._to_xml(s)));
			assert.equal("yes", p.attr["urn:example:x\1flag"]);
		end);

		it("accepts the legacy 'uri|name' attribute key", function ()
			local r = roundtrip(raw_stanza("message", { ["urn:example:x|flag"] = "yes" }));
			assert.equal("yes", r.attr["urn:example:x\1flag"]);
			assert.is_nil(r.attr["urn:example:x|flag"]);
		end);

		it("keeps mixed text and children in order", function ()
			local s = st.stanza("p", { xmlns = "urn:mixed" })
				:text("a"):tag("b"):text("c"):up():text("d"):text("e"):tag("i"):up():text("f");
			local r = roundtrip(s);
			assert.equal("a", r[1]);
			assert.equal("b", r[2].name);
			assert.equal("c", r[2][1]);
			assert.equal("de", r[3]); -- adjacent text runs are merged, as by the parser
			assert.equal("i", r[4].name);
			assert.equal("f", r[5]);
			assert.equal(5, #r);
			assert.equal(2, #r.tags);
			assert.equal(tostring(s), tostring(r):gsub("<b xmlns='urn:mixed'>", "<b>"):gsub("<i xmlns='urn:mixed'/>", "<i/>"));
			assert_same_xml(s, r);
		end);

		it("preserves UTF-8 text and attribute values", function ()
			-- Decimal escapes for U+10FFFF (and U+FFFE/U+FFFF below): Lua 5.2 has no \u{...}.
			local text = "héllo 😀 中文テキスト عربي \244\143\191\191 tab\tnl\ncr\r";
			local s = st.message({ to = "ü@例え.jp/😀" }):tag("body"):text(text):up();
			local r = roundtrip(s);
			assert.equal(text, r:get_child_text("body"));
			assert.equal("ü@例え.jp/😀", r.attr.to);
			local back = assert(minimix._from_xml(assert(minimix._to_xml(s))));
			assert.equal(text, back:get_child_text("body"));
		end);

		it("gives results that st.clone and st.preserialize/deserialize handle", function ()
			local s = st.message({ type = "chat" }):tag("body"):text("x"):up():tag("x", { xmlns = "urn:x" }):tag("y"):text("z");
			local r = roundtrip(s);
			local c = st.clone(r);
			assert.is_true(st.is_stanza(c));
			assert.equal(tostring(r), tostring(c));
			assert_consistent(c);
			local d = st.deserialize(st.preserialize(r));
			assert.equal(tostring(r), tostring(d));
			-- A converted stanza can be extended with the builder API.
			r:tag("extra", { xmlns = "urn:e" }):up():text_tag("subject", "s");
			assert.equal("s", r:get_child_text("subject"));
		end);

		it("ignores the builder cursor (last_add) and never creates one", function ()
			local s = st.message({ to = "a@b" }):tag("body"):text("hi"); -- cursor inside <body>
			assert.is_not_nil(s.last_add);
			local r = roundtrip(s);
			assert.is_nil(rawget(r, "last_add"));
			local e = st.error_reply(st.message({ from = "a@b", to = "c@d", id = "1" }), "cancel", "item-not-found", "gone");
			local re = roundtrip(e);
			assert_same_xml(e, re);
			assert.equal("item-not-found", select(2, re:get_error()));
			assert.equal("gone", select(3, re:get_error()));
		end);

		it("ignores the namespaces field", function ()
			local s = st.stanza("x", { xmlns = "urn:x" }, { p = "urn:p" }):tag("y"):up();
			local r = roundtrip(s);
			assert.is_nil(rawget(r, "namespaces"));
			assert_same_xml(s, r);
		end);

		it("accepts exactly 64 levels", function ()
			local r = roundtrip(nested(64));
			local depth, cur = 1, r;
			while cur.tags[1] do depth, cur = depth + 1, cur.tags[1]; end
			assert.equal(64, depth);
			assert.equal("urn:deep", cur.attr.xmlns);
		end);
	end);

	describe("XML -> Lua", function ()
		it("mirrors util.xmppstream's namespace handling", function ()
			local wire = [[<message to='a@b' type='chat' xml:lang='en'><body>hi</body>]]
				..[[<x xmlns='urn:x' xmlns:p='urn:p' p:attr='v'><y><z xmlns='jabber:client'/></y></x>]]
				..[[<active xmlns='http://jabber.org/protocol/chatstates'/>text</message>]];
			local expected = parse_wire(wire);
			local got = assert(minimix._from_xml("<message xmlns='jabber:client' to='a@b' type='chat' xml:lang='en'>"
				..wire:sub(#"<message to='a@b' type='chat' xml:lang='en'>" + 1)));
			assert.same(plain(expected), plain(got));
			assert_consistent(got);
			assert.is_true(st.is_stanza(got));
			assert.is_not_nil(got:get_child("x", "urn:x"):get_child("y", "urn:x"));
			assert.equal("v", got.tags[2].attr["urn:p\1attr"]);
		end);

		it("sets xmlns on a top-level stanza outside jabber:client", function ()
			local r = assert(minimix._from_xml("<r xmlns='urn:xmpp:sm:3'><x/></r>"));
			assert.equal("urn:xmpp:sm:3", r.attr.xmlns);
			assert.equal("urn:xmpp:sm:3", r.tags[1].attr.xmlns);
		end);

		it("keeps an explicitly empty namespace", function ()
			local s = parse_wire("<message><x xmlns=''><y/></x></message>");
			assert.equal("", s.tags[1].attr.xmlns);
			local r = roundtrip(s);
			assert.same(plain(s), plain(r));
			assert.matches("<x xmlns=''><y/></x>", assert(minimix._to_xml(s)), 1, true);
		end);

		it("returns nil and an error for bad XML", function ()
			for _, bad in ipairs({ "<message xmlns='jabber:client'>", "not xml", "<a/>", "<a xmlns='x'>\1</a>", "" }) do
				local r, err = minimix._from_xml(bad);
				assert.is_nil(r);
				assert.equal("string", type(err));
			end
			local r, err = minimix._from_xml(42);
			assert.is_nil(r);
			assert.equal("string", type(err));
		end);

		it("rejects XML nested deeper than 64 levels", function ()
			local ok = assert(minimix._from_xml(("<a xmlns='urn:d'>"):rep(64)..("</a>"):rep(64)));
			assert.is_true(st.is_stanza(ok));
			local r, err = minimix._from_xml(("<a xmlns='urn:d'>"):rep(65)..("</a>"):rep(65));
			assert.is_nil(r);
			assert.matches("deeper than 64", err);
		end);
	end);

	describe("validation", function ()
		it("rejects invalid UTF-8", function ()
			assert_rejected(raw_stanza("message", {}, "caf\xe9"), "invalid text");
			assert_rejected(raw_stanza("message", { to = "\xff" }), "invalid attribute \"to\"");
			assert_rejected(raw_stanza("message", { ["t\xffo"] = "x" }), "invalid attribute");
			assert_rejected(raw_stanza("b\xc3dy"), "invalid element name");
			assert_rejected(raw_stanza("message", { xmlns = "urn:\xc0" }), "invalid attribute \"xmlns\"");
		end);

		it("rejects characters XML 1.0 forbids", function ()
			for _, c in ipairs({ "\0", "\1", "\8", "\11", "\12", "\14", "\20", "\31", "\239\191\190", "\239\191\191" }) do
				assert_rejected(raw_stanza("message", {}, "a"..c.."b"), "invalid text");
				assert_rejected(raw_stanza("message", { id = c }), "invalid attribute");
			end
			-- util.stanza itself lets 0x14-0x1F through; we do not.
			assert.has_no.errors(function () st.message():text("\20") end);
			assert_rejected(st.message():text("\20"), "invalid text");
		end);

		it("rejects names that are not NCNames", function ()
			for _, name in ipairs({ "", "a b", "1x", "a:b", "a<b", "-x", "a\1" }) do
				assert_rejected(raw_stanza(name), "invalid element name");
				assert_rejected(raw_stanza("message", { [name] = "v" }), "invalid attribute");
			end
			assert_rejected(st.message():tag("stream:features"), "invalid element name");
			assert_rejected(raw_stanza("message", { ["xmlns:p"] = "urn:p" }), "invalid attribute");
			assert_rejected(raw_stanza("message", { ["\1local"] = "v" }), "invalid attribute");
			assert_rejected(raw_stanza("message", { ["urn:x\1"] = "v" }), "invalid attribute");
			assert_rejected(raw_stanza("message", { ["http://www.w3.org/2000/xmlns/\1p"] = "urn:p" }), "invalid attribute");
		end);

		it("rejects the reserved xml and xmlns namespaces as element namespaces", function ()
			assert_rejected(raw_stanza("x", { xmlns = "http://www.w3.org/2000/xmlns/" }), "xmlns");
			assert_rejected(raw_stanza("x", { xmlns = XMLNS_XML }), "xmlns");
		end);

		it("rejects non-string attribute keys and values", function ()
			assert_rejected(raw_stanza("message", { id = 42 }), "invalid attribute \"id\"");
			assert_rejected(raw_stanza("message", { [1] = "x" }), "non%-string key");
			assert_rejected(raw_stanza("message", { id = true }), "invalid attribute");
		end);

		it("rejects children that are neither stanzas nor strings", function ()
			assert_rejected(raw_stanza("message", {}, 42), "not a stanza");
			assert_rejected(raw_stanza("message", {}, true), "not a stanza");
			assert_rejected(raw_stanza("message", {}, function () end), "not a stanza");
			assert_rejected(raw_stanza("message", {}, raw_stanza("body", {}, {})), "not a stanza");
		end);

		it("rejects tables that are not stanzas", function ()
			assert_rejected({}, "not a stanza");
			assert_rejected({ name = "message" }, "attr");
			assert_rejected({ name = 1, attr = {} }, "name");
			assert_rejected({ name = "message", attr = "x" }, "attr");
			local r, err = minimix._roundtrip("not a table");
			assert.is_nil(r);
			assert.matches("not a stanza", err);
			r, err = minimix._to_xml(nil);
			assert.is_nil(r);
			assert.matches("not a stanza", err);
		end);

		it("rejects nesting deeper than 64 levels", function ()
			assert_rejected(nested(65), "deeper than 64");
			assert_rejected(nested(1000), "deeper than 64");
		end);

		it("survives cyclic tables", function ()
			local s = raw_stanza("message");
			s[1] = s;
			s.tags[1] = s;
			assert_rejected(s, "deeper than 64");
		end);

		it("quotes long or binary names safely in errors", function ()
			local err = assert_rejected(raw_stanza(("x"):rep(1000).." "));
			assert.is_true(#err < 200);
		end);
	end);

	describe("attr_of", function ()
		it("reads one attribute without converting", function ()
			local s = st.presence({ to = "room@muc/nick", type = "unavailable" });
			assert.equal("room@muc/nick", (minimix._attr(s, "to")));
			local v, err = minimix._attr(s, "from");
			assert.is_nil(v);
			assert.is_nil(err);
		end);

		it("reports broken stanzas and values", function ()
			local v, err = minimix._attr({}, "to");
			assert.is_nil(v);
			assert.matches("not a stanza", err);
			v, err = minimix._attr(raw_stanza("x", { to = 5 }), "to");
			assert.is_nil(v);
			assert.matches("invalid attribute", err);
			v, err = minimix._attr(raw_stanza("x", { to = "\xff" }), "to");
			assert.is_nil(v);
			assert.matches("invalid attribute", err);
		end);
	end);

	describe("init", function ()
		it("refuses a non-table", function ()
			local ok, err = minimix.init(42);
			assert.is_nil(ok);
			assert.equal("string", type(err));
			-- the registered metatable is still in place
			assert.is_true(st.is_stanza(roundtrip(st.message())));
		end);
	end);
end);
