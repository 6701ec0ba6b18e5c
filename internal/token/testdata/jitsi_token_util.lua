-- Runs Jitsi's own token code (token/util.lib.lua with luajwtjitsi, util.lib.lua
-- and token/jwk.lib.lua from jitsi-meet's prosody-plugins) under Lua 5.4 with
-- Prosody's util libraries, lua-cjson, basexx and luaossl, and prints one
-- verdict per case:
--   ok                 login and (when a room is given) the MUC join pass
--   login:<reason>     process_and_verify_token refuses (mod_auth_token)
--   join:<reason>      verify_room refuses (mod_token_verification's words)
--   crash:<message>    the code raises a Lua error (location stripped)
--
-- arg[1] is the prosody-plugins directory. Input, one case per line, fields
-- separated by TAB:
--   secret alg issuers audiences domain_verification(0|1) domain tenant room_node hex(token)
-- (issuers/audiences comma-separated; room_node "-" = login only; tenant "-" = none)
local plugins = assert(arg[1], "usage: lua5.4 jitsi_token_util.lua PLUGINS_DIR")
package.path = "/usr/lib/prosody/?.lua;/usr/share/lua/5.4/?.lua;/usr/share/lua/5.1/?.lua;" .. package.path
package.cpath = "/usr/lib/prosody/?.so;/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;" .. package.cpath

-- Prosody's server-side modules the token code loads but never calls here.
package.preload["net.http.server"] = function() return {} end
package.preload["net.http"] = function() return { request = function() end } end
package.preload["core.usermanager"] = function() return {} end
package.preload["util.timer"] = function() return { add_task = function() end } end

local set = require "util.set"
local jid = require "util.jid"

prosody = {
  version = "0.12", platform = "posix", hosts = {},
  events = { fire_event = function() end, add_handler = function() end },
}

local function split(s)
  local out = {}
  for v in string.gmatch(s, "[^,]+") do out[#out + 1] = v end
  return out
end

local function new_module(host, opts)
  local m = { host = host, name = "token_test" }
  local function get(_, name, default)
    local v = opts[name]
    if v == nil then return default end
    return v
  end
  m.get_option, m.get_option_string, m.get_option_number, m.get_option_boolean = get, get, get, get
  function m:get_option_array(name, default)
    local v = opts[name]
    if v == nil then return default end
    return v
  end
  function m:get_option_set(name, default) return set.new(opts[name] or default or {}) end
  m.get_option_inherited_set = m.get_option_set
  function m:context(h) return new_module(h, opts) end
  function m:log() end
  function m:measure() return function() end end
  function m:hook() end
  function m:hook_global() end
  local cache = {}
  function m:require(name)
    if cache[name] then return cache[name] end
    local f = assert(loadfile(plugins .. "/" .. name .. ".lib.lua"))
    local lib = f()
    if name == "util" then
      -- every room exists (the join happens after the room is created)
      lib.get_room_from_jid = function() return { _data = {} } end
      lib.http_get_with_retry = function() return nil end
    end
    cache[name] = lib
    return lib
  end
  return m
end

local function clean(err)
  err = tostring(err)
  return (err:gsub("^[^\n]-:%d+: ", ""))
end

for line in io.lines() do
  local f = {}
  for v in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = v end
  local secret, alg, iss, aud, dv, domain, tenant, node, hextoken = table.unpack(f)
  local token = hextoken:gsub("..", function(x) return string.char(tonumber(x, 16)) end)
  local opts = {
    app_id = "unused-app-id", app_secret = secret, signature_algorithm = alg,
    asap_accepted_issuers = split(iss), asap_accepted_audiences = split(aud),
    asap_require_room_claim = true, enable_domain_verification = dv == "1",
    allow_empty_token = false, muc_mapper_domain_base = domain,
  }
  local m = new_module(domain, opts)
  module = m
  local ok, util = pcall(function() return m:require("token/util") end)
  if not ok then error("loading token/util: " .. tostring(util)) end
  local tu = assert(util.new(m), "token/util refused the configuration")
  local session = { auth_token = token, jitsi_web_query_prefix = tenant ~= "-" and tenant or "" }
  local okc, res, err, reason = pcall(tu.process_and_verify_token, tu, session)
  if not okc then
    print("crash:" .. clean(res))
  elseif res == false then
    print("login:" .. tostring(reason))
  elseif node == "-" then
    print("ok")
  else
    local n = node
    if tenant ~= "-" then n = "[" .. tenant .. "]" .. node end
    local address = n .. "@conference." .. domain
    local okj, r2, e2, reason2 = pcall(tu.verify_room, tu, session, address)
    if not okj then
      print("crash:" .. clean(r2))
    elseif not r2 then
      print("join:" .. tostring(reason2 or "Room and token mismatched"))
    else
      print("ok")
    end
  end
end
