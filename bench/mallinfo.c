/* A tiny Lua C module for the e2e benchmark: glibc's malloc statistics of the process that
 * loads it (Prosody, through the admin shell). Everything malloc'd counts, the Lua heap
 * included (Lua allocates with realloc), so "malloc in use - Lua heap" is what C code and
 * native modules (mod_minimix's Rust core) hold.
 *
 * Built by bench/e2e.py with: cc -O2 -shared -fPIC -o mallinfo.so bench/mallinfo.c
 * No Lua headers are needed: the few API functions are declared here and resolved against the
 * interpreter that loads the module (Lua 5.3/5.4 ABI: lua_Integer is long long).
 */
#include <malloc.h>

typedef struct lua_State lua_State;
typedef int (*lua_CFunction)(lua_State *L);
extern void lua_pushinteger(lua_State *L, long long n);
extern void lua_pushcclosure(lua_State *L, lua_CFunction fn, int n);

/* returns in_use_bytes (small chunks + mmapped), arena_bytes (heap from sbrk), mmap_bytes */
static int bench_mallinfo(lua_State *L) {
	struct mallinfo2 mi = mallinfo2();
	lua_pushinteger(L, (long long)(mi.uordblks + mi.hblkhd));
	lua_pushinteger(L, (long long)mi.arena);
	lua_pushinteger(L, (long long)mi.hblkhd);
	return 3;
}

int luaopen_benchmallinfo(lua_State *L) {
	lua_pushcclosure(L, bench_mallinfo, 0);
	return 1;
}
