-- ArgoCD health check for database.example.com/PostgreSQLInstance (a paved claim). Lua 5.1.
-- Suspended when the claim is paused (Synced False, reason ReconcilePaused). Progressing while it
-- only waits (Synced False, reason Waiting: a composed resource waits for a reference, a Secret or
-- AWS). Degraded when Synced is otherwise False (paved cannot render or apply it, or a composed
-- resource is blocked until a person changes something: the message names it) or Ready is False
-- with reason Blocked. Healthy only when Ready is True and Synced is not False; Progressing
-- otherwise (Creating, Waiting, no status yet).
local hs = {}
local ready, synced
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      ready = c
    elseif c.type == "Synced" then
      synced = c
    end
  end
end
local function text(c, default)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return default
end
if synced ~= nil and synced.status == "False" and synced.reason == "ReconcilePaused" then
  hs.status = "Suspended"
  hs.message = text(synced, "Paused")
elseif synced ~= nil and synced.status == "False" and synced.reason == "Waiting" then
  hs.status = "Progressing"
  hs.message = text(synced, "Waiting")
elseif synced ~= nil and synced.status == "False" then
  hs.status = "Degraded"
  hs.message = text(synced, "Synced is False")
elseif ready ~= nil and ready.status == "False" and ready.reason == "Blocked" then
  hs.status = "Degraded"
  hs.message = text(ready, "Blocked")
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Available")
elseif ready ~= nil then
  hs.status = "Progressing"
  hs.message = text(ready, "Ready is " .. tostring(ready.status))
else
  hs.status = "Progressing"
  hs.message = "Waiting for paved to reconcile the claim"
end
return hs
