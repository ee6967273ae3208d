-- Tests for the ArgoCD health checks in health/, with the Lua level ArgoCD runs (5.1):
--   lua5.1 deploy/argocd/health_test.lua        (exit status 0 when every case passes)
-- ArgoCD evaluates a health script with the live object in the global `obj` and reads the table it
-- returns ({status = ..., message = ...}); this does the same.

local dir = string.match(arg[0], "^(.*)/[^/]*$") or "."
local failures, cases = 0, 0

local function cond(type_, status, reason, message)
  return {type = type_, status = status, reason = reason, message = message,
          lastTransitionTime = "2026-01-01T00:00:00Z"}
end

local function object(api_version, kind, conditions)
  local o = {apiVersion = api_version, kind = kind,
             metadata = {name = "my-app-db", namespace = "my-team"}, spec = {}}
  if conditions ~= nil then
    o.status = {conditions = conditions}
  end
  return o
end

local function run(script, o)
  local chunk, err = loadfile(script)
  if chunk == nil then
    error("cannot load " .. script .. ": " .. tostring(err))
  end
  obj = o -- luacheck: ignore (ArgoCD's contract: a global)
  local ok, hs = pcall(chunk)
  obj = nil
  if not ok then
    error(script .. " raised: " .. tostring(hs))
  end
  return hs
end

local function check(name, script, o, want_status, want_message)
  cases = cases + 1
  local ok, hs = pcall(run, script, o)
  local problem
  if not ok then
    problem = hs
  elseif type(hs) ~= "table" then
    problem = "returned " .. type(hs) .. ", not a table"
  elseif hs.status ~= want_status then
    problem = "status " .. tostring(hs.status) .. ", want " .. want_status .. " (message " .. tostring(hs.message) .. ")"
  elseif want_message ~= nil and hs.message ~= want_message then
    problem = "message " .. string.format("%q", tostring(hs.message)) .. ", want " .. string.format("%q", want_message)
  elseif type(hs.message) ~= "string" or hs.message == "" then
    problem = "no message"
  end
  if problem ~= nil then
    failures = failures + 1
    print("FAIL " .. name .. ": " .. problem)
  else
    print("ok   " .. name .. " -> " .. hs.status .. ": " .. hs.message)
  end
end

local targets = {
  {file = "database.example.com_PostgreSQLInstance.lua", apiVersion = "database.example.com/v1alpha1", kind = "PostgreSQLInstance"},
  {file = "rds.aws.upbound.io_Instance.lua", apiVersion = "rds.aws.upbound.io/v1beta1", kind = "Instance"},
}

for _, t in ipairs(targets) do
  local script = dir .. "/health/" .. t.file
  local function o(conditions) return object(t.apiVersion, t.kind, conditions) end
  local p = t.kind .. ": "

  check(p .. "Ready True, Synced True", script,
    o({cond("Synced", "True", "ReconcileSuccess", ""), cond("Ready", "True", "Available", "RDS instance is available")}),
    "Healthy", "RDS instance is available")
  check(p .. "Ready True without a message", script,
    o({cond("Ready", "True", "Available", nil)}), "Healthy", "Available")
  check(p .. "Synced False + Ready True is Degraded, never Healthy", script,
    o({cond("Ready", "True", "Available", "was available"),
       cond("Synced", "False", "ReconcileError", "ModifyDBInstance: InvalidParameterCombination")}),
    "Degraded", "ModifyDBInstance: InvalidParameterCombination")
  check(p .. "Synced False alone", script,
    o({cond("Synced", "False", "CompositionNotFound", "Composition postgresql-aws not found")}),
    "Degraded", "Composition postgresql-aws not found")
  check(p .. "Synced False without a message shows the reason", script,
    o({cond("Synced", "False", "ReconcileError", "")}), "Degraded", "ReconcileError")
  check(p .. "no status", script, o(nil), "Progressing", nil)
  check(p .. "status without conditions", script, o({}), "Progressing", nil)
  check(p .. "Creating", script,
    o({cond("Synced", "True", "ReconcileSuccess", ""), cond("Ready", "False", "Creating", "RDS reports status creating")}),
    "Progressing", "RDS reports status creating")
  check(p .. "Ready Unknown", script,
    o({cond("Ready", "Unknown", "Pending", "waiting for the first observation")}),
    "Progressing", "waiting for the first observation")

  -- Paused: Suspended, whatever Ready says.
  check(p .. "paused", script,
    o({cond("Synced", "False", "ReconcilePaused", "crossplane.io/paused is \"true\""), cond("Ready", "True", "Available", "")}),
    "Suspended", "crossplane.io/paused is \"true\"")

  -- Exhaustively: Healthy exactly when Ready is True and Synced is not False; Degraded exactly
  -- when Synced is False.
  local statuses = {"absent", "True", "False", "Unknown"}
  for _, r in ipairs(statuses) do
    for _, s in ipairs(statuses) do
      local conditions = {}
      if r ~= "absent" then table.insert(conditions, cond("Ready", r, "R", "ready message")) end
      if s ~= "absent" then table.insert(conditions, cond("Synced", s, "S", "synced message")) end
      local want = "Progressing"
      if s == "False" then
        want = "Degraded"
      elseif r == "True" then
        want = "Healthy"
      end
      check(p .. "Ready " .. r .. ", Synced " .. s, script, o(conditions), want, nil)
    end
  end
end

-- The claim: what its composed resources' state makes of it.
do
  local script = dir .. "/health/database.example.com_PostgreSQLInstance.lua"
  local function o(conditions) return object("database.example.com/v1alpha1", "PostgreSQLInstance", conditions) end
  local blocked = "rds-instance (Instance my-team/my-app-db-rds-instance): AWSError: CreateDBInstance failed: InvalidParameterValue: Invalid storage size"
  local refused = "rds-instance (Instance my-team/x): ImmutableField: m"
  local waiting = "rds-instance (Instance my-team/x): ReferenceNotReady: waiting for SubnetGroup net"
  local creating = "rds-instance: Creating: RDS status is creating"
  local foreign = "Secret my-team/c exists and is not owned by this claim"
  local success = cond("Synced", "True", "ReconcileSuccess", "")
  local available = cond("Ready", "True", "Available", "")
  -- {case, conditions, status, message}
  for _, c in ipairs({
    {"a composed resource is blocked",
     {cond("Synced", "False", "ComposedResourceError", blocked), cond("Ready", "False", "Blocked", blocked)}, "Degraded", blocked},
    {"a ready database whose change is refused",
     {cond("Synced", "False", "ComposedResourceError", refused), available}, "Degraded", refused},
    {"Ready Blocked alone", {success, cond("Ready", "False", "Blocked", "b")}, "Degraded", "b"},
    {"waiting for a reference",
     {cond("Synced", "False", "Waiting", waiting), cond("Ready", "False", "Waiting", "w")}, "Progressing", waiting},
    {"Ready Waiting", {success, cond("Ready", "False", "Waiting", "w")}, "Progressing", "w"},
    {"creating", {success, cond("Ready", "False", "Creating", creating)}, "Progressing", creating},
    {"its connection Secret cannot be written",
     {cond("Synced", "False", "ReconcileError", foreign), available}, "Degraded", foreign},
  }) do
    check("claim: " .. c[1], script, o(c[2]), c[3], c[4])
  end
end

-- The Instance: reasons that only wait are Progressing, the others Degraded.
do
  local script = dir .. "/health/rds.aws.upbound.io_Instance.lua"
  local function o(conditions) return object("rds.aws.upbound.io/v1beta1", "Instance", conditions) end
  for _, r in ipairs({"ReferenceNotReady", "PasswordUnavailable", "WaitingForRDS", "DependencyViolation", "AWSUnavailable"}) do
    check("Instance: Synced False " .. r .. " waits", script,
      o({cond("Synced", "False", r, "waits"), cond("Ready", "False", "Unavailable", "u")}), "Progressing", "waits")
  end
  for _, r in ipairs({"ImmutableField", "AWSError", "ProviderConfigNotAllowed", "AdoptionNotAllowed", "InvalidSpec"}) do
    check("Instance: Synced False " .. r .. " is blocked", script,
      o({cond("Synced", "False", r, "blocked"), cond("Ready", "True", "Available", "")}), "Degraded", "blocked")
  end
end

print(string.format("%d cases, %d failed", cases, failures))
if failures > 0 then
  os.exit(1)
end
