/**
 * The policy judge as a process part: a BullMQ worker on the `reviews` queue that decides each
 * pending policy item from its evidence (approve when every gate passes, reject otherwise, the
 * checks as notes, the share of passed gates as score) as judge `policy`, finishes decided items
 * that are not applied, and runs the reconcile pass (reconcile.ts) at start and every
 * `reconcileMs`. Shutdown is bounded: stop the loop, close the worker (a running decision gets
 * `graceMs`, then the worker is force-closed; an unfinished apply is completed by the next judge).
 */
import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { hasCode } from '../errors/index.js';
import type { Logger } from '../log.js';
import type { TaskQueue } from '../queue/task-queue.js';
import { reconcileReviews } from './reconcile.js';
import type { ReviewStore } from './store.js';
import { REVIEW_QUEUE } from './types.js';

/** The judge name policy decisions carry (every policy judge process decides as this one judge). */
export const POLICY_JUDGE = 'policy';

export interface JudgeOptions {
  store: ReviewStore;
  tasks: TaskQueue;
  redisUrl: string;
  prefix: string;
  logger: Logger;
  concurrency?: number;
  /** Reconcile every this many ms (0: only at start). */
  reconcileMs: number;
  /** How long a running decision may finish on shutdown (default 10 s). */
  graceMs?: number;
}

export interface RunningJudge {
  worker: Worker<{ reviewId: string }>;
  /** Run one reconcile pass now (tests, `judge --once`). */
  reconcile(): Promise<void>;
  close(): Promise<void>;
}

const within = (p: Promise<unknown>, ms: number) =>
  Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
  ]);

/** Decide one policy item (or finish applying it). Throws when applying must be retried. */
export async function judgeItem(store: ReviewStore, id: string, log: Logger): Promise<string> {
  const item = await store.get(id);
  if (!item) return 'gone';
  if (item.state === 'applied') return 'applied already';
  if (item.state === 'decided') {
    const r = await store.finish(id);
    if (!r.applied && r.applyError) throw new Error(r.applyError);
    return r.applied ? 'applied' : 'being applied elsewhere';
  }
  if (item.mode !== 'policy') return 'not a policy item';
  const ev = await store.evidence(id);
  const checks = ev.policy?.checks ?? [];
  const passed = ev.policy?.passed === true;
  const notes = checks
    .filter((c) => passed || !c.passed)
    .map((c) => c.why)
    .join('\n');
  try {
    const r = await store.decide(id, {
      verdict: passed ? 'approve' : 'reject',
      judge: POLICY_JUDGE,
      score: checks.length ? checks.filter((c) => c.passed).length / checks.length : undefined,
      notes,
    });
    if (!r.applied && r.applyError) throw new Error(r.applyError);
    log.info(
      { review: id, verdict: passed ? 'approve' : 'reject', applied: r.applied },
      'policy judge decided',
    );
    return passed ? 'approved' : 'rejected';
  } catch (err) {
    // An agent (or another judge) decided it meanwhile: theirs stands.
    if (hasCode(err, 'REVIEW_ALREADY_DECIDED')) return 'decided by someone else';
    throw err;
  }
}

export async function startJudge(opts: JudgeOptions): Promise<RunningJudge> {
  const log = opts.logger;
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  connection.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  const processor = async (job: Job<{ reviewId: string }>) => judgeItem(opts.store, job.data.reviewId, log);
  const worker = new Worker<{ reviewId: string }>(REVIEW_QUEUE, processor, {
    connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency ?? 1,
    lockDuration: 60_000,
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'judge worker error'));
  worker.on('failed', (job, err) =>
    log.warn({ review: job?.id, err: err.message }, 'judging failed; retried'),
  );

  let pass: Promise<void> | undefined;
  const reconcile = () => {
    pass ??= reconcileReviews(opts.store, opts.tasks, {
      logger: log,
      staleMs: Math.max(opts.reconcileMs, 60_000),
    })
      .then(() => undefined)
      .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'review reconcile failed'))
      .finally(() => {
        pass = undefined;
      });
    return pass;
  };
  await worker.waitUntilReady();
  void reconcile();
  const timer = opts.reconcileMs > 0 ? setInterval(() => void reconcile(), opts.reconcileMs) : undefined;
  timer?.unref();

  let closing: Promise<void> | undefined;
  return {
    worker,
    reconcile,
    close: () => {
      closing ??= (async () => {
        if (timer) clearInterval(timer);
        if (!(await within(worker.close(), opts.graceMs ?? 10_000))) await within(worker.close(true), 2_000);
        if (pass) await within(pass, 5_000);
        connection.disconnect();
      })();
      return closing;
    },
  };
}
