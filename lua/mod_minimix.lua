-- mod_minimix: account-based MUC joining.
--
-- The account (bare JID), not each client session, is the occupant of the rooms its
-- sessions join; clients still see plain XEP-0045. All decisions are made by the native
-- core (minimix.so, beside this file); this shim only wires Prosody's hooks to it and
-- applies the actions it returns. See README.md.

local st = require "util.stanza";
local jid_split = require "util.jid".split;
local jid_resource = require "util.jid".resource;
local time_now = require "util.time".now;
local new_logger = require "util.logger".init;

if module:get_host_type() ~= "local" then
	error("mod_minimix must be loaded on a VirtualHost, not on the component "..module.host
		.." (add \"minimix\" to the VirtualHost's or the global modules_enabled)");
end

-- The interpreter Prosody runs on, named as the native library names its build.
local running_lua = type(jit) == "table" and "LuaJIT" or _VERSION;

-- Which Lua a minimix.so was built for, from the marker the bridge embeds (nil if none).
local function built_for(path)
	local file = io.open(path, "rb");
	if not file then return nil; end
	local found, tail = nil, "";
	repeat
		local chunk = file:read(65536);
		if chunk then
			found = (tail..chunk):match("minimix%-built%-for=([%w%. ]+);");
			tail = chunk:sub(-64);
		end
	until found or not chunk;
	file:close();
	return found;
end

local function wrong_lua_message(path, built)
	local lua_version = running_lua == "LuaJIT" and "jit" or running_lua:match("^Lua (.+)$") or "?";
	return ("mod_minimix: %s was built for %s but this Prosody runs on %s; "
		.."rebuild and reinstall it with make LUA_VERSION=%s install (or install the package built for %s)"):format(
		path, built, running_lua, lua_version, running_lua);
end

-- Load the native core from this module's own directory.
local library_path = module:get_directory().."/minimix.so";
local open_library, load_error = package.loadlib(library_path, "luaopen_minimix");
if not open_library then
	-- A build for another Lua does not link ("undefined symbol: lua_..."): say so plainly.
	local built = built_for(library_path);
	if built and built ~= running_lua then
		error(wrong_lua_message(library_path, built));
	end
	error("mod_minimix: cannot load the native library "..library_path..": "..tostring(load_error));
end
local native = open_library();
if native.lua_version ~= running_lua then
	error(wrong_lua_message(library_path, tostring(native.lua_version)));
end
native.init(st.stanza_mt, new_logger("minimix"));

-- Options. Each is read with Prosody's typed getter for its kind; a value of the wrong type
-- refuses the load with an error naming the option, the value and what is accepted. Ranges
-- are checked by the bridge (src/bridge/config.rs) with the same kind of message.

-- A configured value as the admin wrote it, for error messages.
local function show_value(value)
	if type(value) == "string" then return ("%q"):format(value); end
	if type(value) == "table" then return "a list"; end
	return tostring(value);
end

local function refuse(name, raw, expected)
	error(("mod_minimix: %s = %s is not valid: expected %s"):format(name, show_value(raw), expected), 0);
end

-- The value set in the config (host, else global), or nil when unset.
local function configured(name)
	return module:get_option_scalar(name, nil);
end

local function read_number(name, default)
	local raw = configured(name);
	if raw == nil then return default; end
	local value = module:get_option_number(name, default);
	if type(value) ~= "number" then refuse(name, raw, "a number"); end
	return value;
end

local function read_boolean(name, default)
	local raw = configured(name);
	if raw == nil then return default; end
	local value = module:get_option_boolean(name, default);
	if type(value) ~= "boolean" then refuse(name, raw, "true or false"); end
	return value;
end

local function read_choice(name, default, choices)
	local raw = configured(name);
	if raw == nil then return default; end
	local value = module:get_option_string(name, default);
	if value == "" and choices.empty then return choices.empty; end
	for _, choice in ipairs(choices) do
		if value == choice and type(raw) == "string" then return value; end
	end
	refuse(name, raw, "one of \""..table.concat(choices, "\", \"").."\"");
end

