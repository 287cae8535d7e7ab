/**
 * `ReviewStore`: review items in Redis and their decisions, exactly once across processes.
 * `create` is idempotent by item id (`r-${sweepId ?? taskId}`); a policy item also gets a job on
 * the `reviews` queue (job id = item id) for the policy judge. `decide` validates, claims the
 * decision atomically (a Lua script: the first claim wins; a different second one is refused with
 * REVIEW_ALREADY_DECIDED naming who decided and when), then applies it under a per-item lock
 * (apply.ts) and marks the item `applied` only once every step landed; the item's state is re-read
 * under the lock (a process that takes it just after another applied does nothing). A promotion
 * also takes the registered model's promotion lock (promotion.ts). A decided item that is not
 * applied (a crash, an MLflow outage) is finished by submitting the same verdict again, by any
 * judge (the first decision's notes stand), or by the judge's reconcile loop (`finish`); one whose apply fails for a reason retrying
 * cannot fix (a validation or configuration error, MLflow refusing the request as invalid) goes
 * to state `failed` with the reason, visible in get_review, list and status.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import {
  hasCode,
  isMlflowError,
  ReviewAlreadyDecidedError,
  RunwardenError,
  ValidationError,
} from '../errors/index.js';
import type { EvalSettings } from '../eval/rescore.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import { retryRedis } from '../queue/records.js';
import { waitForRedis } from '../queue/redis-reach.js';
import type { TaskQueue } from '../queue/task-queue.js';
import { applyDecision, reworkSpec } from './apply.js';
import { withApplyLock, withWaitedLock } from './apply-lock.js';
import { gatherEvidence, MODEL_EXISTS_TAG } from './evidence.js';
import { checkDecision, parseItem, same } from './item-codec.js';
import { reviewKeys } from './keys.js';
import { readRun } from './mlflow-reads.js';
import type { ApplyPlan } from './promotion.js';
import { reviewScripts } from './scripts.js';
import {
  type DecisionInput,
  type Evidence,
  REVIEW_QUEUE,
  REVIEW_STATES,
  type ReviewDecision,
  type ReviewItem,
  type ReviewMode,
  type ReviewState,
  reviewIdFor,
} from './types.js';

export interface ReviewStoreOptions {
  redisUrl: string;
  prefix: string;
  client: MlflowClient;
  tasksDir: string;
  /** The task queue, for rework verdicts (which enqueue the task again). */
  tasks?: TaskQueue;
  logger?: Logger;
  /** How long one Redis call retries while Redis is unreachable (default 0: fail at once). */
  redisRetryMs?: number;
  /** Apply lock lease, renewed every third of it while applying (default 30 s). */
  applyLockMs?: number;
  /** Re-scoring bounds (src/eval/rescore.ts); defaults when absent. */
  eval?: EvalSettings;
}

export interface CreateItemInput {
  taskId: string;
  runId: string;
  experimentId: string;
  template: string;
  mode: ReviewMode;
  sweepId?: string;
}

export interface DecideResult {
  item: ReviewItem;
  /** True once every step of the decision landed in MLflow (the item is `applied`). */
  applied: boolean;
  /** Why applying stopped, when it did (the decision stands; the judge's reconcile loop retries). */
  applyError?: string;
  /** Set when a repeat of the verdict differed from the first decision (judge, score or notes). */
  firstStands?: string;
}

/** An apply error retrying cannot fix: bad input or configuration, MLflow refusing the request. */
function permanent(err: unknown): boolean {
  return (
    hasCode(err, 'VALIDATION_ERROR') ||
    hasCode(err, 'CONFIG_ERROR') ||
    isMlflowError(err, 'INVALID_PARAMETER_VALUE') ||
    isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST')
  );
}

export class ReviewStore {
  readonly redis: Redis;
  readonly queue: Queue<{ reviewId: string }>;
  private readonly k: ReturnType<typeof reviewKeys>;
  private readonly scripts: ReturnType<typeof reviewScripts>;
  private readonly lockMs: number;

