-- Micro benchmarks of the Lua ⇄ Rust bridge, run inside Lua as Prosody would (issue 7).
--
--   lua5.4 bench/lua/bridge_bench.lua [--lib build/lua5.4/minimix.so] [--quick] [--json FILE]
--
-- Loads the native library with package.loadlib (like the shim) and Prosody's util.stanza from
-- /usr/lib/prosody, builds stanzas the way Prosody's parser hands them to hooks, and times each
-- operation with os.clock() (process CPU time) over many iterations: every figure is the median
-- of several repetitions, in microseconds per operation.
--
-- What is measured (names are stable; bench/report.py reads the JSON):
--   lua_call            an empty Lua function call with the same arguments (the floor)
--   native_attr         native._attr(stanza, "from"): the cheapest crossing into Rust
--   tracks              h:tracks(account, room): crossing + two JID parses + lookup
--   room_message_untracked   h:room_message for a groupchat from a room the account is not in
--                            (the fast path every message to a bare JID takes)
--   client_message_untracked h:client_message for a chat message to a contact (the fast path
--                            every message a session sends takes)
--   room_message_tracked     h:room_message for a groupchat from a tracked room, S=3 joined
--                            sessions (conversion, history, 3 forward actions back)
--   apply_forward_x3         what the shim then does: 3 × st.clone + re-address (no send)
--   room_presence_tracked    an occupant's presence update in a tracked room of 100
--   late_join_leave_100      a 4th session joins a room of 100 (replay: 100 presences, self,
--                            20 history, subject → Lua tables) and leaves again
--   to_xml_*, roundtrip_*, from_xml_*  the stanza bridge on a groupchat and a presence
--   st_clone_*, tostring_*   Prosody's own st.clone and serialization, for scale
--
-- Then a subset again, suffixed "@heapNMB", with Prosody's GC settings (incremental, pause
-- 105 %, step multiplier 500: util/startup.lua) and N MB (--ballast, default 12, 0 to skip) of
-- live tables, like the medium e2e server's Lua heap: with a 105 % pause every byte of garbage
-- costs marking work proportional to the live heap, which a tiny benchmark heap hides.

package.path = "/usr/lib/prosody/?.lua;" .. package.path;
package.cpath = "/usr/lib/prosody/?.so;" .. package.cpath;

local lib_path, quick, json_path, ballast_mb = "build/lua5.4/minimix.so", false, nil, 12;
do
	local i = 1;
	while i <= #arg do
		local a = arg[i];
		if a == "--lib" then lib_path = arg[i + 1]; i = i + 1;
		elseif a == "--quick" then quick = true;
		elseif a == "--json" then json_path = arg[i + 1]; i = i + 1;
		elseif a == "--ballast" then ballast_mb = tonumber(arg[i + 1]); i = i + 1;
		else error("unknown argument " .. a); end
		i = i + 1;
	end
end

local st = require "util.stanza";
local open = assert(package.loadlib(lib_path, "luaopen_minimix"));
local native = open();
assert(native.lua_version == _VERSION, "library built for " .. tostring(native.lua_version));
native.init(st.stanza_mt, function () end);
native.set_log_level("info"); -- the module's default

local HOST, MUC = "a.localhost", "muc.localhost";
local ROOM = "bench@" .. MUC;
local ACCOUNT = "u1@" .. HOST;
local NS_MUC, NS_MUC_USER = "http://jabber.org/protocol/muc", "http://jabber.org/protocol/muc#user";
local BODY = "The quick brown fox jumps over the lazy dog; a typical chat line of 60-ish chars.";

local h = assert(native.new(HOST, {
	history_length = 20; history_max_messages = 100; history_max_bytes = 256 * 1024;
	max_rooms = 256; max_occupants = 2000; max_pending_iqs = 256;
	iq_timeout = 120; join_timeout = 60; leave_after = math.huge;
	away_show = "xa"; away_status = "";
	-- Out of the way of repeated joins: no self-pings, no join rate limit.
	ping_interval = math.huge; max_joins_per_minute = 10000000;
}));

local function caps(s)
	return s:tag("c", { xmlns = "http://jabber.org/protocol/caps", hash = "sha-1",
		node = "https://example.org/client", ver = "q07IKJEyjvHSyhy//CH0CxmKi8w=" }):up();
end

local function join(nick) return caps(st.presence({ to = ROOM .. "/" .. nick }):tag("x", { xmlns = NS_MUC }):up()); end

local function occupant(nick, show)
	local p = st.presence({ from = ROOM .. "/" .. nick, to = ACCOUNT });
	if show then p:text_tag("show", show); end
	return caps(p):tag("x", { xmlns = NS_MUC_USER })
		:tag("item", { affiliation = "none", role = "participant" }):up():up();
end

local function groupchat(from_room, nick, i)
	local id = ("6f1c2a9e-%08d"):format(i);
	return st.message({ type = "groupchat", id = id, from = from_room .. "/" .. nick, to = ACCOUNT })
		:text_tag("body", BODY .. " #" .. i)
		:tag("origin-id", { xmlns = "urn:xmpp:sid:0", id = id }):up()
		:tag("active", { xmlns = "http://jabber.org/protocol/chatstates" }):up();