local function read_string(name, default)
	local raw = configured(name);
	if raw == nil then return default; end
	if type(raw) ~= "string" then refuse(name, raw, "a string"); end
	return module:get_option_string(name, default);
end

-- A number of seconds, or "never" (math.huge for the core); Prosody 13 also takes a period
-- such as "15 minutes" (its get_option_period; 0.12 has none).
local function read_seconds_or_never(name, default)
	local raw = configured(name);
	if raw == nil then raw = default; end
	if raw == "never" or raw == false then return math.huge; end
	if type(raw) == "number" then return raw; end
	if type(raw) == "string" and module.get_option_period then
		local seconds = module:get_option_period(name, nil);
		if type(seconds) == "number" and seconds >= 0 then return seconds; end
	end
	refuse(name, raw, "a number of seconds or \"never\""
		..(module.get_option_period and " or a period such as \"15 minutes\"" or ""));
end

-- Seconds that must be finite (the bridge checks the range).
local function read_seconds(name, default)
	local raw = configured(name);
	if raw == nil then return default; end
	local seconds = read_seconds_or_never(name, default);
	if seconds == math.huge then refuse(name, raw, "a number of seconds (it cannot be \"never\")"); end
	return seconds;
end

local function read_options()
	return {
		history_length = read_number("minimix_history_length", 20);
		history_max_messages = read_number("minimix_history_max_messages", 100);
		history_max_bytes = read_number("minimix_history_max_bytes", 256 * 1024);
		history_from_archive = read_boolean("minimix_history_from_archive", true);
		max_rooms = read_number("minimix_max_rooms", 256);
		max_occupants = read_number("minimix_max_occupants", 2000);
		max_pending_iqs = read_number("minimix_max_pending_iqs", 256);
		max_joins_per_minute = read_number("minimix_max_joins_per_minute", 60);

		iq_timeout = read_seconds("minimix_iq_timeout", 120);
		join_timeout = read_seconds("minimix_join_timeout", 60);
		leave_after = read_seconds_or_never("minimix_leave_after", "never");
		away_show = read_choice("minimix_away_show", "xa", { "away", "xa", "dnd", "chat", "none", empty = "none" });
		away_status = read_string("minimix_away_status", "");
		bookmark_sync = read_boolean("minimix_bookmark_sync", true);
		bookmark_joins = read_boolean("minimix_bookmark_joins", false);
		max_bookmarks = read_number("minimix_max_bookmarks", 1000);
		ping_interval = read_seconds_or_never("minimix_ping_interval", 900);
		mam_max_skipped = read_number("minimix_mam_max_skipped", 5000);
		push = read_choice("minimix_push", "mentions", { "mentions", "all", "none" });
	};
end

local options = read_options();
local level_error = native.set_log_level(read_choice("minimix_log_level", "info", { "debug", "info", "warn", "error" }));
if level_error then error("mod_minimix: minimix_log_level: "..level_error, 0); end
local autojoin_bookmarks = read_boolean("minimix_autojoin_bookmarks", true);
local archive_groupchat = read_boolean("minimix_archive_groupchat", true);

local handle, config_error = native.new(module.host, options);
if not handle then
	error("mod_minimix: "..tostring(config_error), 0);
end
-- The core's log records go to this host's log ("host:minimix"), at their own level.
local function host_log(level, message)
	module:log(level, "%s", message);
end
handle:set_log_sink(host_log);

-- Joins survive module:reload: the old instance hands its core to the new one.
function module.save()
	return { handle = handle };
end

function module.restore(saved)
	if saved and saved.handle then
		local err = saved.handle:set_config(options);
		if err then
			module:log("error", "keeping the previous configuration: %s", err);
		end
		handle = saved.handle;
		handle:set_log_sink(host_log);
	end
end

local full_sessions = prosody.full_sessions;

-- The account's rooms, kept across restarts (keyval, keyed by username; any backend).
local store = module:open_store("minimix");

