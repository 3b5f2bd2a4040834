-- Argo CD health check for ferry.dev/CrossAccountTransfer.
--
-- Install it under the argocd-cm key
--   resource.customizations.health.ferry.dev_CrossAccountTransfer
-- (integrations/argocd/render-cm.sh writes argocd-cm-patch.yaml from this file).
--
-- It reads the status contract of the Ferry operator:
--   spec.suspend or phase Suspended            -> Suspended
--   no status, or observedGeneration behind    -> Progressing (waiting for the controller)
--   ferry.dev/run not yet observedRunToken     -> Progressing (the run request is unanswered)
--   condition Stalled=True                     -> Degraded (retrying cannot fix it)
--   condition Ready=True                       -> Healthy
--   anything else                              -> Progressing, with the Ready (or
--                                                 Reconciling) message, phase and progress
--
-- Argo CD runs it without the string and math libraries: only plain Lua and `..`.

local hs = {}

-- The condition of this type, or nil.
local function condition(status, wanted)
  if status == nil or type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == wanted then
      return c
    end
  end
  return nil
end

-- True when the condition is there with status "True".
local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- A non-empty string, or nil.
local function text(value)
  if value == nil then
    return nil
  end
  local s = tostring(value)
  if s == "" then
    return nil
  end
  return s
end

-- "Reason: message" of a condition, or whichever of the two is set.
local function describe(c)
  if c == nil then
    return nil
  end
  local reason = text(c.reason)
  local message = text(c.message)
  if reason ~= nil and message ~= nil then
    return reason .. ": " .. message
  end
  return message or reason
end

-- "Phase (42%)" from status.phase and the progress of the execution.
local function where(status)
  local phase = text(status.phase)
  local progress = text(status.progress)
  local execution = status.execution
  if progress == nil and type(execution) == "table" and execution.percentDone ~= nil
      and (execution.status == "LAUNCHING" or execution.status == "PREPARING"
        or execution.status == "TRANSFERRING" or execution.status == "VERIFYING") then
    progress = tostring(execution.percentDone) .. "%"
  end
  if phase ~= nil and progress ~= nil then
    return phase .. " (" .. progress .. ")"
  end
  return phase or progress
end

-- Joins the non-nil parts with ": ".
local function join(a, b, fallback)
  if a ~= nil and b ~= nil then
    return a .. ": " .. b
  end
  return a or b or fallback
end

local spec = obj.spec or {}
local status = obj.status
local metadata = obj.metadata or {}

-- 1. Suspended: Ferry starts no execution and the DataSync schedule is disabled.
if spec.suspend == true or (type(status) == "table" and status.phase == "Suspended") then
  hs.status = "Suspended"
  local message = nil
  if type(status) == "table" and status.phase == "Suspended" then
    local ready = condition(status, "Ready")
    message = text(ready and ready.message)
  end
  hs.message = message
    or "suspended (spec.suspend is true): Ferry starts no execution and the DataSync schedule is disabled"
  return hs
end

-- 2. The controller has not seen the current spec yet.
if type(status) ~= "table" then
  hs.status = "Progressing"
  hs.message = "waiting for the controller: no status yet"
  return hs
end
local generation = metadata.generation
local observed = status.observedGeneration
if observed == nil or (generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "waiting for the controller to observe generation " .. tostring(generation)
  else
    hs.message = "waiting for the controller"
  end
  return hs
end

-- A new ferry.dev/run value the controller has not answered yet: the phase is still the
-- previous run's (status.observedRunToken is the value the status describes).
local annotations = metadata.annotations
local token = nil
if type(annotations) == "table" then
  token = text(annotations["ferry.dev/run"])
end
if token ~= nil and text(status.observedRunToken) ~= token then
  hs.status = "Progressing"
  hs.message = "waiting for the controller to answer the run request ferry.dev/run=" .. token
  return hs
end

-- 3. Stalled: only what retrying cannot fix (invalid spec, access denied for good, a failed
-- execution). Ferry runs it again after a spec change or a new ferry.dev/run token.
local stalled = condition(status, "Stalled")
if isTrue(stalled) then
  hs.status = "Degraded"
  local message = describe(stalled)
  local execution = status.execution
  if message == nil and type(execution) == "table" then
    message = join(text(execution.errorCode), text(execution.errorDetail), nil)
  end
  hs.message = message or "stalled"
  return hs
end

-- 4. Ready: every AWS resource is in place and nothing is running or failed.
local ready = condition(status, "Ready")
if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = join(text(status.phase), text(ready.message), "ready")
  return hs
end

-- 5. Anything else is work in progress: provisioning, awaiting Account B, transferring.
hs.status = "Progressing"
local detail = text(ready and ready.message)
if detail == nil then
  detail = text(ready and ready.reason)
end
if detail == nil then
  local reconciling = condition(status, "Reconciling")
  detail = describe(reconciling)
end
hs.message = join(where(status), detail, "reconciling")
return hs