  constructor(private readonly opts: ReviewStoreOptions) {
    this.k = reviewKeys(opts.prefix);
    this.redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
    this.redis.on('error', () => undefined); // surfaced by the failing call
    this.queue = new Queue(REVIEW_QUEUE, { connection: this.redis, prefix: opts.prefix });
    this.queue.on('error', () => undefined);
    this.scripts = reviewScripts(this.redis);
    this.lockMs = opts.applyLockMs ?? 30_000;
  }

  get client(): MlflowClient {
    return this.opts.client;
  }

  /** One Redis step: waits (≤ 5 s) for the connection first, retried within `redisRetryMs`. */
  private call<T>(f: () => Promise<T>): Promise<T> {
    const budget = this.opts.redisRetryMs ?? 0;
    const step = async () => {
      await waitForRedis(this.redis, this.opts.redisUrl);
      return f();
    };
    return budget > 0 ? retryRedis(step, budget) : step();
  }

  /** Create the item unless it exists (`existing: true` then). Policy items get a judge job. */
  async create(input: CreateItemInput): Promise<{ item: ReviewItem; existing: boolean }> {
    const id = reviewIdFor(input);
    const item: ReviewItem = {
      id,
      taskId: input.taskId,
      runId: input.runId,
      experimentId: input.experimentId,
      template: input.template,
      mode: input.mode,
      ...(input.sweepId ? { sweepId: input.sweepId } : {}),
      state: 'pending',
      createdAt: Date.now(),
    };
    const { state: _s, ...stored } = item;
    const made = await this.call(() =>
      this.scripts.create(
        [this.k.item(id), this.k.byState('pending'), this.k.pendingByMode(item.mode)],
        JSON.stringify(stored),
        item.createdAt,
        id,
      ),
    );
    if (!made) return { item: (await this.get(id)) ?? item, existing: true };
    if (item.mode === 'policy') await this.enqueueJudge(id);
    this.opts.logger?.info({ review: id, task: item.taskId, mode: item.mode }, 'review item created');
    return { item, existing: false };
  }

  /** Put a policy item on the judge's queue (a no-op while its job exists). */
  async enqueueJudge(id: string): Promise<void> {
    await this.call(() =>
      this.queue.add(
        'judge',
        { reviewId: id },
        {
          jobId: id,
          attempts: 5,
          backoff: { type: 'exponential', delay: 2_000 },
          removeOnComplete: true,
          removeOnFail: true,
        },
      ),
    );
  }

  async get(id: string): Promise<ReviewItem | undefined> {
    const h = await this.call(() => this.redis.hgetall(this.k.item(id)));
    return parseItem(h);
  }

  private async mustGet(id: string): Promise<ReviewItem> {
    const item = await this.get(id);
    if (!item)
      throw new RunwardenError(
        'REVIEW_NOT_FOUND',
        `review_id: no review item ${id.slice(0, 200)}; list_pending_reviews shows the open ones`,
      );
    return item;
  }

  /** Items in the given states (default all), oldest first, at most `limit` (default 50, ≤ 1000). */
  async list(
    opts: { states?: ReviewState[]; mode?: ReviewMode; limit?: number } = {},
  ): Promise<ReviewItem[]> {
    const states = opts.states?.length ? opts.states : [...REVIEW_STATES];
    const limit = Math.min(Math.max(opts.limit ?? 50, 1), 1_000);
    const ids: { id: string; at: number }[] = [];
    for (const s of states) {
      // Pending items have an index per mode; other states are read further than the limit with a
      // mode filter (the filter drops some).
      const key = s === 'pending' && opts.mode ? this.k.pendingByMode(opts.mode) : this.k.byState(s);
      const n = opts.mode && s !== 'pending' ? limit * 4 : limit;
      const flat = await this.call(() => this.redis.zrange(key, 0, n - 1, 'WITHSCORES'));
      for (let i = 0; i < flat.length; i += 2) ids.push({ id: flat[i]!, at: Number(flat[i + 1]) });
    }
    ids.sort((a, b) => a.at - b.at);
    const pipe = this.redis.pipeline();
    for (const { id } of ids) pipe.hgetall(this.k.item(id));
    const rows = (await this.call(() => pipe.exec())) ?? [];
    const out: ReviewItem[] = [];
    for (const [, h] of rows) {
      const item = parseItem(h as Record<string, string>);
      if (item && (!opts.mode || item.mode === opts.mode)) out.push(item);
      if (out.length >= limit) break;
    }
    return out;
  }