-- XEP-0402 bookmarks (mod_bookmarks also maps the legacy forms onto this node).
local NS_BOOKMARKS = "urn:xmpp:bookmarks:1";
local mod_pep = autojoin_bookmarks and module:depends("pep") or nil;
local bookmark_node_config = {
	["persist_items"] = true;
	["max_items"] = "max";
	["send_last_published_item"] = "never";
	["access_model"] = "whitelist";
};

local function publish_bookmark(account, room, conference)
	local username, host = jid_split(account);
	if not mod_pep or host ~= module.host then return; end
	local service = mod_pep.get_pep_service(username);
	local item = st.stanza("item", { xmlns = "http://jabber.org/protocol/pubsub"; id = room }):add_child(conference);
	local ok, err = service:publish(NS_BOOKMARKS, true, room, item, bookmark_node_config);
	if not ok then
		module:log("warn", "could not update the bookmark of %s for %s: %s", room, account, tostring(err));
	end
end

-- Older history for a late session, from the account's own archive (mod_mam's store).
local archive_store_name = module:get_option_string("archive_store", "archive");
local archive;
-- mod_mam's store, opened once; nil while mod_mam is not loaded on this host.
local function mam_archive()
	if not prosody.hosts[module.host].modules.mam then return nil; end
	archive = archive or module:open_store(archive_store_name, "archive");
	return archive;
end

