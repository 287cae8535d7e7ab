/**
 * The MCP server's side of the task system: a task queue that connects to Redis only when a task
 * tool first needs it (so the MLflow tools work without Redis, and a Redis outage becomes an error
 * saying how to start it instead of a hang), one shared pub/sub subscriber fanning live task events
 * out to readers, and `GET /tasks/:id/events`, a Server-Sent Events stream of one task: a snapshot,
 * then status/progress/metric/log events, then `end` with the final state. Pub/sub only makes the
 * stream live; polling the queue every 2 s keeps it correct when a message is lost.
 */
import type http from 'node:http';
import { Redis } from 'ioredis';
import { RunwardenError, redactUri } from '../errors/index.js';
import type { Logger } from '../log.js';
import { keys } from '../queue/keys.js';
import { waitForRedis } from '../queue/redis-reach.js';
import { isTerminal, type TaskInfo, type TaskQueue } from '../queue/task-queue.js';
import { listTemplates, type Template } from '../queue/templates.js';
import type { TaskQueueApi } from './context.js';

/** A live event the worker publishes on `<prefix>:events:<taskId>`. */
export type TaskEventMessage =
  | { type: 'progress'; fraction: number; message?: string; phase?: string; runId?: string }
  | { type: 'metric'; key: string; value: number; step: number }
  | { type: 'log'; stream: 'stdout' | 'stderr'; line: string }
  | { type: 'status'; state: string; reason?: string; runId?: string };

const EVENT_TYPES = new Set(['progress', 'metric', 'log', 'status']);

export interface TaskEventsApi {
  get: TaskQueueApi['get'];
  /** Listen to a task's live events; resolves to the function that stops listening. */
  subscribe(taskId: string, listener: (e: TaskEventMessage) => void): Promise<() => void>;
}

/** Redis could not be reached: says which URL and how to bring Redis up. */
export class RedisUnreachableError extends RunwardenError {
  constructor(redisUrl: string, detail: string) {
    super(
      'REDIS_UNREACHABLE',
      `Redis at ${redactUri(redisUrl)} is unreachable (${detail}); the task tools need it (the MLflow tools do not). ` +
        'Start it (`redis-server`, or `docker compose up -d redis`) or point REDIS_URL at a running one, then call again.',
    );
  }
}

const CONNECTION_ERROR =
  /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH|Stream isn't writeable|Connection is closed|max retries/i;

function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    CONNECTION_ERROR.test(err.message) ||
    (typeof code === 'string' && CONNECTION_ERROR.test(code))
  );
}

export interface LazyTaskQueueOptions {
  /** Builds the real queue on first use (e.g. `() => taskQueueFromConfig(cfg, client)`). */
  create: () => TaskQueue;
  redisUrl: string;
  prefix: string;
  tasksDir: string;
  logger: Logger;
  /** How long a call waits for Redis to answer before saying it is unreachable (default 3000 ms). */
  connectTimeoutMs?: number;
}

/**
 * The TaskQueue the MCP server uses: built on first use, every call first waits (bounded) for
 * Redis, and connection failures become a `RedisUnreachableError`. Templates are read from disk
 * and need no Redis.
 */
export class LazyTaskQueue implements TaskQueueApi, TaskEventsApi {
  private queue?: TaskQueue;
  private subscriber?: Redis;
  private readonly listeners = new Map<string, Set<(e: TaskEventMessage) => void>>();
  private readonly keys: ReturnType<typeof keys>;
  private closed = false;

  constructor(private readonly opts: LazyTaskQueueOptions) {
    this.keys = keys(opts.prefix);
  }

  templates(): Template[] {
    return listTemplates(this.opts.tasksDir);
  }

  enqueue(spec: unknown): ReturnType<TaskQueue['enqueue']> {
    return this.call((q) => q.enqueue(spec));
  }

  enqueueSweep(spec: unknown, opts?: { dryRun?: boolean }): ReturnType<TaskQueue['enqueueSweep']> {
    return this.call((q) => q.enqueueSweep(spec, opts));
  }

  get(taskId: string): ReturnType<TaskQueue['get']> {
    return this.call((q) => q.get(taskId));
  }

  list(opts?: Parameters<TaskQueue['list']>[0]): ReturnType<TaskQueue['list']> {
    return this.call((q) => q.list(opts));
  }

  cancel(taskId: string, reason?: string): ReturnType<TaskQueue['cancel']> {
    return this.call((q) => q.cancel(taskId, reason));
  }

