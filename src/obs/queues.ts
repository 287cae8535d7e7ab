/**
 * The server's read side of the queues, for /metrics and the dashboard: the tasks queue and the
 * reviews queue (same prefix) on a Redis connection of their own, opened on first use so `serve`
 * starts and answers without Redis; and, when asked, a listener on the tasks queue's event stream
 * that turns every task that ends (`completed` or `failed` events, emitted once per task, not per
 * retried attempt) into a duration: the attempt's start and end from the task record (the BullMQ
 * job's processedOn/finishedOn when there is no record), its template and its final state.
 * Tasks that end while no server listens are not seen; each server sees every task.
 */
import { Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { keys, QUEUE_NAME } from '../queue/keys.js';
import { TaskRecords } from '../queue/records.js';

export interface FinishedTask {
  taskId: string;
  template: string;
  outcome: string;
  seconds: number;
}

export interface ObservedQueuesOptions {
  redisUrl: string;
  prefix: string;
  /** Name of the reviews queue (src/review's REVIEW_QUEUE). */
  reviewQueue: string;
  logger: Logger;
  /** Called for each task that ends while this server runs (starts the event listener). */
  onTaskFinished?: (t: FinishedTask) => void;
}

export interface ObservedQueues {
  /** The tasks and reviews queues, connecting on first call. */
  queues(): { tasks: Queue; reviews: Queue };
  /** BullMQ job counts of the tasks queue by state (may wait for Redis: bound it). */
  taskCounts(): Promise<Record<string, number>>;
  /**
   * Drop the connection and open a new one: after a read got no answer in time, the connection
   * may be dead without knowing it (a black-holed socket never errors), and would stay stuck.
   */
  reconnect(): void;
  close(): Promise<void>;
}

const COUNTED = [
  'waiting',
  'prioritized',
  'active',
  'delayed',
  'waiting-children',
  'completed',
  'failed',
] as const;

export function openObservedQueues(opts: ObservedQueuesOptions): ObservedQueues {
  const log = opts.logger;
  let redis: Redis | undefined;
  let opened: { tasks: Queue; reviews: Queue } | undefined;
  const connection = () => {
    if (!redis) {
      // Bounded per command: during an outage a command fails after one reconnect attempt
      // instead of waiting in the offline queue for Redis to come back.
      redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 1 });
      redis.on('error', (err) => log.debug({ err: err.message }, 'metrics/dashboard redis error'));
    }
    return redis;
  };
  const queues = () => {
    if (!opened) {
      const connectionOpts = { connection: connection(), prefix: keys(opts.prefix).bullPrefix };
      opened = {
        tasks: new Queue(QUEUE_NAME, connectionOpts),
        reviews: new Queue(opts.reviewQueue, connectionOpts),
      };
      for (const q of Object.values(opened))
        q.on('error', (err) => log.debug({ err: err.message, queue: q.name }, 'observed queue error'));
    }
    return opened;
  };

  let events: QueueEvents | undefined;
  let eventsRedis: Redis | undefined;
  const onTaskFinished = opts.onTaskFinished;
  if (onTaskFinished) {
    const records = () => new TaskRecords(connection(), keys(opts.prefix));
    // Its own connection: the listener blocks on the event stream.
    eventsRedis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    eventsRedis.on('error', () => undefined);
    events = new QueueEvents(QUEUE_NAME, {
      connection: eventsRedis,
      prefix: keys(opts.prefix).bullPrefix,
      // From the server's start, not from whenever the connection comes up (stream ids are ms).
      lastEventId: `${Date.now()}-0`,
    });
    events.on('error', (err) => log.debug({ err: err.message }, 'task event listener error'));
    const seen = (taskId: string, event: 'completed' | 'failed') =>
      finishedTask(taskId, event, records(), queues().tasks).then(
        (t) => t && onTaskFinished(t),
        (err: Error) => log.debug({ err: err.message, taskId }, 'could not read a finished task'),
      );
    events.on('completed', ({ jobId }) => void seen(jobId, 'completed'));
    events.on('failed', ({ jobId }) => void seen(jobId, 'failed'));
  }

  return {
    queues,
    taskCounts: () => queues().tasks.getJobCounts(...COUNTED),
    reconnect: () => redis?.disconnect(true),
    async close() {
      const closing: Promise<unknown>[] = [];
      if (events) closing.push(events.close());
      if (opened) closing.push(...Object.values(opened).map((q) => q.close()));
      // Bounded: closing during a Redis outage must not hold the server's shutdown.
      await Promise.race([Promise.allSettled(closing), new Promise((r) => setTimeout(r, 2_000).unref())]);
      redis?.disconnect();
      eventsRedis?.disconnect();
    },
  };
}

/** A finished task's template, outcome and last-attempt duration; undefined when unknown. */
async function finishedTask(
  taskId: string,
  event: 'completed' | 'failed',
  records: TaskRecords,
  tasks: Queue,
): Promise<FinishedTask | undefined> {
  const record = await records.get(taskId);
  let template = record?.spec?.template;
  let started = record?.startedAt;
  let finished = record?.finishedAt;
  if (started === undefined || finished === undefined || !template) {
    const job = await Job.fromId(tasks, taskId);
    template ??= job?.name;
    started ??= job?.processedOn;
    finished ??= job?.finishedOn;
  }
  if (started === undefined || finished === undefined || !template) return undefined;
  const outcome = record?.finalState ?? event;
  return { taskId, template, outcome, seconds: (finished - started) / 1000 };
}