local apply;
local function fetch_history(session_jid, room, before_id, before, since, limit)
	local results = {};
	local store = mam_archive();
	if store then
		local username = jid_split(session_jid);
		-- A few more than asked: the core drops those the buffer replays too. What was
		-- archived before the oldest buffered message (by its id: several can share a
		-- second); by time when it has none or the archive no longer holds it.
		local query = { with = room; before = before_id; start = since; limit = limit + 5; reverse = true };
		local data = before_id and store:find(username, query);
		if not data then
			query.before, query["end"] = nil, before;
			data = store:find(username, query);
		end
		for id, item, when in data or function () end do
			results[#results + 1] = { id, item, when };
		end
	end
	local ok, _, actions = pcall(handle.archived_history, handle, session_jid, room, limit, results);
	if ok and actions then apply(actions); end
end

-- A message the archive stored as it arrived turned out not to belong there (the room's
-- replay of one from before the account joined, or a second copy): taken back out by its id.
local function unarchive(account, id)
	local username, host = jid_split(account);
	if host ~= module.host or not username then return; end
	local store = mam_archive();
	if not store then return; end
	local ok, err = store:delete(username, { key = id });
	if not ok then
		module:log("warn", "could not take message %s back out of the archive of %s: %s", id, account, tostring(err));
	end
end

local function persist(account)

	local username, host = jid_split(account);
	if host ~= module.host or not username then return; end
	local rooms = handle:persisted(account);
	local ok, err = store:set(username, #rooms > 0 and { version = 1, rooms = rooms } or nil);
	if not ok then
		module:log("error", "could not save the rooms of %s: %s", account, tostring(err));
	end
end

-- Applies the core's actions. `input` is the stanza of the event, for "forward".
-- Forwarding re-addresses the one input stanza per session, as Prosody's MUC does for its
-- occupants (whatever keeps a stanza, like smacks' queue, keeps a clone), and restores it.
function apply(actions, input)
	local input_to = input and input.attr.to;
	for i = 1, #actions do
		local action = actions[i];
		local kind, to = action[1], action[2];
		if kind == "route" then
			module:send(action[3]);
		elseif kind == "route_input" then
			local copy = st.clone(input);
			copy.attr.to = input_to;
			copy.attr.from = to;
			if action[3] then copy.attr.id = action[3]; end
			module:send(copy);
		elseif kind == "persist" then
			persist(to);
		elseif kind == "bookmark" then
			publish_bookmark(to, action[4], action[3]);
		elseif kind == "unarchive" then
			unarchive(to, action[3]);
		elseif kind == "fetch_history" then
			fetch_history(to, action[4], action[3], action[5], action[6], action[7]);
		else
			local session = full_sessions[to];
			if not session then
				module:log("debug", "session %s is gone; not delivering", to);
			elseif kind == "deliver" or (kind == "carbon" and session.want_carbons) then
				session.send(action[3]);
			elseif kind == "deliver_shared" then
				-- A cached stanza the core keeps for later replays: addressed only for this send.
				local cached = action[3];
				cached.attr.to = to;
				session.send(cached);
				cached.attr.to = nil;
			elseif kind == "forward" then
				input.attr.to = to;
				session.send(input);
			end
		end
	end
	if input then input.attr.to = input_to; end
end

-- One timer, armed at the core's next deadline.
local armed_at;
local run_timeouts;
local function arm(deadline)
	if not deadline or (armed_at and armed_at <= deadline) then return; end
	armed_at = deadline;
	module:add_timer(math.max(0, deadline - time_now()), run_timeouts);
end

local function finish(ok, handled, actions, deadline, input)
	if not ok then
		module:log("error", "internal error: %s", tostring(handled));
		return nil;
	end
	if actions then apply(actions, input); end
	if deadline then arm(deadline); end
	if handled then return true; end
end

function run_timeouts()
	armed_at = nil;
	finish(pcall(handle.timeout, handle, time_now()));
end

-- Stanzas from the account's own sessions.
local function from_client(method)
	return function (event)
		local origin, stanza = event.origin, event.stanza;
		if origin.type ~= "c2s" or not origin.full_jid then return; end
		local ok, handled, actions, deadline = pcall(handle[method], handle, origin.full_jid, stanza, time_now());
		return finish(ok, handled, actions, deadline, stanza);
	end
end

-- Stanzas to the account's bare JID (from rooms, among others).
local function to_account(method)
	return function (event)
		local stanza = event.stanza;
		local account = stanza.attr.to;
		if not account then return; end
		local ok, handled, actions, deadline = pcall(handle[method], handle, account, stanza, time_now());
		return finish(ok, handled, actions, deadline, stanza);
	end
end

-- Priorities: above mod_presence/mod_mam/mod_carbons (0, -0.5) and below mod_blocklist (100).
module:hook("pre-presence/full", from_client("client_presence"), 10);
module:hook("pre-message/bare", from_client("client_message"), 10);
module:hook("pre-message/full", from_client("client_message"), 10);
module:hook("pre-iq/bare", from_client("client_iq"), 10);
module:hook("pre-iq/full", from_client("client_iq"), 10);

-- Room traffic to the account: presences and iqs before mod_presence/mod_iq (0); messages
-- after mod_mam (0, which stamps the archive id) and before mod_carbons (-0.5) and
-- mod_message (-1, which would bounce unclaimed groupchat and get the account kicked).
module:hook("presence/bare", to_account("room_presence"), 5);
-- A groupchat for the account with no session joined to the room may go to the push path
-- first (see the push section below).
local push_if_no_session_joined;
local room_message = to_account("room_message");
module:hook("message/bare", function (event)
	if push_if_no_session_joined then push_if_no_session_joined(event); end
	return room_message(event);
end, -0.25);
module:hook("iq/bare", to_account("room_iq"), 5);

-- A session gone for good (not hibernating). At shutdown every session unbinds: the
-- account's rooms must not see that, so shutdown is not a session ending.
module:hook("resource-unbind", function (event)
	if prosody.shutdown_reason then return; end
	local session = event.session;
	if not session.full_jid then return; end
	finish(pcall(handle.session_closed, handle, session.full_jid, time_now()));
end, 5);

module:log("info", "minimix %s loaded (%s)", native.version, native.lua_version);

-- Introspection for admins, e.g. from `prosodyctl shell`:
--   >return prosody.hosts["example.org"].modules.minimix.rooms_of("user@example.org")
function rooms_of(account)
	return handle:rooms(account);
end

function stats()
	return handle:stats();
end

-- After a restart: load every stored account (so traffic from its rooms is claimed at once),
-- then, once all hosts are up, re-synchronise each room with a join from the account.
local function resume_rooms()
	finish(pcall(handle.resume, handle, time_now()));
end

if not module.reloading then
	local now = time_now();
	for username in store:users() do
		local data = store:get(username);
		if type(data) == "table" and type(data.rooms) == "table" then
			handle:restore_account(username.."@"..module.host, data.rooms, now);
		end
	end
	if prosody.start_time then
		module:add_timer(0, resume_rooms);
	else
		module:hook_global("server-started", resume_rooms);
	end
end

-- At shutdown, save when each room was last heard from, so only missed history is asked for.
module:hook_global("server-stopping", function ()
	for _, account in ipairs(handle:persisted_accounts()) do
		persist(account);
	end
end, 10);

-- A deleted account leaves its rooms and its state is removed (a global event).
module:hook_global("user-deleted", function (event)
	if event.host ~= module.host then return; end
	local account = event.username.."@"..module.host;

	finish(pcall(handle.forget_account, handle, account));
	store:set(event.username, nil);
end, 5);

-- One copy of each groupchat message in the account's own archive (mod_mam refuses all
-- groupchat at priority -1; this answers first for rooms the account is in). The stanza
-- goes along: a room's replay of a message the account already heard (and archived) is not
-- stored again.
if archive_groupchat then
	module:hook("archive-should-store", function (event)
		local stanza = event.stanza;
		local to, from = stanza.attr.to, stanza.attr.from;
		if to and from and handle:should_archive(to, from, stanza.attr.type, stanza) then
			event.reason = "groupchat from a room the account is in (minimix)";
			return true;
		end
	end, 0);
end

-- XEP-0313 include-groupchat. mod_mam's archive store is wrapped as it is opened
-- ("store-opened"): while a query that leaves groupchat out runs, its find skips groupchat
-- (bounded by minimix_mam_max_skipped); the core parses the field and judges each item.
-- The state lives in a shared table so that a wrapper made by an earlier instance of this
-- module (before a reload) consults the current one.
local mam_filter = module:shared("mam_groupchat_filter");
mam_filter.queries = mam_filter.queries or setmetatable({}, { __mode = "k" });
mam_filter.handle = handle;
local NS_MAM = "urn:xmpp:mam:2";

module:hook("store-opened", function (event)
	local store = event.store;
	if event.store_name ~= archive_store_name or event.store_type ~= "archive" or type(store) ~= "table" then
		return;
	end
	local find = store.find;
	if type(find) ~= "function" then return; end
	local shared = mam_filter;
	local function filtered_find(_, username, query)
		-- The query context belongs to the thread (async runner) answering the iq.
		local core = shared.queries[coroutine.running()];
		if not core or type(query) ~= "table" then
			return find(store, username, query);
		end
		local filter = core:mam_groupchat_filter();
		local limit = query.limit;
		local scan = {};
		for k, v in pairs(query) do scan[k] = v; end
		scan.total = nil; -- a count would include the groupchat left out
		if limit and limit > 0 then scan.limit = filter:scan_limit(limit); end
		local items, err = find(store, username, scan);
		if not items then return items, err; end
		local returned = 0;
		return function ()
			if limit and returned >= limit then return nil; end
			while true do
				local id, item, when, with = items();
				if id == nil then return nil; end
				if filter:keep(item) then
					returned = returned + 1;
					return id, item, when, with;
				end
			end
		end, nil;
	end
	event.store = setmetatable({ find = filtered_find }, { __index = store });
end);

-- Whether mod_mam opened its store while the hook above was in place.
module:hook("module-loaded", function (event)
	if event.module == "mam" then mam_filter.wrapped = true; end
end);
module:hook("module-reloaded", function (event)
	if event.module == "mam" then mam_filter.wrapped = true; end
end);
module:hook("module-unloaded", function (event)
	if event.module == "mam" then mam_filter.wrapped = nil; end
end);

local function groupchat_filter_works()
	return mam_filter.wrapped and prosody.hosts[module.host].modules.mam ~= nil;
end

module:wrap_event("iq-set/self/"..NS_MAM..":query", function (handlers, event_name, event)
	if not groupchat_filter_works() then return handlers(event_name, event); end
	local include, err = handle:mam_includes_groupchat(event.stanza);
	if include == nil then
		event.origin.send(st.error_reply(event.stanza, "modify", "bad-request", err));
		return true;
	elseif include then
		return handlers(event_name, event);
	end
	local thread = coroutine.running();
	local previous = mam_filter.queries[thread];
	mam_filter.queries[thread] = handle;
	local ok, ret = pcall(handlers, event_name, event);
	mam_filter.queries[thread] = previous;
	if not ok then error(ret, 0); end
	return ret;
end);

-- The form mod_mam serves gets the include-groupchat field.
module:wrap_event("iq-get/self/"..NS_MAM..":query", function (handlers, event_name, event)
	if not groupchat_filter_works() then return handlers(event_name, event); end
	local origin, id = event.origin, event.stanza.attr.id;
	local send = origin.send;
	local function send_with_field(reply)
		if reply.name == "iq" and reply.attr.type == "result" and reply.attr.id == id then
			reply = handle:mam_form_with_groupchat(reply) or reply;
		end
		return send(reply);
	end
	origin.send = send_with_field;
	local ok, ret = pcall(handlers, event_name, event);
	if origin.send == send_with_field then origin.send = send; end
	if not ok then error(ret, 0); end
	return ret;
end);

module:hook("account-disco-info", function (event)
	if not groupchat_filter_works() then return; end
	local reply = event.reply or event.stanza;
	reply:tag("feature", { var = native.mam_feature_groupchat_field }):up();
	if module:get_option_boolean("minimix_archive_groupchat", true) then
		reply:tag("feature", { var = native.mam_feature_groupchat_available }):up();
	end
end);

-- Unloaded for good: a later load must make sure mod_mam's store is wrapped again.
function module.unload()
	if not module.reloading then mam_filter.wrapped = nil; end
end

-- mod_mam loaded before this module opened its store unwrapped: reopen it (once; a reload
-- of this module keeps the wrapper, which consults the shared state).
if not module.reloading and prosody.hosts[module.host].modules.mam and not mam_filter.wrapped then
	module:log("info", "reloading mod_mam so that queries can leave groupchat out (include-groupchat)");
	require "core.modulemanager".reload(module.host, "mam");
end

-- XEP-0357 pushes for groupchat (mod_cloud_notify). With no session joined to a room, a
-- message that concerns the account is handed to the push path as a groupchat to the bare
-- JID (mod_message would do the same for a message nobody claimed); every push
-- mod_cloud_notify prepares for a room's groupchat is checked by the core.
local handed_to_push = setmetatable({}, { __mode = "k" });
local bare_sessions = prosody.bare_sessions;

function push_if_no_session_joined(event)
	local stanza = event.stanza;
	local account = stanza.attr.to;
	if not account or stanza.attr.type ~= "groupchat" or not prosody.hosts[module.host].modules.cloud_notify then
		return;
	end
	local ok, wanted = pcall(handle.push_without_sessions, handle, account, stanza);
	if not ok then
		module:log("error", "internal error: %s", tostring(wanted));
	elseif wanted then
		handed_to_push[stanza] = true;
		module:fire_event("message/bare/groupchat", { origin = event.origin, stanza = stanza });
		handed_to_push[stanza] = nil;
	end
end

-- Whether a connected (not hibernating) session of the account uses this push service.
local function push_service_live(username, push_info)
	local user = bare_sessions[username.."@"..module.host];
	if not user or not push_info then return false; end
	local identifier = tostring(push_info.jid).."<"..(push_info.node or "");
	for _, session in pairs(user.sessions) do
		if session.push_identifier == identifier and not session.hibernating then
			return true;
		end
	end
	return false;
end

module:hook("cloud_notify/push", function (event)
	local stanza = event.original_stanza;
	if not stanza or stanza.name ~= "message" or stanza.attr.type ~= "groupchat" or not event.username then
		return;
	end
	local path;
	if handed_to_push[stanza] then
		path = "no_session_joined";
	elseif jid_resource(stanza.attr.to) then
		path = "session_queue";
	else
		path = "archive";
	end
	local ok, allowed, reason = pcall(handle.push_verdict, handle, event.username.."@"..module.host,
		stanza, path, push_service_live(event.username, event.push_info));
	if not ok then
		module:log("error", "internal error: %s", tostring(allowed));
	elseif allowed == false then
		event.reason = reason;
		return true;
	end
end);

-- Bookmarks drive the account's joins: follow every PEP service's bookmarks node.
if mod_pep then
	local watched = {};
	local function bookmark_published(event)
		if event.node ~= NS_BOOKMARKS or not event.id then return; end
		local account = watched[event.service];
		local conference = event.item and event.item:get_child("conference", NS_BOOKMARKS);
		if not account or not conference then return; end
		finish(pcall(handle.bookmark_published, handle, account, event.id, conference, time_now()));
	end
	local function bookmark_retracted(event)
		if event.node ~= NS_BOOKMARKS or not event.id then return; end
		local account = watched[event.service];
		if not account then return; end
		finish(pcall(handle.bookmark_retracted, handle, account, event.id, time_now()));
	end
	module:handle_items("pep-service", function (event)
		local service = event.item.service;
		watched[service] = event.item.jid;
		module:hook_object_event(service.events, "item-published/"..NS_BOOKMARKS, bookmark_published);
		module:hook_object_event(service.events, "item-retracted", bookmark_retracted);
	end, function (event)
		local service = event.item.service;
		watched[service] = nil;
		module:unhook_object_event(service.events, "item-published/"..NS_BOOKMARKS, bookmark_published);
		module:unhook_object_event(service.events, "item-retracted", bookmark_retracted);
	end, true);

	-- At start, every user's autojoin bookmarks (the account joins with no client online).
	local function autojoin_all()
		local now = time_now();
		for username in require "core.usermanager".users(module.host) do
			local service = mod_pep.get_pep_service(username);
			local ok, items = service:get_items(NS_BOOKMARKS, true);
			if ok and items then
				local account = username.."@"..module.host;
				for _, id in ipairs(items) do
					local conference = items[id] and items[id]:get_child("conference", NS_BOOKMARKS);
					if conference then
						finish(pcall(handle.bookmark_published, handle, account, id, conference, now));
					end
				end
			end
		end
	end
	if not module.reloading then
		if prosody.start_time then
			module:add_timer(0, autojoin_all);
		else
			module:hook_global("server-started", autojoin_all, -10);
		end
	end
end

-- Admin shell: minimix:rooms("user@host") and minimix:stats("host").
local shell_env = module:shared("/*/admin_shell/env");
shell_env.minimix = {};
function shell_env.minimix:rooms(account)
	local _, host = jid_split(account or "");
	local mod = host and prosody.hosts[host] and prosody.hosts[host].modules.minimix;
	if not mod then return false, "mod_minimix is not loaded on "..tostring(host); end
	local rooms = mod.rooms_of(account);
	for _, r in ipairs(rooms) do
		self.session.print(("%s as %s: %s, sessions: %s, occupants: %d, history: %d"):format(
			r.room, r.nick, r.state, #r.sessions > 0 and table.concat(r.sessions, " ") or "none",
			r.occupants or 0, r.history or 0));
	end
	return true, ("%d room(s)"):format(#rooms);
end
function shell_env.minimix:stats(host)
	local mod = prosody.hosts[host] and prosody.hosts[host].modules.minimix;
	if not mod then return false, "mod_minimix is not loaded on "..tostring(host); end
	local s = mod.stats();
	return true, ("accounts: %d, rooms: %d, joined sessions: %d, cached occupants: %d, history messages: %d"):format(
		s.accounts, s.rooms, s.joined_sessions, s.cached_occupants, s.history_messages);
end

-- Statistics (shown by Prosody's metrics endpoint / mod_http_openmetrics).
local measure_accounts = module:measure("accounts", "amount");
local measure_rooms = module:measure("rooms", "amount");
local measure_sessions = module:measure("joined_sessions", "amount");
module:hook_global("stats-update", function ()
	local s = handle:stats();
	measure_accounts(s.accounts);
	measure_rooms(s.rooms);
	measure_sessions(s.joined_sessions);
end);
