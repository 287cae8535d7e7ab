/**
 * Whether Redis answers, for the commands that need it right now (`runwarden enqueue`, `status`,
 * `cancel`): a bounded wait for the connection instead of ioredis's endless reconnecting, and
 * errors that name REDIS_URL (password redacted) and how to start Redis.
 */
import type { Redis } from 'ioredis';
import { RunwardenError, redactUri } from '../errors/index.js';

/** How long a command waits for Redis before it says Redis is unreachable. */
export const REDIS_CONNECT_TIMEOUT_MS = 5_000;

/** Redis could not be reached: names REDIS_URL and the way to start Redis. */
export function redisUnreachable(redisUrl: string, detail: string, after = ''): RunwardenError {
  return new RunwardenError(
    'REDIS_UNREACHABLE',
    `cannot reach Redis at REDIS_URL=${redactUri(redisUrl)} (${detail.slice(0, 200)}). ` +
      `${after}Start it: \`npm start\` brings up the local stack (MLflow, Redis and the server), or run ` +
      '`redis-server`; or point REDIS_URL at a running Redis.',
  );
}

/**
 * Resolve once `redis` is ready; reject with `unreachable` (default `redisUnreachable`) at its
 * first connection error or after `timeoutMs`, whichever comes first.
 */
export function waitForRedis(
  redis: Redis,
  redisUrl: string,
  timeoutMs = REDIS_CONNECT_TIMEOUT_MS,
  unreachable: (redisUrl: string, detail: string) => Error = redisUnreachable,
): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
      if (err) reject(unreachable(redisUrl, err.message || String(err)));
      else resolve();
    };
    const onReady = () => done();
    const onError = (err: Error) => done(err);
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    redis.on('ready', onReady);
    redis.on('error', onError);
  });
}
