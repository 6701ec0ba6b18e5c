-- An independent check of jitsi-agent's token verifier with the libraries
-- Prosody's token code runs on (lua-cjson, lua-basexx, lua-luaossl), following
-- the documented behaviour of jitsi-meet's luajwtjitsi verify and token/util.
-- Input, one case per line: secret TAB alg TAB issuers TAB audiences TAB token
-- (lists comma-separated). Output: one verdict per line, "ok" or the reason.
local cjson = require "cjson.safe"
local basexx = require "basexx"
local hmac = require "openssl.hmac"

local digests = { HS256 = "sha256", HS384 = "sha384", HS512 = "sha512" }

local function list(s)
  local out = {}
  for v in string.gmatch(s, "[^,]+") do out[#out + 1] = v end
  return out
end

local function accepted(claim, acc)
  for _, a in ipairs(acc) do
    if a == "*" or claim == a then return true end
  end
  return false
end

local function verify(secret, alg, issuers, audiences, token)
  local segs = {}
  for part in string.gmatch(token, "[^\\.]+") do segs[#segs + 1] = part end
  if #segs ~= 3 then return "Invalid token" end
  local header = cjson.decode(basexx.from_url64(segs[1]) or "")
  if header == nil then return "Invalid header" end
  local body = cjson.decode(basexx.from_url64(segs[2]) or "")
  if body == nil then return "Invalid body" end
  local sig = basexx.from_url64(segs[3])
  if sig == nil then return "Invalid signature" end
  if not header.typ or header.typ ~= "JWT" then return "Invalid typ" end
  if not header.alg or header.alg ~= alg then return "Invalid or incorrect alg" end
  local want = hmac.new(secret, digests[alg]):final(segs[1] .. "." .. segs[2])
  if sig ~= want then return "Invalid signature" end
  if body.exp and type(body.exp) ~= "number" then return "exp must be number" end
  if body.nbf and type(body.nbf) ~= "number" then return "nbf must be number" end
  local now = os.time()
  if body.exp and now >= body.exp then
    local extra = ""
    if body.iat then extra = ", valid for:" .. tostring(body.exp - body.iat) .. " sec" end
    return "Not acceptable by exp (" .. tostring(now - body.exp) .. " sec since expired" .. extra .. ")"
  end
  if body.nbf and now < body.nbf then return "Not acceptable by nbf" end
  if body.iss == nil then return "'iss' claim is missing" end
  if not accepted(body.iss, issuers) then return "invalid 'iss' claim" end
  if body.aud == nil then return "'aud' claim is missing" end
  if not accepted(body.aud, audiences) then return "invalid 'aud' claim" end
  if body.sub == nil then return "sub claim is missing" end
  if body.room == nil then return "room claim is missing" end
  return "ok"
end

for line in io.lines() do
  local secret, alg, iss, aud, token = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
  local ok, verdict = pcall(verify, secret, alg, list(iss), list(aud), token)
  if not ok then verdict = "error: " .. tostring(verdict) end
  io.write(verdict, "\n")
end
