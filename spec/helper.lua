-- busted helper: Prosody's Lua libraries and the freshly built native library (make build).
-- `make test-lua LUA_VERSION=...` sets both directories (see the Makefile):
--   MINIMIX_BUILD_DIR  where minimix.so for the running Lua is (default build/lua5.4);
--   PROSODY_SOURCE_DIR Prosody's library tree for that Lua (default Debian's /usr/lib/prosody,
--                      whose C modules are built for Lua 5.4 only).
local build_dir = os.getenv("MINIMIX_BUILD_DIR") or "build/lua5.4";
local prosody_dir = os.getenv("PROSODY_SOURCE_DIR") or "/usr/lib/prosody";
package.path = prosody_dir .. "/?.lua;" .. package.path;
package.cpath = prosody_dir .. "/?.so;" .. package.cpath;
-- Prosody 13 requires "prosody.util.x"; its loader maps that onto util/x (0.12 has none).
local loader = io.open(prosody_dir .. "/loader.lua");
if loader then
	loader:close();
	dofile(prosody_dir .. "/loader.lua");
end

local open = assert(package.loadlib(build_dir .. "/minimix.so", "luaopen_minimix"));
local minimix = open();
package.loaded["minimix"] = minimix;
minimix.init(require "util.stanza".stanza_mt, function () end);
