-- Run once when a shard's Lua state is made, with the globals of the state as _G. It
-- installs redis.call (the host's) and redis.pcall over the host's `raw_call`, makes the
-- libraries and the scripts' globals read-only (as Redis 7 does), keeps pcall from swallowing
-- the end of the instruction budget, and returns what the host needs: the scripts'
-- environment and the runner of one script (which also undoes what a script may have
-- slipped into a read-only table with a raw write).
local raw_call, redis_call, budget_spent, error_handler = ...
local G = _G
local error, pairs, next, rawset, rawget, setmetatable, getmetatable, setfenv, tostring, type =
    error, pairs, next, rawset, rawget, setmetatable, getmetatable, setfenv, tostring, type
local pcall, xpcall, loadstring, concat = pcall, xpcall, loadstring, table.concat
local resume = coroutine.resume

-- The instruction budget ends a script even through pcall: once it is spent, every pcall,
-- xpcall and coroutine.resume raises again instead of returning.
local function unless_spent(...)
    if budget_spent() then
        error("ERR Script exceeded its instruction budget", 0)
    end
    return ...
end
G.pcall = function(...) return unless_spent(pcall(...)) end
G.xpcall = function(...) return unless_spent(xpcall(...)) end
coroutine.resume = function(...) return unless_spent(resume(...)) end

local redis = G.redis
redis.call = redis_call
redis.pcall = function(...)
    local _, reply = raw_call(...)
    return reply
end

local protected = {}
local function refuse()
    error("Attempt to modify a readonly table", 2)
end
local function readonly(t)
    local proxy = setmetatable({}, { __index = t, __newindex = refuse, __metatable = false })
    protected[proxy] = true
    return proxy
end

local env = setmetatable({}, {
    __index = function(_, name)
        local value = rawget(G, name)
        if value == nil then
            error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
        end
        return value
    end,
    __newindex = refuse,
    __metatable = false,
})
protected[env] = true

-- Text chunks only (Lua 5.1 has no bytecode verifier), compiled into the scripts' globals.
local function compile(source, name)
    if type(source) == "string" and source:byte(1) == 27 then
        return nil, "binary chunks are not allowed"
    end
    local chunk, message = loadstring(source, name)
    if chunk then
        setfenv(chunk, env)
    end
    return chunk, message
end
G.loadstring = compile
G.load = function(reader, name)
    if type(reader) == "string" then
        return compile(reader, name)
    end
    local parts = {}
    while true do
        local part = reader()
        if part == nil or part == "" then
            break
        end
        parts[#parts + 1] = part
    end
    return compile(concat(parts), name)
end
G.rawset = function(t, k, v)
    if protected[t] then
        refuse()
    end
    return rawset(t, k, v)
end

for _, name in pairs({ "string", "table", "math", "coroutine", "redis", "cjson", "bit" }) do
    G[name] = readonly(G[name])
end
getmetatable("").__metatable = false
G._G = env

local function sweep()
    for proxy in pairs(protected) do
        local key = next(proxy)
        while key ~= nil do
            rawset(proxy, key, nil)
            key = next(proxy)
        end
    end
end

-- One run: KEYS and ARGV set (from the first `key_count` strings and the rest, or, with a
-- negative count, from the two tables given), the script called under the host's error
-- handler, then KEYS, ARGV and any raw write into a read-only table undone.
local function run(script, key_count, ...)
    local keys, argv = ...
    if key_count >= 0 then
        local all = { ... }
        keys, argv = {}, {}
        for i = 1, key_count do
            keys[i] = all[i]
        end
        for i = key_count + 1, select("#", ...) do
            argv[i - key_count] = all[i]
        end
    end
    rawset(G, "KEYS", keys)
    rawset(G, "ARGV", argv)
    local ok, result = xpcall(script, error_handler)
    rawset(G, "KEYS", nil)
    rawset(G, "ARGV", nil)
    sweep()
    return ok, result
end

return env, run