  evidence(id: string): Promise<Evidence> {
    return this.mustGet(id).then((item) =>
      gatherEvidence(this.opts.client, this.opts.tasksDir, item, { eval: this.opts.eval }),
    );
  }

  async counts(): Promise<{ pending: number; approve: number; reject: number; rework: number }> {
    const [pending, c] = await this.call(() =>
      Promise.all([this.redis.zcard(this.k.byState('pending')), this.redis.hgetall(this.k.counts)]),
    );
    return {
      pending,
      approve: Number(c.approve ?? 0),
      reject: Number(c.reject ?? 0),
      rework: Number(c.rework ?? 0),
    };
  }

  /**
   * Decide exactly once, then apply. A different verdict after the first is refused
   * (REVIEW_ALREADY_DECIDED); the same verdict again finishes applying it (`repeat`).
   */
  async decide(id: string, input: DecisionInput): Promise<DecideResult> {
    checkDecision(input);
    const item = await this.mustGet(id);
    if (item.decision) return this.repeat(item, input);
    await this.precheck(item, input);
    const decision: ReviewDecision = {
      verdict: input.verdict,
      judge: input.judge,
      ...(input.score !== undefined ? { score: input.score } : {}),
      ...(input.notes ? { notes: input.notes } : {}),
      at: Date.now(),
    };
    const [r, cur] = await this.call(() =>
      this.scripts.claim(
        [
          this.k.item(id),
          this.k.byState('pending'),
          this.k.byState('decided'),
          this.k.counts,
          this.k.pendingByMode(item.mode),
        ],
        JSON.stringify(decision),
        id,
        decision.verdict,
      ),
    );
    if (r === 'missing') return this.mustGet(id).then(() => ({ item, applied: false }));
    if (r === 'taken') {
      const first = JSON.parse(cur!) as ReviewDecision;
      if (first.verdict !== input.verdict) throw new ReviewAlreadyDecidedError(id, first);
      return this.repeat(await this.mustGet(id), input);
    } else {
      this.opts.logger?.info(
        { review: id, verdict: decision.verdict, judge: decision.judge },
        'review decided',
      );
    }
    return this.finish(id);
  }

  /**
   * The verdict of a decided item sent again. The same verdict finishes applying a decided item
   * whoever sends it (the decision is recorded; applying is idempotent): a judge whose identity
   * changed (an MCP server restarted) or another agent behind the same server can finish it. The
   * first decision's judge, score and notes stand; `firstStands` says so when the repeat differs.
   * Another verdict, or another judge's repeat of an applied item, is refused.
   */
  private async repeat(item: ReviewItem, input: DecisionInput): Promise<DecideResult> {
    const first = item.decision!;
    if (!same(first, input) && !(first.verdict === input.verdict && item.state === 'decided'))
      throw new ReviewAlreadyDecidedError(item.id, first);
    const r = item.state === 'applied' ? { item, applied: true } : await this.finish(item.id);
    const differs =
      first.judge !== input.judge ||
      (input.notes !== undefined && input.notes !== (first.notes ?? '')) ||
      (input.score !== undefined && input.score !== first.score);
    return differs
      ? {
          ...r,
          firstStands: `the first decision (${first.verdict} by ${first.judge.slice(0, 200)} at ${new Date(first.at).toISOString()}) stands with its own score and notes; yours finished applying it and were not recorded`,
        }
      : r;
  }