  private async call<T>(fn: (q: TaskQueue) => Promise<T>): Promise<T> {
    if (this.closed) throw new RunwardenError('CONFIG_ERROR', 'the MCP server is shutting down');
    if (!this.queue) {
      this.queue = this.opts.create();
      // BullMQ re-emits connection errors; without a listener it prints each one to stderr.
      this.queue.queue.on('error', (err) => this.opts.logger.debug({ err: err.message }, 'task queue error'));
    }
    await this.ready(this.queue.redis);
    try {
      return await fn(this.queue);
    } catch (err) {
      if (!(err instanceof RunwardenError) && isConnectionError(err))
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

  async subscribe(taskId: string, listener: (e: TaskEventMessage) => void): Promise<() => void> {
    const channel = this.keys.events(taskId);
    if (!this.subscriber) {
      const sub = new Redis(this.opts.redisUrl, { maxRetriesPerRequest: null });
      sub.on('error', (err) => this.opts.logger.debug({ err: err.message }, 'task event subscriber error'));
      sub.on('message', (ch: string, message: string) => {
        const set = this.listeners.get(ch);
        if (!set) return;
        let e: TaskEventMessage;
        try {
          e = JSON.parse(message) as TaskEventMessage;
        } catch {
          return;
        }
        if (!e || !EVENT_TYPES.has(e.type)) return;
        for (const l of set) l(e);
      });
      this.subscriber = sub;
    }
    const sub = this.subscriber;
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      // Bounded: with Redis away the stream still works by polling, and resubscribes on reconnect.
      await Promise.race([
        sub.subscribe(channel).catch(() => undefined),
        new Promise((r) => setTimeout(r, 2_000).unref()),
      ]);
    }
    const listeners = set;
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (!listeners.size && this.listeners.get(channel) === listeners) {
        this.listeners.delete(channel);
        void sub.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscriber?.disconnect();
    this.listeners.clear();
    const q = this.queue;
    if (!q) return;
    await Promise.race([q.close(), new Promise((r) => setTimeout(r, 2_000).unref())]);
    q.redis.disconnect();
  }
}

/** The task as the SSE stream shows it: TaskInfo plus the latest run's UI link. */
function withRunUrl(info: TaskInfo): TaskInfo & { run_url?: string } {
  const url = info.runs.at(-1)?.url;
  return url ? { ...info, run_url: url } : info;
}

export interface TaskStreamOptions {
  logger: Logger;
  /** How often the task is re-read (default 2000 ms). */
  pollMs?: number;
  /** Comment heartbeat interval (default 15 000 ms). */
  heartbeatMs?: number;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * `GET /tasks/:id/events`: `snapshot` (TaskInfo), then `status` / `progress` / `metric` / `log`
 * as they happen, then `end` (the final TaskInfo) and close. 404 JSON for an unknown task, 503 when
 * Redis is unreachable. A `: ping` comment keeps idle connections open.
 */
export async function streamTaskEvents(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  taskId: string,
  tasks: TaskEventsApi,
  opts: TaskStreamOptions,
): Promise<void> {
  let info: TaskInfo | undefined;
  try {
    info = await tasks.get(taskId);
  } catch (err) {
    if (err instanceof RunwardenError) return sendJson(res, 503, { error: err.message });
    throw err;
  }
  if (!info)
    return sendJson(res, 404, {
      error: `no task ${taskId}: list_tasks (MCP) or runwarden status shows the known tasks`,
    });

  let done = false;
  const timers: NodeJS.Timeout[] = [];
  let unsubscribe: () => void = () => undefined;
  const cleanup = () => {
    done = true;
    for (const t of timers) clearTimeout(t);
    unsubscribe();
  };
  req.on('close', cleanup);
  res.on('close', cleanup);

  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const write = (event: string, data: unknown) => {
    if (!done) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const finish = (final: TaskInfo) => {
    if (done) return;
    write('end', withRunUrl(final));
    cleanup();
    res.end();
  };

  write('snapshot', withRunUrl(info));
  if (isTerminal(info.state)) return finish(info);

  let last = info;
  let polledState = info.state;
  /** The last state told to the reader, by either source, so a state is announced once. */
  let announced: string = info.state;
  let polling = false;
  const poll = async () => {
    if (polling || done) return;
    polling = true;
    try {
      const now = await tasks.get(taskId);
      if (done) return;
      if (!now) return finish(last); // removed meanwhile: its last known state is the end
      last = now;
      if (now.state !== polledState) {
        polledState = now.state;
        if (now.state !== announced) {
          announced = now.state;
          write('status', { type: 'status', state: now.state, reason: now.reason });
        }
      }
      if (isTerminal(now.state)) finish(now);
    } catch (err) {
      opts.logger.debug({ err: (err as Error).message, task: taskId }, 'task stream poll failed');
    } finally {
      polling = false;
    }
  };

  unsubscribe = await tasks.subscribe(taskId, (e) => {
    if (done) return;
    write(e.type, e);
    if (e.type === 'status') {
      announced = e.state;
      // The job settles in BullMQ just after the worker says so: look again soon.
      if (isTerminal(e.state as TaskInfo['state']))
        for (const ms of [150, 750]) timers.push(setTimeout(() => void poll(), ms));
    }
  });
  if (done) return unsubscribe();

  const every = (ms: number, fn: () => void) => {
    const t = setInterval(fn, ms);
    timers.push(t);
  };
  every(opts.pollMs ?? 2_000, () => void poll());
  every(opts.heartbeatMs ?? 15_000, () => {
    if (!done) res.write(': ping\n\n');
  });
  void poll(); // catch what changed while subscribing
}
