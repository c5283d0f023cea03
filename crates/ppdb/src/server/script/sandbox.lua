-- Run once when a shard's Lua state is made, with the globals of the state as _G. It
-- installs redis.call (the host's) and redis.pcall over the host's `host_call`, makes the
-- libraries and the scripts' globals read-only (as Redis 7 does), keeps pcall from swallowing
-- the end of the instruction budget, and returns what the host needs: the scripts'
-- environment, the runner of one script (which also undoes what a script may have slipped
-- into a read-only table with a raw write), and the loader and caller of function libraries.
--
-- A library's code runs with the environment Redis 7 gives it while loading: only
-- `redis.register_function`, `redis.log` and the `redis` constants; the functions it
-- registers run later with the scripts' whole environment, given KEYS and ARGV as arguments.
local host_call, redis_call, budget_spent, error_handler, no_writes, unpack_items = ...
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
    local _, reply = host_call(...)
    return reply
end

-- The read-only tables, as a set (for rawset's check) and as a list (for the sweep).
local protected, protected_list = {}, {}
local function protect(t)
    protected[t] = true
    protected_list[#protected_list + 1] = t
end
local function refuse()
    error("Attempt to modify a readonly table", 2)
end
local function readonly(t)
    local proxy = setmetatable({}, { __index = t, __newindex = refuse, __metatable = false })
    protect(proxy)
    return proxy
end

-- The scripts' globals: an empty table whose reads go on to G (a table, so that a global is
-- found without a call), or, while a library loads, to `load_api`; a name found in neither
-- raises Redis's error from their own metatable.
local missing = {
    __index = function(_, name)
        error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
    end,
}
setmetatable(G, missing)
local load_api = setmetatable({}, missing)
local env_meta = { __index = G, __newindex = refuse, __metatable = false }
local env = setmetatable({}, env_meta)
protect(env)

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
    G[name] = readonly(rawget(G, name))
end
getmetatable("").__metatable = false
G._G = env

local function sweep()
    for i = 1, #protected_list do
        local proxy = protected_list[i]
        local key = next(proxy)
        while key ~= nil do
            rawset(proxy, key, nil)
            key = next(proxy)
        end
    end
end

-- One run: KEYS and ARGV set (made by the host's `unpack_items` from the items it lent), the
-- script called under the host's error handler, then KEYS, ARGV and any raw write into a
-- read-only table undone.
local function run(script, items)
    local keys, argv = unpack_items(items)
    rawset(G, "KEYS", keys)
    rawset(G, "ARGV", argv)
    local ok, result = xpcall(script, error_handler)
    rawset(G, "KEYS", nil)
    rawset(G, "ARGV", nil)
    sweep()
    return ok, result
end

-- redis.register_function, as Redis 7.0 checks its arguments: (name, callback), or one table
-- of named arguments (function_name, callback, flags, description).
local FLAGS = { ["no-writes"] = 1, ["allow-oom"] = 2, ["allow-stale"] = 4, ["no-cluster"] = 8,
    ["allow-cross-slot-keys"] = 16 }
local BAD_NAME = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
local library = nil

local function named_arguments(t)
    local name, callback, flags, description
    for key, value in pairs(t) do
        if type(key) ~= "string" then
            error("named argument key given to redis.register_function is not a string", 0)
        elseif key == "function_name" then
            if type(value) ~= "string" then
                error("function_name argument given to redis.register_function must be a string", 0)
            end
            name = value
        elseif key == "description" then
            if type(value) ~= "string" then
                error("description argument given to redis.register_function must be a string", 0)
            end
            description = value
        elseif key == "callback" then
            if type(value) ~= "function" then
                error("callback argument given to redis.register_function must be a function", 0)
            end
            callback = value
        elseif key == "flags" then
            if type(value) ~= "table" then
                error("flags argument to redis.register_function must be a table representing function flags", 0)
            end
            flags = value
        else
            error("unknown argument given to redis.register_function", 0)
        end
    end
    if name == nil then
        error("redis.register_function must get a function name argument", 0)
    end
    if callback == nil then
        error("redis.register_function must get a callback argument", 0)
    end
    return name, callback, flags, description
end

local function register_function(...)
    local count = select("#", ...)
    if count < 1 or count > 2 then
        error("wrong number of arguments to redis.register_function", 0)
    end
    local name, callback, flags, description
    if count == 1 then
        if type(...) ~= "table" then
            error("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).", 0)
        end
        name, callback, flags, description = named_arguments(...)
    else
        name, callback = ...
        if type(name) ~= "string" then
            error("first argument to redis.register_function must be a string", 0)
        end
        if type(callback) ~= "function" then
            error("second argument to redis.register_function must be a function", 0)
        end
    end
    local bits = 0
    for _, flag in pairs(flags or {}) do
        local bit = type(flag) == "string" and FLAGS[flag]
        if not bit then
            error("unknown flag given", 0)
        end
        if bits % (2 * bit) < bit then
            bits = bits + bit
        end
    end
    if #name == 0 or #name > 256 or name:find("[^%w_]") then
        error(BAD_NAME, 0)
    end
    if library.functions[name] then
        error("Function already exists in the library", 0)
    end
    library.functions[name] = { callback = callback, flags = bits, description = description }
    library.names[#library.names + 1] = name
end

local load_redis = { register_function = register_function, log = redis.log }
for key, value in pairs(redis) do
    if type(value) ~= "function" then
        load_redis[key] = value
    end
end
-- As Redis's, the loading `redis` table answers a missing field as a missing global.
load_api.redis = setmetatable({}, {
    __index = function(_, name)
        local value = rawget(load_redis, name)
        if value == nil then
            error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
        end
        return value
    end,
    __newindex = refuse,
    __metatable = false,
})
protect(load_api.redis)

-- Loads a library: runs its code with the loading environment and returns true and what it
-- registered ({functions = {name = {callback, flags, description}}, names = {...}}), or false
-- and the error.
local function load_library(chunk)
    library = { functions = {}, names = {} }
    env_meta.__index = load_api
    local ok, result = xpcall(chunk, error_handler)
    env_meta.__index = G
    local loaded = library
    library = nil
    sweep()
    if ok then
        return true, loaded
    end
    return false, result
end

-- One FCALL: loads the library afresh (so nothing a function keeps in its library's locals
-- outlives the call, as on a replica that loads it for the first time), then calls function
-- `name` with KEYS and ARGV as its two arguments. Returns the outcome, the value or error, and
-- the function's flags (nil when the library failed to load or lacks the function).
local function call_function(chunk, name, items)
    local loaded_ok, loaded = load_library(chunk)
    if not loaded_ok then
        return false, loaded, nil
    end
    local f = loaded.functions[name]
    if f == nil then
        return false, "Function not found", nil
    end
    local keys, argv = unpack_items(items)
    if f.flags % 2 == 1 then
        no_writes()
    end
    local callback = f.callback
    local ok, result = xpcall(function() return callback(keys, argv) end, error_handler)
    sweep()
    return ok, result, f.flags
end

return env, run, load_library, call_function