  /** Refuse a decision that could not be applied, before it is claimed. */
  private async precheck(item: ReviewItem, d: DecisionInput): Promise<void> {
    if (d.verdict === 'approve') {
      const { tags } = await readRun(this.opts.client, item.runId);
      if (tags[MODEL_EXISTS_TAG] !== 'true')
        throw new ValidationError(
          'verdict',
          `run ${item.runId} stored no model folder, so it cannot be approved into the registry; reject it or ask for rework`,
        );
    }
    if (d.verdict === 'rework') {
      if (!this.opts.tasks)
        throw new RunwardenError('CONFIG_ERROR', 'a rework verdict needs the task queue (REDIS_URL)');
      await reworkSpec(this.opts.tasks, item, d.notes ?? '');
    }
  }

  /**
   * Apply a decided item and mark it applied (idempotent; a no-op for applied or pending items).
   * Another process applying it holds the lock: this call then returns `applied: false`.
   */
  async finish(id: string): Promise<DecideResult> {
    const seen = await this.mustGet(id);
    if (seen.state !== 'decided' || !seen.decision) return { item: seen, applied: seen.state === 'applied' };
    const r = await withApplyLock(this.scripts, this.k.applyLock(id), this.lockMs, async (lease) => {
      // Re-read under the lock: another process may have applied it between the read above and now.
      const item = await this.mustGet(id);
      const decision = item.decision;
      if (item.state !== 'decided' || !decision) return { item, applied: item.state === 'applied' };
      try {
        const raw = await this.call(() => this.redis.hget(this.k.item(id), 'plan'));
        const plan: ApplyPlan = raw ? (JSON.parse(raw) as ApplyPlan) : {};
        const savePlan = async (p: ApplyPlan) => {
          await lease.check();
          await this.call(() => this.redis.hset(this.k.item(id), 'plan', JSON.stringify(p)));
        };
        const ctx = {
          client: this.opts.client,
          tasksDir: this.opts.tasksDir,
          tasks: this.opts.tasks,
          plan,
          savePlan,
          lease,
          modelLock: <T>(name: string, fn: (l: typeof lease) => Promise<T>) =>
            withWaitedLock(this.scripts, this.k.modelLock(name), this.lockMs, this.lockMs * 2, fn),
          warn: (msg: string, extra: Record<string, unknown>) => this.opts.logger?.warn(extra, msg),
        };
        const outcome = await applyDecision(ctx, item, decision);
        await lease.check();
        const keys: [string, string, string] = [
          this.k.item(id),
          this.k.byState('decided'),
          this.k.byState('applied'),
        ];
        await this.call(() => this.scripts.applied(keys, JSON.stringify(outcome), id));
        this.opts.logger?.info({ review: id, verdict: decision.verdict, ...outcome }, 'review applied');
        return { item: { ...item, state: 'applied' as const, outcome }, applied: true };
      } catch (err) {
        const why = (err as Error).message;
        if (permanent(err)) {
          const keys: [string, string, string] = [
            this.k.item(id),
            this.k.byState('decided'),
            this.k.byState('failed'),
          ];
          await this.call(() => this.scripts.failed(keys, why.slice(0, 2_000), id));
          this.opts.logger?.error({ review: id, err: why }, 'applying the decision failed for good');
          return {
            item: { ...item, state: 'failed' as const, failure: why },
            applied: false,
            applyError: why,
          };
        }
        this.opts.logger?.warn({ review: id, err: why }, 'applying the decision failed; it will be retried');
        return { item, applied: false, applyError: why };
      }
    });
    // Another process holds the lock: it is applying this decision now.
    return r ?? { item: seen, applied: false };
  }

  /** Ids of decided items that are not applied yet, oldest first. */
  async decidedIds(limit = 100): Promise<string[]> {
    return this.call(() => this.redis.zrange(this.k.byState('decided'), 0, limit - 1));
  }

  /** Whether an item exists for this id. */
  async exists(id: string): Promise<boolean> {
    return (await this.call(() => this.redis.exists(this.k.item(id)))) === 1;
  }

  async close(): Promise<void> {
    await Promise.race([
      this.queue.close().catch(() => undefined),
      new Promise((r) => setTimeout(r, 3_000).unref()),
    ]);
    this.redis.disconnect();
  }
}
