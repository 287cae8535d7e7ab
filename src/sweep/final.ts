/**
 * A sweep's end, decided once in Redis: the parent job (ending it by its children's results) and a
 * cancel both want to close the parent run, and each used to check, then act. Now each proposes
 * its outcome with one `SET NX` on the sweep's final key; the first one stands, and the loser
 * follows it (the parent job closes KILLED if the cancel won; a cancel that lost changes nothing).
 */
import type { Redis } from 'ioredis';
import { RECORD_TTL_SECONDS } from '../queue/keys.js';

export type SweepEnd = { kind: 'end' } | { kind: 'cancelled'; reason: string };

export const sweepFinalKey = (bullPrefix: string, sweepId: string) => `${bullPrefix}:sweep-final:${sweepId}`;

/** Propose `want` as the sweep's end; returns the end that stands (ours, or the one decided first). */
export async function decideSweepEnd(redis: Redis, key: string, want: SweepEnd): Promise<SweepEnd> {
  if ((await redis.set(key, JSON.stringify(want), 'EX', RECORD_TTL_SECONDS, 'NX')) === 'OK') return want;
  const cur = await redis.get(key);
  return cur ? (JSON.parse(cur) as SweepEnd) : decideSweepEnd(redis, key, want);
}