end

local now = 1800000000;
local function tick() now = now + 0.001; return now; end

-- One account, three joined sessions, a room of 100 occupants with a subject and 20 messages.
do
	local handled, actions = h:client_presence(ACCOUNT .. "/s1", join("u1"), tick());
	assert(handled and actions and actions[1][1] == "route", "first join is routed");
	for i = 1, 100 do h:room_presence(ACCOUNT, occupant(("occupant%04d"):format(i)), tick()); end
	h:room_presence(ACCOUNT, st.presence({ from = ROOM .. "/u1", to = ACCOUNT })
		:tag("x", { xmlns = NS_MUC_USER }):tag("item", { affiliation = "none", role = "participant" }):up()
		:tag("status", { code = "110" }):up():up(), tick());
	h:room_message(ACCOUNT, st.message({ type = "groupchat", from = ROOM, to = ACCOUNT }):text_tag("subject", "Benchmarks"), tick());
	for i = 1, 20 do h:room_message(ACCOUNT, groupchat(ROOM, "occupant0001", i), tick()); end
	for s = 2, 3 do
		local ok, acts = h:client_presence(ACCOUNT .. "/s" .. s, join("u1"), tick());
		assert(ok and acts and #acts == 100 + 1 + 20 + 1, "late join replays 122 stanzas, got " .. tostring(acts and #acts));
	end
	local rooms = h:rooms(ACCOUNT);
	assert(#rooms == 1 and #rooms[1].sessions == 3 and rooms[1].occupants == 100, "fixture");
end

-- ------------------------------------------------------------------------------- timing

local REPS = quick and 3 or 7;
local TARGET = quick and 0.05 or 0.2; -- seconds of CPU per repetition
local results, order = {}, {};

local function median(t)
	table.sort(t);
	local n = #t;
	if n % 2 == 1 then return t[(n + 1) // 2]; end
	return (t[n // 2] + t[n // 2 + 1]) / 2;
end

local function bench(name, f, note)
	-- Calibrate: iterations for about TARGET seconds.
	local n = 16;
	while true do
		collectgarbage("collect");
		local t0 = os.clock();
		for _ = 1, n do f(); end
		local dt = os.clock() - t0;
		if dt >= TARGET / 4 or n >= 1 << 24 then
			n = math.max(1, math.floor(n * TARGET / math.max(dt, 1e-9)));
			break;
		end
		n = n * 4;
	end
	local per = {};
	for r = 1, REPS do
		collectgarbage("collect");
		local t0 = os.clock();
		for _ = 1, n do f(); end
		per[r] = (os.clock() - t0) / n * 1e6;
	end
	local sorted = { table.unpack(per) };
	local med = median(sorted);
	results[name] = { us = med, min = sorted[1], max = sorted[#sorted], iterations = n, reps = REPS, note = note };
	order[#order + 1] = name;
	io.write(("%-28s %10.3f µs/op   (min %.3f, max %.3f; %d × %d)%s\n"):format(
		name, med, sorted[1], sorted[#sorted], REPS, n, note and ("  " .. note) or ""));
	io.flush();
end

-- ------------------------------------------------------------------------------- stanzas

local msg_tracked = groupchat(ROOM, "occupant0002", 42);
local msg_untracked = groupchat("elsewhere@" .. MUC, "someone", 42);
local chat_out = st.message({ type = "chat", id = "c1", to = "bob@" .. HOST }):text_tag("body", BODY)
	:tag("active", { xmlns = "http://jabber.org/protocol/chatstates" }):up();
local pres = occupant("occupant0050");
local pres_away = occupant("occupant0050", "away");
-- Serialized with the stream's namespace, as the parser would have seen them.
local function as_xml(s) local c = st.clone(s); c.attr.xmlns = "jabber:client"; return tostring(c); end
local msg_xml, pres_xml = as_xml(msg_tracked), as_xml(pres);

-- Sanity of the paths measured below.
do
	assert(h:room_message(ACCOUNT, msg_untracked, now) == false, "untracked room passes");
	assert(h:client_message(ACCOUNT .. "/s1", chat_out, now) == false, "chat to a contact passes");
	local handled, actions = h:room_message(ACCOUNT, msg_tracked, now);
	assert(handled == true and #actions == 3 and actions[1][1] == "forward", "groupchat forks to 3 sessions");
	local handled2, actions2 = h:room_presence(ACCOUNT, pres_away, now);
	assert(handled2 == true and #actions2 == 3, "occupant presence forks to 3 sessions");
	assert(native._to_xml(msg_tracked), "to_xml");
	assert(native._from_xml(msg_xml), "from_xml groupchat");
	assert(native._from_xml(pres_xml), "from_xml presence");
	assert(native._roundtrip(pres), "roundtrip");
end

-- ------------------------------------------------------------------------------- benchmarks

local function lua_noop(_, _, _, _) return false; end
bench("lua_call", function () return lua_noop(h, ACCOUNT, msg_untracked, now); end);
local attr = native._attr;
bench("native_attr", function () return attr(msg_untracked, "from"); end);
bench("tracks", function () return h:tracks(ACCOUNT, ROOM); end);
bench("room_message_untracked", function () return h:room_message(ACCOUNT, msg_untracked, now); end,
	"fast path: not converted");
bench("client_message_untracked", function () return h:client_message(ACCOUNT .. "/s1", chat_out, now); end,
	"fast path: not converted");
bench("room_message_tracked", function () return h:room_message(ACCOUNT, msg_tracked, now); end,
	"S=3: converted, history, 3 forwards");

local clone = st.clone;
bench("apply_forward_x3", function ()
	for _ = 1, 3 do local c = clone(msg_tracked); c.attr.to = ACCOUNT .. "/s1"; end
end, "the shim's forward of 3 copies, without session.send");

local flip = false;
bench("room_presence_tracked", function ()
	flip = not flip;
	return h:room_presence(ACCOUNT, flip and pres_away or pres, now);
end, "occupant update, room of 100, S=3");

local leave = st.presence({ to = ROOM .. "/u1", type = "unavailable" });
local late_join = join("u1");
bench("late_join_leave_100", function ()
	local ok, acts = h:client_presence(ACCOUNT .. "/s4", late_join, now);
	assert(ok and #acts == 122);
	h:client_presence(ACCOUNT .. "/s4", leave, now);
end, "replay of 122 stanzas to Lua + leave");

local to_xml, roundtrip, from_xml = native._to_xml, native._roundtrip, native._from_xml;
bench("to_xml_groupchat", function () return to_xml(msg_tracked); end, "table→Element + serialize");
bench("roundtrip_groupchat", function () return roundtrip(msg_tracked); end, "table→Element→table");
bench("from_xml_groupchat", function () return from_xml(msg_xml); end, "parse + Element→table");
bench("to_xml_presence", function () return to_xml(pres); end);
bench("roundtrip_presence", function () return roundtrip(pres); end);
bench("from_xml_presence", function () return from_xml(pres_xml); end);
bench("st_clone_groupchat", function () return clone(msg_tracked); end);
bench("tostring_groupchat", function () return tostring(msg_tracked); end);
bench("st_clone_presence", function () return clone(pres); end);

-- ------------------------------------------------------------------------------- under a big heap

if ballast_mb and ballast_mb > 0 then
	local ballast = {};
	local i = 0;
	while collectgarbage("count") < ballast_mb * 1024 do
		for _ = 1, 1000 do
			i = i + 1;
			ballast[i] = { name = "item", attr = { id = tostring(i) }, tostring(i * 7) };
		end
	end
	collectgarbage("incremental", 105, 500);
	collectgarbage("collect");
	local suffix = ("@heap%dMB"):format(ballast_mb);
	local note = ("Prosody GC settings, %d MB live Lua heap"):format(ballast_mb);
	bench("room_message_untracked" .. suffix, function () return h:room_message(ACCOUNT, msg_untracked, now); end, note);
	bench("room_message_tracked" .. suffix, function () return h:room_message(ACCOUNT, msg_tracked, now); end, note);
	bench("apply_forward_x3" .. suffix, function ()
		for _ = 1, 3 do local c = clone(msg_tracked); c.attr.to = ACCOUNT .. "/s1"; end
	end, note);
	bench("apply_forward_x3_noclone" .. suffix, function ()
		for _ = 1, 3 do local saved = msg_tracked.attr.to; msg_tracked.attr.to = ACCOUNT .. "/s1"; msg_tracked.attr.to = saved; end
	end, note .. "; re-address in place (as mod_muc does)");
	bench("late_join_leave_100" .. suffix, function ()
		local ok, acts = h:client_presence(ACCOUNT .. "/s4", late_join, now);
		assert(ok and #acts == 122);
		h:client_presence(ACCOUNT .. "/s4", leave, now);
	end, note);
	bench("st_clone_groupchat" .. suffix, function () return clone(msg_tracked); end, note);
	bench("tostring_groupchat" .. suffix, function () return tostring(msg_tracked); end, note);
	ballast = nil;
end

-- ------------------------------------------------------------------------------- output

if json_path then
	local parts = {};
	for _, name in ipairs(order) do
		local r = results[name];
		parts[#parts + 1] = ('  %q: {"us": %.4f, "min": %.4f, "max": %.4f, "iterations": %d, "reps": %d}'):format(
			name, r.us, r.min, r.max, r.iterations, r.reps);
	end
	local f = assert(io.open(json_path, "w"));
	f:write('{\n  "lua": ', ("%q"):format(_VERSION), ',\n  "library": ', ("%q"):format(lib_path),
		',\n  "quick": ', tostring(quick), ',\n  "results": {\n', table.concat(parts, ",\n"), "\n  }\n}\n");
	f:close();
end
