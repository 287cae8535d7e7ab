/**
 * A sweep's concurrency cap, across every worker: a Redis sorted set per sweep whose members are
 * the children holding a slot, scored by when their hold expires (Redis's own clock). Acquiring
 * is one Lua script (drop expired holds, keep or take a slot if one is free), so two workers never
 * both take the last slot. A holder renews its slot like a lease while its child runs; a worker
 * that dies stops renewing and its slot frees itself after `ttlMs`.
 */
import type { Redis } from 'ioredis';

const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ttl = tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl * 4)
  return 1
end
return 0
`;

export const slotKey = (prefix: string, sweepId: string) => `${prefix}:sweep-slots:${sweepId}`;

export interface SlotHold {
  /** False once a renewal found the slot gone (expired and taken): the holder should stop. */
  held(): boolean;
  release(): Promise<void>;
}

/** Take one of the sweep's `cap` slots for `childId`; undefined when none is free. */
export async function acquireSlot(
  redis: Redis,
  key: string,
  childId: string,
  cap: number,
  ttlMs: number,
): Promise<SlotHold | undefined> {
  const got = (await redis.eval(ACQUIRE, 1, key, childId, String(cap), String(ttlMs))) as number;
  if (got !== 1) return undefined;
  let held = true;
  // Renew well inside the hold; a renewal that finds the slot taken by someone else ends the hold.
  const timer = setInterval(
    () => {
      redis
        .eval(ACQUIRE, 1, key, childId, String(cap), String(ttlMs))
        .then((r) => {
          if (r !== 1) held = false;
        })
        .catch(() => undefined);
    },
    Math.max(200, Math.floor(ttlMs / 3)),
  );
  timer.unref();
  return {
    held: () => held,
    release: async () => {
      clearInterval(timer);
      await redis.zrem(key, childId).catch(() => undefined);
    },
  };
}

/** Children holding a slot now (expired holds excluded). */
export async function slotHolders(redis: Redis, key: string): Promise<string[]> {
  const t = await redis.time();
  const now = Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000);
  return redis.zrangebyscore(key, now, '+inf');
}

/** Children of a sweep waiting for a slot, each with how many times it has found none free. */
export const slotWaitsKey = (prefix: string, sweepId: string) => `${prefix}:sweep-slot-waits:${sweepId}`;

/** Longest a waiting child stays away before it asks for a slot again. */
export const SLOT_WAIT_MAX_MS = 30_000;

/**
 * How long a child that found no free slot for the `n`th time (1, 2, ...) waits before asking
 * again: 0.5 s doubling, at most `SLOT_WAIT_MAX_MS`, ±25 % jitter. A slot freed meanwhile does not
 * wait for it: the releasing worker promotes one waiting child (`promoteWaiter`).
 */
export function slotWaitMs(n: number, random = Math.random): number {
  const base = Math.min(SLOT_WAIT_MAX_MS, 500 * 2 ** Math.min(Math.max(n, 1) - 1, 10));
  return Math.round(base * (0.75 + random() * 0.5));
}
