-- busted helper: Prosody's Lua libraries and the freshly built native library (make build).
package.path = "/usr/lib/prosody/?.lua;" .. package.path;
package.cpath = "/usr/lib/prosody/?.so;" .. package.cpath;

local open = assert(package.loadlib("build/minimix.so", "luaopen_minimix"));
local minimix = open();
package.loaded["minimix"] = minimix;
minimix.init(require "util.stanza".stanza_mt, function () end);
