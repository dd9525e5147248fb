-- The shim under a fake module API (Prosody's "mock moduleapi" pattern from muc_util_spec):
-- hooks, priorities, the join → send → fork loop, refusals, and state across reload.
local st = require "util.stanza";
local envload = require "util.envload";

local NS_MUC = "http://jabber.org/protocol/muc";
local NS_MUC_USER = "http://jabber.org/protocol/muc#user";

-- Loads lua/mod_minimix.lua with a fake `module`; returns the fake and its environment.
local function load_shim(opts)
	opts = opts or {};
	local fake = {
		host = "a.localhost";
		hooks = {};
		sent = {};
		logs = {};
		timers = {};
		options = opts.options or {};
	};
	function fake:get_host_type() return opts.host_type or "local"; end
	function fake:get_directory() return opts.directory or os.getenv("MINIMIX_BUILD_DIR") or "build/lua5.4"; end
	function fake:hook(name, fn, prio) self.hooks[name] = { fn = fn, prio = prio }; end
	function fake:send(stanza) table.insert(self.sent, stanza); end
	function fake:log(level, fmt, ...) table.insert(self.logs, { level, fmt:format(...) }); end
	function fake:add_timer(delay, fn) table.insert(self.timers, { delay, fn }); end
	function fake:get_option(name, default) local v = self.options[name]; if v == nil then return default; end return v; end
	local stored = opts.store or {};
	fake.stored = stored;
	fake.global_hooks = {};
	function fake:open_store()
		return {
			get = function (_, user) return stored[user]; end;
			set = function (_, user, value) stored[user] = value; return true; end;
			users = function () return pairs(stored); end;
		};
	end
	function fake:hook_global(name, fn, prio)
		self.global_hooks[name] = self.global_hooks[name] or {};
		table.insert(self.global_hooks[name], { fn = fn, prio = prio });
	end
	-- PEP with one service per user whose events are real util.events emitters.
	fake.published = {};
	fake.pep_services = {};
	local pep = {};
	function pep.get_pep_service(username)
		local service = fake.pep_services[username];
		if not service then
			service = { events = require "util.events".new(), items = {} };
			function service:publish(node, actor, id, item) table.insert(fake.published, { node = node, id = id, item = item }); return true; end
			function service:get_items() return true, {}; end
			fake.pep_services[username] = service;
		end
		return service;
	end
	function fake:depends(name) assert(name == "pep"); return pep; end
	function fake:handle_items(kind, added, removed) self.item_handlers = { added = added, removed = removed }; end
	function fake:hook_object_event(emitter, name, fn) emitter.add_handler(name, fn); end
	function fake:unhook_object_event(emitter, name, fn) emitter.remove_handler(name, fn); end
	fake.shared_tables = {};
	function fake:shared(name)
		fake.shared_tables[name] = fake.shared_tables[name] or {};
		return fake.shared_tables[name];
	end
	fake.wrappers = {};
	function fake:wrap_event(name, fn) self.wrappers[name] = fn; end
	function fake:measure() return function () end; end


	-- Typed getters as in Prosody 0.12's moduleapi: a value they do not understand is nil.
	function fake:get_option_scalar(name, default)
		local v = self:get_option(name, default);
		if type(v) == "table" then v = v[1]; end
		return v;
	end
	function fake:get_option_number(name, default) return tonumber(self:get_option_scalar(name, default)); end
	function fake:get_option_string(name, default)
		local v = self:get_option_scalar(name, default);
		if v == nil then return nil; end
		return tostring(v);
	end
	if opts.period then
		-- Prosody 13's get_option_period, given the configured string.
		function fake:get_option_period(name) return opts.period(self.options[name]); end
	end
	function fake:get_option_boolean(name, default)
		local v = self:get_option_scalar(name, default);
		if v == true or v == "true" or v == 1 then return true; end
		if v == false or v == "false" or v == 0 then return false; end
		return nil;
	end
	local env = setmetatable({
		module = fake;
		prosody = {
			full_sessions = opts.full_sessions or {};
			bare_sessions = {};
			hosts = { ["a.localhost"] = { modules = {} } };
		};
	}, { __index = _G });
	local chunk = assert(envload.envloadfile("lua/mod_minimix.lua", env));
	chunk();
	return fake, env;
end

-- A c2s session that records what it is sent.
local function session(full_jid)
	local s = { type = "c2s", full_jid = full_jid, received = {} };
	-- What a session keeps is a copy (serialized, or smacks' queued clone), as in Prosody.
	s.send = function (stanza) table.insert(s.received, st.clone(stanza)); return true; end
	return s;
end

local function fire(fake, name, event)
	return fake.hooks[name].fn(event);
end

local function fire_global(fake, name, event)
	for _, h in ipairs(fake.global_hooks[name] or {}) do h.fn(event); end
end

-- The shim lists a host's users at start; outside Prosody there are none.
package.loaded["core.usermanager"] = { users = function () return function () end; end };

describe("mod_minimix shim", function ()
	it("refuses to load on a component", function ()
		assert.has_error(function () load_shim({ host_type = "component" }); end);
	end);

	it("refuses a library built for another Lua, naming both and how to rebuild", function ()
		-- A build for another Lua fails to link with a bare "undefined symbol": the shim finds
		-- the build's marker in the file instead. This stand-in has the marker but no ELF.
		local running = type(jit) == "table" and "LuaJIT" or _VERSION;
		local other = running == "Lua 5.1" and "Lua 5.4" or "Lua 5.1";
		local dir = os.tmpname();
		os.remove(dir);
		assert(os.execute("mkdir " .. dir));
		local file = assert(io.open(dir .. "/minimix.so", "wb"));
		file:write(("\127ELF" .. ("\0"):rep(70000) .. "minimix-built-for=%s;" .. ("\0"):rep(100)):format(other));
		file:close();
		local ok, err = pcall(load_shim, { directory = dir });
		os.remove(dir .. "/minimix.so");
		os.remove(dir);
		assert.is_false(ok);
		assert.matches(dir .. "/minimix.so was built for " .. other .. " but this Prosody runs on " .. running, err, 1, true);
		local make_arg = running == "LuaJIT" and "jit" or running:match("%d.%d");
		assert.matches("make LUA_VERSION=" .. make_arg .. " install", err, 1, true);
	end);

	it("refuses invalid options with a clear error", function ()
		local ok, err = pcall(load_shim, { options = { minimix_max_rooms = 0 } });
		assert.is_false(ok);
		assert.matches("minimix_max_rooms", err);
	end);

	describe("option validation", function ()
		-- Each bad value refuses the load with the option, the value and what is accepted.
		local refused = {
			{ "minimix_max_rooms", 0, "minimix_max_rooms = 0 is out of range: expected a whole number from 1 to 100000 (default 256)" },
			{ "minimix_max_rooms", 2.5, "minimix_max_rooms = 2.5 is out of range: expected a whole number from 1 to 100000 (default 256)" },
			{ "minimix_max_rooms", "lots", "minimix_max_rooms = \"lots\" is not valid: expected a number" },
			{ "minimix_max_joins_per_minute", 1e12, "minimix_max_joins_per_minute = 1000000000000 is out of range: expected a whole number from 1 to 10000000 (default 60)" },
			{ "minimix_history_max_bytes", -1, "minimix_history_max_bytes = -1 is out of range: expected a whole number from 0 to 67108864 (default 262144)" },
			{ "minimix_history_from_archive", "maybe", "minimix_history_from_archive = \"maybe\" is not valid: expected true or false" },
			{ "minimix_autojoin_bookmarks", "yes", "minimix_autojoin_bookmarks = \"yes\" is not valid: expected true or false" },
			{ "minimix_away_show", "busy", "minimix_away_show = \"busy\" is not valid: expected one of \"away\", \"xa\", \"dnd\", \"chat\", \"none\"" },
			{ "minimix_away_status", 42, "minimix_away_status = 42 is not valid: expected a string" },
			{ "minimix_log_level", "verbose", "minimix_log_level = \"verbose\" is not valid: expected one of \"debug\", \"info\", \"warn\", \"error\"" },
			{ "minimix_iq_timeout", 0, "minimix_iq_timeout = 0 is out of range: expected a number of seconds from 1 to 86400 (default 120)" },
			{ "minimix_iq_timeout", "never", "minimix_iq_timeout = \"never\" is not valid: expected a number of seconds (it cannot be \"never\")" },
			{ "minimix_ping_interval", -5, "minimix_ping_interval = -5 is out of range: expected a number of seconds from 1 to 604800, or \"never\" (default 900)" },
			{ "minimix_leave_after", "soon", "minimix_leave_after = \"soon\" is not valid: expected a number of seconds or \"never\"" },
		};
		for _, case in ipairs(refused) do
			local name, value, message = case[1], case[2], case[3];
			it(("refuses %s = %s with a message naming both and the accepted values"):format(name, tostring(value)), function ()
				local ok, err = pcall(load_shim, { options = { [name] = value } });
				assert.is_false(ok);
				assert.equal("mod_minimix: " .. message, err);
			end);
		end

		it("takes a period such as \"15 minutes\" where the API has get_option_period (Prosody 13)", function ()
			local asked = {};
			local ok = pcall(load_shim, { options = { minimix_ping_interval = "15 minutes" } });
			assert.is_false(ok); -- 0.12's API: a string is not a number of seconds
			local fake = load_shim({
				options = { minimix_ping_interval = "15 minutes", minimix_join_timeout = "2 minutes" },
				period = function (name) asked[name] = true; return ({ ["15 minutes"] = 900, ["2 minutes"] = 120 })[name]; end,
			});
			assert.is_not_nil(fake.hooks["pre-presence/full"]);
			assert.same({ ["15 minutes"] = true, ["2 minutes"] = true }, asked);
			local refused, err = pcall(load_shim, {
				options = { minimix_ping_interval = "soonish" }, period = function () return nil; end,
			});
			assert.is_false(refused);
			assert.equal('mod_minimix: minimix_ping_interval = "soonish" is not valid: expected a number of seconds or "never" or a period such as "15 minutes"', err);
		end);

		it("accepts values Prosody's typed getters convert, and \"never\" where allowed", function ()
			local fake = load_shim({ options = {
				minimix_max_rooms = "30"; minimix_bookmark_joins = "true"; minimix_leave_after = "never";
				minimix_ping_interval = false; minimix_away_show = "none"; minimix_iq_timeout = 0.5 + 0.5;
			} });
			assert.is_not_nil(fake.hooks["pre-presence/full"]);
		end);
	end);

	it("registers every hook with an explicit non-zero priority", function ()
		local fake = load_shim();
		local expected = {
			["pre-presence/full"] = 10, ["pre-message/bare"] = 10, ["pre-message/full"] = 10,
			["pre-iq/bare"] = 10, ["pre-iq/full"] = 10, ["presence/bare"] = 5,
			["message/bare"] = -0.25, ["iq/bare"] = 5, ["resource-unbind"] = 5,
		};
		for name, prio in pairs(expected) do
			assert.is_not_nil(fake.hooks[name], name);
			assert.equal(prio, fake.hooks[name].prio, name);
		end
	end);

	it("sends a session's join from the account and forks the room's answer to that session", function ()
		local phone = session("alice@a.localhost/phone");
		local fake = load_shim({ full_sessions = { ["alice@a.localhost/phone"] = phone } });
		local join = st.presence({ to = "room@muc.localhost/Alice", from = phone.full_jid }):tag("x", { xmlns = NS_MUC }):up();
		assert.is_true(fire(fake, "pre-presence/full", { origin = phone, stanza = join }));
		assert.equal(1, #fake.sent);
		assert.equal("alice@a.localhost", fake.sent[1].attr.from);
		assert.equal("room@muc.localhost/Alice", fake.sent[1].attr.to);

		local self_presence = st.presence({ from = "room@muc.localhost/Alice", to = "alice@a.localhost" })
			:tag("x", { xmlns = NS_MUC_USER }):tag("item", { affiliation = "owner", role = "moderator" }):up()
			:tag("status", { code = "110" }):up():up();
		assert.is_true(fire(fake, "presence/bare", { origin = {}, stanza = self_presence }));
		assert.equal(1, #phone.received);
		assert.equal(phone.full_jid, phone.received[1].attr.to);
		assert.is_true(st.is_stanza(phone.received[1]));
		assert.are_not.equal(self_presence, phone.received[1], "each session gets its own stanza object");
		assert.equal("alice@a.localhost", self_presence.attr.to, "the input stanza is not modified");
	end);

	it("replays the room to late sessions, each copy addressed to its session", function ()
		local phone, laptop, tablet = session("alice@a.localhost/phone"), session("alice@a.localhost/laptop"), session("alice@a.localhost/tablet");
		local fake = load_shim({ full_sessions = { [phone.full_jid] = phone, [laptop.full_jid] = laptop, [tablet.full_jid] = tablet } });
		local function join(s)
			return fire(fake, "pre-presence/full", { origin = s,
				stanza = st.presence({ to = "room@muc.localhost/Alice", from = s.full_jid })
					:tag("x", { xmlns = NS_MUC }):tag("history", { maxstanzas = "1" }):up():up() });
		end
		assert.is_true(join(phone));
		local function from_room(name, stanza)
			assert.is_true(fire(fake, name, { origin = {}, stanza = stanza }));
		end
		from_room("presence/bare", st.presence({ from = "room@muc.localhost/Bob", to = "alice@a.localhost" })
			:tag("x", { xmlns = NS_MUC_USER }):tag("item", { affiliation = "none", role = "participant" }):up():up());
		from_room("presence/bare", st.presence({ from = "room@muc.localhost/Alice", to = "alice@a.localhost" })
			:tag("x", { xmlns = NS_MUC_USER }):tag("item", { affiliation = "owner", role = "moderator" }):up()
			:tag("status", { code = "110" }):up():up());
		from_room("message/bare", st.message({ from = "room@muc.localhost/Bob", to = "alice@a.localhost", type = "groupchat" }):text_tag("subject", "Topic"));
		from_room("message/bare", st.message({ from = "room@muc.localhost/Bob", to = "alice@a.localhost", type = "groupchat" }):text_tag("body", "hello"));
		for _, late in ipairs({ laptop, tablet }) do
			assert.is_true(join(late));
			-- Bob's presence, its own presence, the message (with a delay), the subject.
			assert.equal(4, #late.received);
			for _, got in ipairs(late.received) do
				assert.equal(late.full_jid, got.attr.to);
			end
			assert.equal("room@muc.localhost/Bob", late.received[1].attr.from);
			assert.equal("110", late.received[2]:get_child("x", NS_MUC_USER):get_child("status").attr.code);
			assert.equal("hello", late.received[3]:get_child_text("body"));
			assert.is_not_nil(late.received[3]:get_child("delay", "urn:xmpp:delay"));
			assert.equal("Topic", late.received[4]:get_child_text("subject"));
		end
	end);

	it("lets stanzas that are not room traffic pass to Prosody", function ()
		local phone = session("alice@a.localhost/phone");
		local fake = load_shim({ full_sessions = { [phone.full_jid] = phone } });
		local chat = st.message({ to = "bob@a.localhost", from = phone.full_jid, type = "chat" }):text_tag("body", "hi");
		assert.is_nil(fire(fake, "pre-message/bare", { origin = phone, stanza = chat }));
		local stranger = st.message({ to = "alice@a.localhost", from = "room@muc.localhost/Bob", type = "groupchat" }):text_tag("body", "x");
		assert.is_nil(fire(fake, "message/bare", { origin = {}, stanza = stranger }));
		assert.equal(0, #fake.sent);
	end);

	it("keeps the account's rooms across module reload (save/restore)", function ()
		local phone = session("alice@a.localhost/phone");
		local sessions = { [phone.full_jid] = phone };
		local old, old_env = load_shim({ full_sessions = sessions });
		fire(old, "pre-presence/full", { origin = phone,
			stanza = st.presence({ to = "room@muc.localhost/Alice", from = phone.full_jid }):tag("x", { xmlns = NS_MUC }):up() });
		local saved = old.save();
		local new, new_env = load_shim({ full_sessions = sessions });
		assert.equal(0, #new_env.rooms_of("alice@a.localhost"));
		new.restore(saved);
		local rooms = new_env.rooms_of("alice@a.localhost");
		assert.equal(1, #rooms);
		assert.equal("room@muc.localhost", rooms[1].room);
		assert.same({ phone.full_jid }, rooms[1].sessions);
		assert.equal(old_env.rooms_of("alice@a.localhost")[1].room, rooms[1].room);
	end);

	it("never lets bad input raise into Prosody", function ()
		local phone = session("alice@a.localhost/phone");
		local fake = load_shim({ full_sessions = { [phone.full_jid] = phone } });
		local bad = setmetatable({ name = "presence", attr = { to = "room@muc.localhost/A", from = phone.full_jid }, tags = {}, { name = 42 } }, st.stanza_mt);
		assert.has_no_error(function () fire(fake, "pre-presence/full", { origin = phone, stanza = bad }); end);
		local bad_jid = setmetatable({ name = "presence", attr = { to = "\255@@/" }, tags = {} }, st.stanza_mt);
		assert.has_no_error(function () fire(fake, "pre-presence/full", { origin = phone, stanza = bad_jid }); end);
	end);
end);

describe("mod_minimix shim persistence", function ()
	local function joined_shim(store)
		local phone = session("alice@a.localhost/phone");
		local fake = load_shim({ full_sessions = { [phone.full_jid] = phone }, store = store });
		fire(fake, "pre-presence/full", { origin = phone,
			stanza = st.presence({ to = "room@muc.localhost/Alice", from = phone.full_jid }):tag("x", { xmlns = NS_MUC }):up() });
		fire(fake, "presence/bare", { origin = {}, stanza = st.presence({ from = "room@muc.localhost/Alice", to = "alice@a.localhost" })
			:tag("x", { xmlns = NS_MUC_USER }):tag("item", { affiliation = "owner", role = "moderator" }):up()
			:tag("status", { code = "110" }):up():up() });
		return fake;
	end

	it("stores a confirmed join under the username", function ()
		local store = {};
		joined_shim(store);
		assert.is_table(store.alice);
		assert.equal("room@muc.localhost", store.alice.rooms[1].room);
		assert.equal("Alice", store.alice.rooms[1].nick);
	end);

	it("restores stored rooms at start and rejoins them from the account once the server has started", function ()
		local store = {};
		joined_shim(store);
		local fresh = load_shim({ store = store });
		-- Traffic from the stored room is claimed before the rejoin (no bounce, no kick).
		local msg = st.message({ from = "room@muc.localhost/Bob", to = "alice@a.localhost", type = "groupchat" }):text_tag("body", "x");
		assert.is_true(fire(fresh, "message/bare", { origin = {}, stanza = msg }));
		assert.equal(0, #fresh.sent);
		fire_global(fresh, "server-started");
		assert.equal(1, #fresh.sent);
		local join = fresh.sent[1];
		assert.equal("alice@a.localhost", join.attr.from);
		assert.equal("room@muc.localhost/Alice", join.attr.to);
		assert.is_not_nil(join:get_child("x", NS_MUC));
	end);

	it("keeps what the account heard across a restart, so the room's replay of it is not archived again", function ()
		local store = {};
		local fake = joined_shim(store);
		local function said(text, extra)
			local m = st.message({ from = "room@muc.localhost/Bob", to = "alice@a.localhost", type = "groupchat" })
				:text_tag("body", text)
				:tag("stanza-id", { xmlns = "urn:xmpp:sid:0", by = "room@muc.localhost", id = "R-"..text }):up();
			if extra then m:add_child(extra); end
			return m;
		end
		fire(fake, "message/bare", { origin = {}, stanza = said("hi") });
		fire_global(fake, "server-stopping", {});
		local stored = store.alice.rooms[1];
		assert.equal("sid:R-hi", stored.heard[1].key);
		assert.is_number(stored.heard[1].at);

		local fresh = load_shim({ store = store });
		fire_global(fresh, "server-started");
		local delay = st.stanza("delay", { xmlns = "urn:xmpp:delay", stamp = "2026-01-01T00:00:00Z" });
		local should = fresh.hooks["archive-should-store"].fn;
		assert.is_nil(should({ stanza = said("hi", delay) }), "a replay of what was heard");
		assert.is_true(should({ stanza = said("new", st.clone(delay)) }), "history the account missed");
		assert.is_true(should({ stanza = said("live") }));
	end);

	it("restores a record from before the heard memory existed", function ()
		local store = { alice = { version = 1, rooms = { { room = "room@muc.localhost", nick = "Alice", last_seen = 1800000000.6 } } } };
		local fresh = load_shim({ store = store });
		fire_global(fresh, "server-started");
		assert.equal(1, #fresh.sent);
		local history = fresh.sent[1]:get_child("x", NS_MUC):get_child("history", NS_MUC);
		-- From the start of the second two seconds before the last message heard.
		assert.equal("2027-01-15T07:59:58Z", history.attr.since);
	end);

	it("forgets a deleted account and leaves its rooms", function ()
		local store = {};
		local fake = joined_shim(store);
		local before = #fake.sent;
		fire_global(fake, "user-deleted", { username = "alice", host = "b.localhost" });
		assert.is_table(store.alice, "another host's user is not this one");
		fire_global(fake, "user-deleted", { username = "alice", host = "a.localhost" });

		assert.is_nil(store.alice);
		assert.equal("unavailable", fake.sent[before + 1].attr.type);
	end);
end);

describe("mod_minimix shim bookmarks", function ()
	local NS_BOOKMARKS = "urn:xmpp:bookmarks:1";
	local function conference(autojoin)
		return st.stanza("conference", { xmlns = NS_BOOKMARKS, autojoin = autojoin }):text_tag("nick", "Alice"):up();
	end

	it("joins the account when an autojoin bookmark is published, and leaves when it is cleared", function ()
		local fake = load_shim();
		local pep_service = { events = require "util.events".new() };
		fake.item_handlers.added({ item = { service = pep_service, jid = "alice@a.localhost" } });
		local item = st.stanza("item", { id = "room@muc.localhost" }):add_child(conference("true"));
		pep_service.events.fire_event("item-published/"..NS_BOOKMARKS, { node = NS_BOOKMARKS, id = "room@muc.localhost", item = item, service = pep_service });
		assert.equal(1, #fake.sent);
		assert.equal("alice@a.localhost", fake.sent[1].attr.from);
		assert.equal("room@muc.localhost/Alice", fake.sent[1].attr.to);

		-- The room confirms; then autojoin is cleared: the account leaves.
		fire(fake, "presence/bare", { origin = {}, stanza = st.presence({ from = "room@muc.localhost/Alice", to = "alice@a.localhost" })
			:tag("x", { xmlns = NS_MUC_USER }):tag("status", { code = "110" }):up():up() });
		local off = st.stanza("item", { id = "room@muc.localhost" }):add_child(conference("false"));
		pep_service.events.fire_event("item-published/"..NS_BOOKMARKS, { node = NS_BOOKMARKS, id = "room@muc.localhost", item = off, service = pep_service });
		assert.equal("unavailable", fake.sent[#fake.sent].attr.type);
	end);

	it("clears autojoin in PEP when the account is kicked from a bookmarked room", function ()
		local fake = load_shim();
		local pep_service = { events = require "util.events".new() };
		fake.item_handlers.added({ item = { service = pep_service, jid = "alice@a.localhost" } });
		local item = st.stanza("item", { id = "room@muc.localhost" }):add_child(conference("true"));
		pep_service.events.fire_event("item-published/"..NS_BOOKMARKS, { node = NS_BOOKMARKS, id = "room@muc.localhost", item = item, service = pep_service });
		fire(fake, "presence/bare", { origin = {}, stanza = st.presence({ from = "room@muc.localhost/Alice", to = "alice@a.localhost" })
			:tag("x", { xmlns = NS_MUC_USER }):tag("status", { code = "110" }):up():up() });
		fire(fake, "presence/bare", { origin = {}, stanza = st.presence({ from = "room@muc.localhost/Alice", to = "alice@a.localhost", type = "unavailable" })
			:tag("x", { xmlns = NS_MUC_USER }):tag("status", { code = "110" }):up():tag("status", { code = "307" }):up():up() });
		assert.equal(1, #fake.published);
		assert.equal("room@muc.localhost", fake.published[1].id);
		assert.equal("false", fake.published[1].item:get_child("conference", NS_BOOKMARKS).attr.autojoin);
	end);
end);

describe("mod_minimix shim archive queries", function ()
	-- mod_mam's archive store as the fake opens it: four items, two of them groupchat.
	local function archive_store()
		local items = {
			{ "1", st.message({ type = "chat" }):tag("body"):text("direct"):up() },
			{ "2", st.message({ type = "groupchat" }):tag("body"):text("room a"):up() },
			{ "3", st.message({ type = "groupchat" }):tag("body"):text("room b"):up() },
			{ "4", st.message({ type = "chat" }):tag("body"):text("direct last"):up() },
		};
		local store = { asked = {} };
		function store:find(_, query)
			table.insert(self.asked, query);
			local i = 0;
			return function ()
				i = i + 1;
				if items[i] and (not query.limit or i <= query.limit) then return items[i][1], items[i][2], i, "x"; end
			end, 4;
		end
		return store;
	end

	local function query_iq(include)
		local iq = st.iq({ type = "set", id = "q" }):tag("query", { xmlns = "urn:xmpp:mam:2" });
		if include ~= nil then
			iq:tag("x", { xmlns = "jabber:x:data", type = "submit" })
				:tag("field", { var = "include-groupchat" }):tag("value"):text(include):up():up():up();
		end
		return iq:up();
	end

	local function ids_found(fake, env, iq)
		local store = archive_store();
		local opened = { store_name = "archive", store_type = "archive", store = store };
		fire(fake, "store-opened", opened);
		env.prosody.hosts["a.localhost"].modules.mam = {};
		fire(fake, "module-loaded", { module = "mam" });
		local found, replies = {}, {};
		local event = { stanza = iq, origin = { send = function (s) table.insert(replies, s); end } };
		fake.wrappers["iq-set/self/urn:xmpp:mam:2:query"](function ()
			for id in opened.store:find("alice", { limit = 10, total = true }) do table.insert(found, id); end
			return true;
		end, "iq-set/self/urn:xmpp:mam:2:query", event);
		return table.concat(found, " "), replies, store;
	end

	it("leaves groupchat out of a query that does not ask for it", function ()
		local fake, env = load_shim();
		local found, _, store = ids_found(fake, env, query_iq(nil));
		assert.equal("1 4", found);
		assert.is_nil(store.asked[1].total, "no count that would include the groupchat left out");
		assert.equal(10 + 5000, store.asked[1].limit);
	end);

	it("keeps groupchat for a query with include-groupchat true", function ()
		local fake, env = load_shim();
		assert.equal("1 2 3 4", (ids_found(fake, env, query_iq("true"))));
		assert.equal("1 4", (ids_found(fake, env, query_iq("false"))));
	end);

	it("answers a bad include-groupchat value with bad-request", function ()
		local fake, env = load_shim();
		local found, replies = ids_found(fake, env, query_iq("maybe"));
		assert.equal("", found);
		assert.equal(1, #replies);
		assert.equal("error", replies[1].attr.type);
		assert.equal("bad-request", select(2, replies[1]:get_error()));
	end);
end);
