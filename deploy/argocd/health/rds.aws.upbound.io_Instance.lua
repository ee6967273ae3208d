-- ArgoCD health check for rds.aws.upbound.io/Instance (an RDS instance managed by paved). Lua 5.1.
-- Suspended when the Instance is paused (Synced False, reason ReconcilePaused). Progressing while
-- it only waits (Synced False for a referenced object, its master password Secret, RDS or an AWS
-- retry: ReferenceNotReady, PasswordUnavailable, WaitingForRDS, DependencyViolation,
-- AWSUnavailable). Degraded when Synced is otherwise False (paved cannot reconcile it with AWS
-- until a person changes something: the message says why). Healthy only when Ready is True and
-- Synced is not False, Progressing otherwise.
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
local waiting = {
  ReferenceNotReady = true,
  PasswordUnavailable = true,
  WaitingForRDS = true,
  DependencyViolation = true,
  AWSUnavailable = true,
}
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
elseif synced ~= nil and synced.status == "False" and synced.reason ~= nil and waiting[synced.reason] then
  hs.status = "Progressing"
  hs.message = text(synced, "Waiting")
elseif synced ~= nil and synced.status == "False" then
  hs.status = "Degraded"
  hs.message = text(synced, "Synced is False")
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Available")
elseif ready ~= nil then
  hs.status = "Progressing"
  hs.message = text(ready, "Ready is " .. tostring(ready.status))
else
  hs.status = "Progressing"
  hs.message = "Waiting for paved to reconcile the RDS instance"
end
return hs
