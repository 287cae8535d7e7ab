/**
 * The review store as the MCP server uses it: built on first use (so the MLflow tools work without
 * Redis), every call first waits (bounded) for Redis, and a Redis that cannot be reached becomes a
 * `RedisUnreachableError` saying how to start it instead of a hang or a bare socket error. The
 * store gets its own task queue, which a `rework` verdict uses to queue the task again.
 */
import type { Redis } from 'ioredis';
import { RunwardenError } from '../errors/index.js';
import type { Logger } from '../log.js';
import { waitForRedis } from '../queue/redis-reach.js';
import type { TaskQueue } from '../queue/task-queue.js';
import type { ReviewStore } from '../review/index.js';
import type { ReviewStoreApi } from './context.js';
import { RedisUnreachableError } from './task-events.js';

export interface LazyReviewStoreOptions {
  /** Builds the real store on first use, with the task queue it may enqueue rework on. */
  create: () => { store: ReviewStore; tasks: TaskQueue };
  redisUrl: string;
  logger: Logger;
  /** How long a call waits for Redis before saying it is unreachable (default 3000 ms). */
  connectTimeoutMs?: number;
}

export class LazyReviewStore implements ReviewStoreApi {
  private built?: { store: ReviewStore; tasks: TaskQueue };
  private closed = false;

  constructor(private readonly opts: LazyReviewStoreOptions) {}

  get(id: string): ReturnType<ReviewStore['get']> {
    return this.call((s) => s.get(id));
  }

  list(opts?: Parameters<ReviewStore['list']>[0]): ReturnType<ReviewStore['list']> {
    return this.call((s) => s.list(opts));
  }

  evidence(id: string): ReturnType<ReviewStore['evidence']> {
    return this.call((s) => s.evidence(id));
  }

  decide(id: string, d: Parameters<ReviewStore['decide']>[1]): ReturnType<ReviewStore['decide']> {
    return this.call((s) => s.decide(id, d));
  }

  counts(): ReturnType<ReviewStore['counts']> {
    return this.call((s) => s.counts());
  }

  private async call<T>(fn: (s: ReviewStore) => Promise<T>): Promise<T> {
    if (this.closed) throw new RunwardenError('CONFIG_ERROR', 'the MCP server is shutting down');
    this.built ??= this.opts.create();
    const { store } = this.built;
    await this.ready(store.redis);
    try {
      return await fn(store);
    } catch (err) {
      // The store's connection fails fast (no offline queue): a non-runwarden error while it is
      // not ready is Redis going away mid-call.
      if (!(err instanceof RunwardenError) && store.redis.status !== 'ready')
        throw new RedisUnreachableError(this.opts.redisUrl, (err as Error).message);
      throw err;
    }
  }

  /** Resolve once the connection is ready; reject at its next error or after the timeout. */
  private ready(redis: Redis): Promise<void> {
    return waitForRedis(
      redis,
      this.opts.redisUrl,
      this.opts.connectTimeoutMs ?? 3_000,
      (url, detail) => new RedisUnreachableError(url, detail),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    const b = this.built;
    if (!b) return;
    const bounded = (p: Promise<unknown>) =>
      Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 3_000).unref())]);
    await Promise.all([bounded(b.store.close()), bounded(b.tasks.close())]);
    b.tasks.redis.disconnect();
  }
}
