/**
 * The Lua scripts that keep one listener's shared counts in Redis. Each runs atomically,
 * so a check and its take can never interleave with another process's.
 *
 * Keys of one listener (all under one hash tag, so that they live in one Redis Cluster slot):
 *   active      string  connections open across every process
 *   ips         hash    ip -> connections open from that address
 *   procs       zset    process id -> lease expiry (ms, Redis clock)
 *   held:<id>   hash    ip -> connections this process holds (its part of active and ips)
 *   rate:<ip>   string  the address's GCRA "theoretical arrival time" (µs), for the rate limit
 *
 * The invariant every script keeps: `active` and `ips` are exactly the sum of the `held:<id>`
 * hashes of the processes in `procs`. A process whose lease has run out is reaped (its held
 * counts subtracted, its entry removed) by the next script any process runs; a process that
 * finds itself no longer in `procs` (reaped, or Redis lost its data) is told so (`fresh`) and
 * re-registers what it holds with `sync`.
 *
 * Time is Redis's own clock (TIME), never the callers': leases compare instants taken on one
 * clock however far apart the proxies' clocks drift.
 */

/** Helpers shared by the scripts; the keys are the first four of every script. */
const PRELUDE = `
local active, ips, procs, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, leaseMs, ttlMs, heldPrefix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowMs = math.floor(nowUs / 1000)

-- Takes a held hash's counts out of the totals.
local function subtract(key)
  local entries = redis.call('HGETALL', key)
  local total = 0
  for i = 1, #entries, 2 do
    local n = tonumber(entries[i + 1])
    total = total + n
    if redis.call('HINCRBY', ips, entries[i], -n) <= 0 then redis.call('HDEL', ips, entries[i]) end
  end
  if total > 0 and redis.call('DECRBY', active, total) < 0 then redis.call('SET', active, 0) end
end

-- Renews this process's lease; 1 when it was not registered (its held hash is then stale,
-- not part of the totals, and is dropped).
local function enlist()
  local known = redis.call('ZSCORE', procs, id)
  if not known then redis.call('DEL', held) end
  redis.call('ZADD', procs, nowMs + leaseMs, id)
  if known then return 0 end
  return 1
end

-- Reaps processes whose lease ran out (a few per call: the work of one script stays small).
local function reap()
  local dead = redis.call('ZRANGEBYSCORE', procs, '-inf', nowMs, 'LIMIT', 0, 16)
  for _, pid in ipairs(dead) do
    subtract(heldPrefix .. pid)
    redis.call('DEL', heldPrefix .. pid)
    redis.call('ZREM', procs, pid)
  end
end

-- Moves n connections from ip into (n > 0) or out of (n < 0) this process's part.
local function add(ip, n)
  if n == 0 then return end
  redis.call('INCRBY', active, n)
  if redis.call('HINCRBY', ips, ip, n) <= 0 then redis.call('HDEL', ips, ip) end
  if redis.call('HINCRBY', held, ip, n) <= 0 then redis.call('HDEL', held, ip) end
end

-- Idle keys go away on their own once no process uses the listener any more. The held hash
-- lives longer than the shared keys so that it is never gone while its counts are still in them.
local function touch()
  redis.call('PEXPIRE', active, ttlMs)
  redis.call('PEXPIRE', ips, ttlMs)
  redis.call('PEXPIRE', procs, ttlMs)
  redis.call('PEXPIRE', held, ttlMs * 2)
end

local function count()
  return tonumber(redis.call('GET', active) or '0')
end
`;

/**
 * Check-and-take. KEYS[5] = the address's rate key. ARGV[5..] = ip, max_connections,
 * max_connections_per_ip (-1: none), rate interval µs (0: no rate limit), rate burst µs.
 * Answers { verdict, fresh, active } with verdict 1 admitted, 2 rate_limit, 3 limit.
 * The order of the rules is the local one: rate limit, per-IP limit, listener limit.
 */
export const ACQUIRE = `${PRELUDE}
local ip, maxConnections, maxPerIp = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local intervalUs, burstUs = tonumber(ARGV[8]), tonumber(ARGV[9])
local fresh = enlist()
reap()
touch()
if intervalUs > 0 then
  local tat = tonumber(redis.call('GET', KEYS[5]) or '0')
  if tat < nowUs then tat = nowUs end
  if tat - nowUs > burstUs then return { 2, fresh, count() } end
  tat = tat + intervalUs
  redis.call('SET', KEYS[5], string.format('%d', tat), 'PX', math.ceil((tat - nowUs) / 1000) + 1)
end
if maxPerIp >= 0 and tonumber(redis.call('HGET', ips, ip) or '0') >= maxPerIp then return { 3, fresh, count() } end
local n = count()
if maxConnections >= 0 and n >= maxConnections then return { 3, fresh, n } end
add(ip, 1)
return { 1, fresh, n + 1 }
`;

/**
 * Releases and corrections, batched. ARGV[5..] = ip, delta, ip, delta, ... A release never
 * takes more than this process holds for the address: after a reaping the totals no longer
 * contain its connections, and giving them back again would make the counts drift low.
 * With no pairs it is the lease renewal. Answers { fresh, active }.
 */
export const ADJUST = `${PRELUDE}
local fresh = enlist()
reap()
for i = 5, #ARGV, 2 do
  local ip, delta = ARGV[i], tonumber(ARGV[i + 1])
  if delta < 0 then
    local have = tonumber(redis.call('HGET', held, ip) or '0')
    if -delta > have then delta = -have end
  end
  add(ip, delta)
end
touch()
return { fresh, count() }
`;

/**
 * Replaces this process's part with what it knows it holds (after a reconnect, a reaping, or
 * any reply it could not see). ARGV[5] = '1' to leave instead (shutdown): the part is removed
 * and the process unregistered. ARGV[6..] = ip, count, ... Answers the new active count.
 */
export const SYNC = `${PRELUDE}
if redis.call('ZSCORE', procs, id) then subtract(held) end
redis.call('DEL', held)
if ARGV[5] == '1' then
  redis.call('ZREM', procs, id)
  return count()
end
redis.call('ZADD', procs, nowMs + leaseMs, id)
reap()
for i = 6, #ARGV, 2 do add(ARGV[i], tonumber(ARGV[i + 1])) end
touch()
return count()
`;
