-- Loads Prosody config files the way Prosody's configmanager does (plain Lua
-- chunks in an environment where VirtualHost/Component open sections and
-- global assignments set options of the current section) and prints one JSON
-- object: { FILE: { SECTION: { option: value } } }. The global section is "*";
-- a Component's module is stored as option "component_module".
-- Run: lua5.4 prosody_dump.lua FILE...
local cjson = require "cjson"
local out = {}
for _, file in ipairs(arg) do
  local sections = { ["*"] = {} }
  local current = "*"
  local function open(name)
    current = name
    sections[name] = sections[name] or {}
  end
  local env = setmetatable({}, {
    __index = function(_, k)
      if k == "VirtualHost" or k == "Host" then
        return function(name) open(name) end
      elseif k == "Component" then
        return function(name)
          open(name)
          return function(mod) sections[name].component_module = mod end
        end
      elseif k == "Include" then
        return function() error("Include is not expected in a vhost file") end
      end
      local v = sections[current][k]
      if v == nil then v = sections["*"][k] end
      return v
    end,
    __newindex = function(_, k, v) sections[current][k] = v end,
  })
  local chunk, err = loadfile(file, "t", env)
  if not chunk then error(file .. ": " .. err) end
  chunk()
  out[file] = sections
end
print(cjson.encode(out))
