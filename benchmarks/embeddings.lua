-- wrk script for benchmarks/embeddings.py: POST /v1/embeddings with short texts built here, so the
-- load generator is a C program that costs the measured cores little.
--
--   wrk -t1 -c32 -d4s -s benchmarks/embeddings.lua URL -- TAG PER_REQUEST DISTINCT
--
-- TAG makes this run's texts unlike any earlier run's; PER_REQUEST texts go in each request (one:
-- `"input": "text"`, more: a list); DISTINCT = 0 never repeats a text, N > 0 cycles through N texts
-- (after the first N requests, cache hits). Prints one line: WRK_RESULT requests duration_us errors
-- p50_us p95_us.

local words = {
  "system", "network", "model", "vector", "search", "query", "index", "server", "client", "request",
  "latency", "cache", "memory", "thread", "process", "graph", "agent", "tool", "router", "backend",
  "batch", "token", "embedding", "document", "collection", "cluster", "replica", "failover", "circuit",
  "breaker", "timeout", "retry", "budget", "signal", "metric", "trace", "log", "event", "stream",
  "channel", "voice", "room", "message", "answer", "question", "river", "mountain", "forest", "garden",
  "kitchen", "window", "morning", "evening", "winter", "summer", "quick", "slow", "bright", "quiet",
  "heavy", "light", "warm", "cold", "early", "late", "simple", "careful", "gentle", "rapid", "steady",
}

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("id", thread_count)
  table.insert(threads, thread)
end

local tag, per_request, distinct
local serial = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  tag = (args[1] or "run") .. "-" .. tostring(id)
  per_request = tonumber(args[2] or "1")
  distinct = tonumber(args[3] or "0")
end

-- The n-th text of this run: 8-12 words chosen by a generator seeded with n, then a serial number.
local function sentence(n)
  math.randomseed(n + 1)
  local parts = {}
  for i = 1, math.random(8, 12) do
    parts[i] = words[math.random(#words)]
  end
  return table.concat(parts, " ") .. " " .. tag .. "-" .. n
end

local function next_text()
  local n = serial
  serial = serial + 1
  if distinct > 0 then
    n = n % distinct
  end
  return '"' .. sentence(n) .. '"'
end

function request()
  local input
  if per_request == 1 then
    input = next_text()
  else
    local texts = {}
    for i = 1, per_request do
      texts[i] = next_text()
    end
    input = "[" .. table.concat(texts, ",") .. "]"
  end
  local body = '{"input":' .. input .. ',"model":"all-minilm"}'
  return wrk.format("POST", "/v1/embeddings", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT %d %d %d %d %d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95)
  ))
end
