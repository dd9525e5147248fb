-- Loads a built minimix.so in the running interpreter and checks that it says it was built
-- for that Lua (make check-lib LUA_VERSION=...). Needs no Prosody: useful for Lua 5.1 and
-- LuaJIT, for which no Prosody library tree can be built here to run the specs.
--   lua5.1 tests/check_lib.lua build/lua5.1/minimix.so
local path = assert(arg[1], "usage: check_lib.lua PATH/minimix.so");
local running = type(jit) == "table" and "LuaJIT" or _VERSION;
local open, err = package.loadlib(path, "luaopen_minimix");
if not open then
	io.stderr:write(("%s does not load in %s: %s\n"):format(path, running, tostring(err)));
	os.exit(1);
end
local native = open();
if native.lua_version ~= running then
	io.stderr:write(("%s says it was built for %s, but this is %s\n"):format(path, tostring(native.lua_version), running));
	os.exit(1);
end
print(("%s: minimix %s built for %s loads in %s"):format(path, native.version, native.lua_version, running));
