/**
 * The review store's atomic steps as Redis Lua scripts, so two processes can never both create an
 * item, both decide one, or both hold its apply lock: create-if-absent, claim-the-decision (the
 * exactly-once point), mark-applied, and a compare-and-set lock (take, renew, release).
 */
import type { Redis } from 'ioredis';

/**
 * KEYS: item, pending index, pending index of the item's mode. ARGV: item JSON, createdAt, id.
 * Returns 1 when created, 0 when it existed.
 */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'item', ARGV[1], 'state', 'pending')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return 1`;

/**
 * KEYS: item, pending index, decided index, counts, pending index of the item's mode.
 * ARGV: decision JSON, id, verdict.
 * Returns {'ok'}, {'missing'} or {'taken', <existing decision JSON>}.
 */
const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local cur = redis.call('HGET', KEYS[1], 'decision')
if cur then return {'taken', cur} end
local created = cjson.decode(redis.call('HGET', KEYS[1], 'item'))['createdAt']
redis.call('HSET', KEYS[1], 'decision', ARGV[1], 'state', 'decided')
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZADD', KEYS[3], created, ARGV[2])
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
return {'ok'}`;

/** KEYS: item, decided index, applied index. ARGV: outcome JSON, id. */
const APPLIED = `
if redis.call('HGET', KEYS[1], 'state') ~= 'decided' then return 0 end
local created = cjson.decode(redis.call('HGET', KEYS[1], 'item'))['createdAt']
redis.call('HSET', KEYS[1], 'outcome', ARGV[1], 'state', 'applied')
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], created, ARGV[2])
return 1`;

/** KEYS: lock. ARGV: owner, ms. Take when free or already ours (renew). */
const LOCK = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** KEYS: item, decided index, failed index. ARGV: reason, id. Decided → failed (a non-transient apply error). */
const FAILED = `
if redis.call('HGET', KEYS[1], 'state') ~= 'decided' then return 0 end
local created = cjson.decode(redis.call('HGET', KEYS[1], 'item'))['createdAt']
redis.call('HSET', KEYS[1], 'failure', ARGV[1], 'state', 'failed')
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], created, ARGV[2])
return 1`;

/** KEYS: lock. ARGV: owner. */
const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export function reviewScripts(redis: Redis) {
  const run = (script: string, keys: string[], args: (string | number)[]) =>
    redis.eval(script, keys.length, ...keys, ...args);
  return {
    create: async (keys: [string, string, string], json: string, createdAt: number, id: string) =>
      (await run(CREATE, keys, [json, createdAt, id])) === 1,
    claim: async (
      keys: [string, string, string, string, string],
      decision: string,
      id: string,
      verdict: string,
    ) => (await run(CLAIM, keys, [decision, id, verdict])) as [string, string?],
    applied: async (keys: [string, string, string], outcome: string, id: string) =>
      (await run(APPLIED, keys, [outcome, id])) === 1,
    lock: async (key: string, owner: string, ms: number) => (await run(LOCK, [key], [owner, ms])) === 1,
    failed: async (keys: [string, string, string], reason: string, id: string) =>
      (await run(FAILED, keys, [reason, id])) === 1,
    held: async (key: string, owner: string) => (await redis.get(key)) === owner,
    unlock: async (key: string, owner: string) => {
      await run(UNLOCK, [key], [owner]);
    },
  };
}
