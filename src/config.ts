/**
 * The one place that reads the environment. `loadConfig()` parses `process.env` (or a given record)
 * with zod once and returns a typed, frozen `Config`; everything else receives what it needs from it.
 * Every setting has a default, documented in README's configuration table. (Task commands get an
 * explicit environment picked from it (src/runners/task-env.ts); the MLflow and Redis servers
 * inherit it; those, and looking a server binary up on PATH, are the only other uses of `process.env`.)
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { RunwardenError } from './errors/index.js';

const intMs = (def: number) => z.coerce.number().int().nonnegative().default(def);
const bool = (def: boolean) =>
  z
    .preprocess(
      (v) => (typeof v === 'string' ? v.toLowerCase() : v),
      z.enum(['true', 'false', '1', '0', 'yes', 'no']),
    )
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

const httpUrl = (example: string) =>
  z.string().refine(
    (v) => {
      try {
        const u = new URL(v);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
      } catch {
        return false;
      }
    },
    { message: `must be an http(s) URL such as ${example}` },
  );

const EnvSchema = z.object({
  MLFLOW_TRACKING_URI: httpUrl('http://127.0.0.1:5000').default('http://127.0.0.1:5000'),
  MLFLOW_TRACKING_TOKEN: z.string().min(1).optional(),
  MLFLOW_TRACKING_USERNAME: z.string().min(1).optional(),
  MLFLOW_TRACKING_PASSWORD: z.string().optional(),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  RUNWARDEN_MLFLOW_UI_URL: httpUrl('http://127.0.0.1:5000').optional(),
  RUNWARDEN_MLFLOW_TIMEOUT_MS: intMs(30_000),
  RUNWARDEN_MLFLOW_ARTIFACT_TIMEOUT_MS: intMs(600_000),
  RUNWARDEN_MLFLOW_MAX_RETRIES: z.coerce.number().int().min(0).max(20).default(5),
  RUNWARDEN_MLFLOW_KEEPALIVE: z
    .enum(['auto', 'true', 'false'])
    .default('auto')
    .transform((v) => (v === 'auto' ? ('auto' as const) : v === 'true')),
  RUNWARDEN_OWNER: z.string().min(1).optional(),
  RUNWARDEN_LEASE_MS: intMs(300_000),
  RUNWARDEN_HEARTBEAT_MS: z.coerce.number().int().positive().optional(),
  RUNWARDEN_FLUSH_INTERVAL_MS: intMs(1_000),
  RUNWARDEN_MAX_BUFFERED_POINTS: z.coerce.number().int().min(1_000).default(100_000),
  RUNWARDEN_MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .min(1024 * 1024)
    .default(32 * 1024 * 1024),
  RUNWARDEN_END_FLUSH_TIMEOUT_MS: intMs(180_000),
  RUNWARDEN_SHUTDOWN_TIMEOUT_MS: intMs(10_000),
  RUNWARDEN_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  RUNWARDEN_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  RUNWARDEN_HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(7341),
  RUNWARDEN_HTTP_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  RUNWARDEN_HTTP_ALLOWED_HOSTS: z.string().optional(),
  RUNWARDEN_HTTP_ALLOWED_ORIGINS: z.string().optional(),
  RUNWARDEN_HTTP_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  RUNWARDEN_HTTP_SESSION_IDLE_MS: z.coerce.number().int().min(1_000).default(3_600_000),
  RUNWARDEN_METRICS: bool(true),
  RUNWARDEN_METRICS_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(2_000),
  RUNWARDEN_DASHBOARD: bool(true),
  RUNWARDEN_DASHBOARD_READ_ONLY: bool(true),
  RUNWARDEN_READ_ONLY: bool(false),
  RUNWARDEN_ALLOWED_ROOTS: z.string().optional(),
  RUNWARDEN_MAX_INLINE_ARTIFACT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024),
  RUNWARDEN_READ_ARTIFACT_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  RUNWARDEN_MCP_LEASE_SECONDS: z.coerce.number().int().min(10).max(86_400).default(900),
  RUNWARDEN_REAP_INTERVAL_MS: intMs(60_000),
  RUNWARDEN_REAP_EXPERIMENT_IDS: z.string().optional(),
  RUNWARDEN_DATA_DIR: z.string().min(1).default('.data'),
  RUNWARDEN_MLFLOW_PORT: z.coerce.number().int().min(1).max(65535).default(5000),
  RUNWARDEN_REDIS_PORT: z.coerce.number().int().min(1).max(65535).default(6379),
  RUNWARDEN_QUEUE_PREFIX: z
    .string()
    .regex(/^[\w-]+$/, 'letters, digits, _ and -')
    .default('runwarden'),
  RUNWARDEN_TASKS_DIR: z.string().min(1).optional(),
  RUNWARDEN_WORK_DIR: z.string().min(1).optional(),
  RUNWARDEN_CACHE_DIR: z.string().min(1).optional(),
  RUNWARDEN_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  RUNWARDEN_KILL_GRACE_MS: intMs(10_000),
  RUNWARDEN_SHUTDOWN_GRACE_MS: intMs(30_000),
  RUNWARDEN_KEEP_WORKSPACES: bool(false),
  RUNWARDEN_WORKER_LOCK_MS: z.coerce.number().int().min(1_000).default(30_000),
  RUNWARDEN_SWEEP_MAX_CHILDREN: z.coerce.number().int().min(1).max(10_000).default(200),
  RUNWARDEN_PREDICT_MAX_ROWS: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
  RUNWARDEN_PREDICT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(32 * 1024 * 1024),
  RUNWARDEN_REVIEW_RECONCILE_MS: intMs(60_000),
  RUNWARDEN_REVIEW_APPLY_LOCK_MS: z.coerce.number().int().min(1_000).default(30_000),
  RUNWARDEN_REVIEW_REDIS_RETRY_MS: intMs(10_000),
  RUNWARDEN_EVAL_MAX_MODEL_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(512 * 1024 * 1024),
  RUNWARDEN_EVAL_THREADS: z.coerce.number().int().min(1).max(64).default(1),
  RUNWARDEN_EVAL_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(120_000),
  RUNWARDEN_ENV_BUILD_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(1_200_000),
  RUNWARDEN_INPUT_ROOTS: z.string().optional(),
  RUNWARDEN_INPUT_DIRS: bool(false),
  RUNWARDEN_HTTP_INPUT_HOSTS: z.string().optional(),
  RUNWARDEN_ZIP_INPUTS: bool(false),
});

/** Settings of `runwarden serve`'s HTTP listener. */
export interface HttpSettings {
  host: string;
  port: number;
  token?: string;
  /** Host header values accepted (DNS-rebinding protection); loopback names always are. */
  allowedHosts: string[];
  /** Origin header values accepted; requests without Origin are allowed. */
  allowedOrigins: string[];
  maxBodyBytes: number;
  /** Close MCP sessions idle this long (default 1 h); their runs stay open under their lease. */
  sessionIdleMs?: number;
  /** `GET /metrics` (default on); each scrape waits for Redis at most `timeoutMs` (default 2 s). */
  metrics?: { enabled: boolean; timeoutMs: number };
  /** The queue dashboard at /admin/queues (default on, read-only). */
  dashboard?: { enabled: boolean; readOnly: boolean };
}

export interface Config {
  mlflow: {
    trackingUri: string;
    /** True when MLFLOW_TRACKING_URI was set (so `runwarden up` uses it instead of starting MLflow). */
    trackingUriFromEnv: boolean;
    uiUrl: string;
    token?: string;
    username?: string;
    password?: string;
    timeoutMs: number;
    artifactTimeoutMs: number;
    maxRetries: number;
    keepAlive: 'auto' | boolean;
  };
  redisUrl: string;
  /** True when REDIS_URL was set (so `runwarden up` uses it instead of starting Redis). */
  redisUrlFromEnv: boolean;
  tracking: {
    owner: string;
    leaseMs: number;
    heartbeatMs: number;
    flushIntervalMs: number;
    /** Metric points a run handle holds in memory at most (logMetric waits while full). */
    maxBufferedPoints: number;
    /** Estimated bytes of metric points a run handle holds at most. */
    maxBufferedBytes: number;
    /** How long ending a run retries storing buffered points before it ends FAILED. */
    endFlushTimeoutMs: number;
    shutdownTimeoutMs: number;
  };
  logLevel: z.infer<typeof EnvSchema>['RUNWARDEN_LOG_LEVEL'];
  http: HttpSettings;
  mcp: {
    readOnly: boolean;
    /** Local folders `log_artifact` may read from. */
    allowedRoots: string[];
    maxInlineArtifactBytes: number;
    readArtifactMaxBytes: number;
    leaseSeconds: number;
    reapIntervalMs: number;
    /** Experiments the stack's reaper loops sweep (default: every active experiment). */
    reapExperimentIds?: string[];
  };
  /** Where `runwarden up` keeps the local MLflow database and artifacts. */
  dataDir: string;
  /** Port of the local MLflow server `runwarden up` starts. */
  localMlflowPort: number;
  /** Port of the local redis-server `runwarden up` starts. */
  localRedisPort: number;
  queue: {
    /** Redis key prefix and queue namespace. */
    prefix: string;
    /** Folder of task templates. */
    tasksDir: string;
    /** Where attempts' workspaces are created. */
    workDir: string;
    /** Where per-template Python environments are cached. */
    cacheDir: string;
    concurrency: number;
    /** SIGTERM → SIGKILL delay when killing a task's process group. */
    killGraceMs: number;
    /** On worker shutdown, how long running tasks may finish before they are cancelled. */
    shutdownGraceMs: number;
    keepWorkspaces: boolean;
    /** BullMQ job lock; a dead worker's task is re-delivered within about twice this. */
    lockMs: number;
    /** Bound of one template Python environment build, apart from the task's timeout. */
    envBuildTimeoutMs: number;
    /** Most children one sweep may have. */
    sweepMaxChildren: number;
    /** Prediction: most rows (table rows, windows or tensor batch) and bytes of one data file. */
    predictMaxRows: number;
    predictMaxBytes: number;
  };
  /** The review system (src/review/). */
  review: {
    /** How often the judge reconciles (missing items, decided-not-applied, stuck policy items); 0 = only at start. */
    reconcileMs: number;
    /** Lease of the per-item apply lock (a crashed judge's lock frees after this). */
    applyLockMs: number;
    /** How long the completion hook and the judge retry a Redis call through an outage. */
    redisRetryMs: number;
  };
  /** Independent re-scoring of candidates by the judge (src/eval/). */
  eval: {
    /** Most bytes of one model folder downloaded for re-scoring. */
    maxModelBytes: number;
    /** onnxruntime intra-op threads per session. */
    threads: number;
    /** Bound of one re-score (download, load, score, log). */
    timeoutMs: number;
  };
  /** The task-input boundary (see src/runners/input-policy.ts). */
  inputs: {
    /** Folders local (file://) inputs must resolve into; default `<tasksDir>/data`. */
    roots: string[];
    /** Whether a local input may be a folder. */
    allowDirs: boolean;
    /** Hosts http(s) inputs may come from (`host` or `host:port`); default none. */
    httpHosts: string[];
    /** Whether workspace.zip keeps the copies of the inputs (default: a manifest instead). */
    zipInputs: boolean;
  };
}

const list = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** `user@host:pid`: who holds a run, written to `runwarden.owner`. */
export function defaultOwner(): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (containers): keep 'unknown'
  }
  return `${user}@${os.hostname()}:${process.pid}`;
}

/** Parse the environment. Throws a CONFIG_ERROR naming each bad variable and what it expects. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new RunwardenError('CONFIG_ERROR', `invalid environment:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  // Default: a fifth of the lease, at most a minute (as startRun does).
  const heartbeatMs = e.RUNWARDEN_HEARTBEAT_MS ?? Math.min(60_000, Math.floor(e.RUNWARDEN_LEASE_MS / 5));
  if (heartbeatMs >= e.RUNWARDEN_LEASE_MS) {
    throw new RunwardenError(
      'CONFIG_ERROR',
      `invalid environment:\n  RUNWARDEN_HEARTBEAT_MS: ${e.RUNWARDEN_HEARTBEAT_MS} must be shorter than RUNWARDEN_LEASE_MS (${e.RUNWARDEN_LEASE_MS}), or a lease could expire between heartbeats; lower it or raise the lease`,
    );
  }
  const trackingUri = e.MLFLOW_TRACKING_URI.replace(/\/+$/, '');
  const tasksDir = path.resolve(e.RUNWARDEN_TASKS_DIR ?? fileURLToPath(new URL('../tasks', import.meta.url)));
  return Object.freeze({
    mlflow: {
      trackingUri,
      trackingUriFromEnv: cleaned.MLFLOW_TRACKING_URI !== undefined,
      uiUrl: (e.RUNWARDEN_MLFLOW_UI_URL ?? trackingUri).replace(/\/+$/, ''),
      token: e.MLFLOW_TRACKING_TOKEN,
      username: e.MLFLOW_TRACKING_USERNAME,
      password: e.MLFLOW_TRACKING_PASSWORD,
      timeoutMs: e.RUNWARDEN_MLFLOW_TIMEOUT_MS,
      artifactTimeoutMs: e.RUNWARDEN_MLFLOW_ARTIFACT_TIMEOUT_MS,
      maxRetries: e.RUNWARDEN_MLFLOW_MAX_RETRIES,
      keepAlive: e.RUNWARDEN_MLFLOW_KEEPALIVE,
    },
    redisUrl: e.REDIS_URL,
    redisUrlFromEnv: cleaned.REDIS_URL !== undefined,
    tracking: {
      owner: e.RUNWARDEN_OWNER ?? defaultOwner(),
      leaseMs: e.RUNWARDEN_LEASE_MS,
      heartbeatMs,
      flushIntervalMs: e.RUNWARDEN_FLUSH_INTERVAL_MS,
      maxBufferedPoints: e.RUNWARDEN_MAX_BUFFERED_POINTS,
      maxBufferedBytes: e.RUNWARDEN_MAX_BUFFERED_BYTES,
      endFlushTimeoutMs: e.RUNWARDEN_END_FLUSH_TIMEOUT_MS,
      shutdownTimeoutMs: e.RUNWARDEN_SHUTDOWN_TIMEOUT_MS,
    },
    logLevel: e.RUNWARDEN_LOG_LEVEL,
    http: {
      host: e.RUNWARDEN_HTTP_HOST,
      port: e.RUNWARDEN_HTTP_PORT,
      token: e.RUNWARDEN_HTTP_TOKEN,
      allowedHosts: list(e.RUNWARDEN_HTTP_ALLOWED_HOSTS),
      allowedOrigins: list(e.RUNWARDEN_HTTP_ALLOWED_ORIGINS),
      maxBodyBytes: e.RUNWARDEN_HTTP_MAX_BODY_BYTES,
      sessionIdleMs: e.RUNWARDEN_HTTP_SESSION_IDLE_MS,
      metrics: { enabled: e.RUNWARDEN_METRICS, timeoutMs: e.RUNWARDEN_METRICS_TIMEOUT_MS },
      dashboard: { enabled: e.RUNWARDEN_DASHBOARD, readOnly: e.RUNWARDEN_DASHBOARD_READ_ONLY },
    },
    mcp: {
      readOnly: e.RUNWARDEN_READ_ONLY,
      allowedRoots: (e.RUNWARDEN_ALLOWED_ROOTS ?? process.cwd())
        .split(path.delimiter)
        .filter(Boolean)
        .map((r) => path.resolve(r)),
      maxInlineArtifactBytes: e.RUNWARDEN_MAX_INLINE_ARTIFACT_BYTES,
      readArtifactMaxBytes: e.RUNWARDEN_READ_ARTIFACT_MAX_BYTES,
      leaseSeconds: e.RUNWARDEN_MCP_LEASE_SECONDS,
      reapIntervalMs: e.RUNWARDEN_REAP_INTERVAL_MS,
      reapExperimentIds: e.RUNWARDEN_REAP_EXPERIMENT_IDS ? list(e.RUNWARDEN_REAP_EXPERIMENT_IDS) : undefined,
    },
    dataDir: path.resolve(e.RUNWARDEN_DATA_DIR),
    localMlflowPort: e.RUNWARDEN_MLFLOW_PORT,
    localRedisPort: e.RUNWARDEN_REDIS_PORT,
    queue: {
      prefix: e.RUNWARDEN_QUEUE_PREFIX,
      tasksDir,
      workDir: path.resolve(e.RUNWARDEN_WORK_DIR ?? path.join(e.RUNWARDEN_DATA_DIR, 'workspaces')),
      cacheDir: path.resolve(e.RUNWARDEN_CACHE_DIR ?? path.join(e.RUNWARDEN_DATA_DIR, 'envs')),
      concurrency: e.RUNWARDEN_WORKER_CONCURRENCY,
      killGraceMs: e.RUNWARDEN_KILL_GRACE_MS,
      shutdownGraceMs: e.RUNWARDEN_SHUTDOWN_GRACE_MS,
      keepWorkspaces: e.RUNWARDEN_KEEP_WORKSPACES,
      lockMs: e.RUNWARDEN_WORKER_LOCK_MS,
      envBuildTimeoutMs: e.RUNWARDEN_ENV_BUILD_TIMEOUT_MS,
      sweepMaxChildren: e.RUNWARDEN_SWEEP_MAX_CHILDREN,
      predictMaxRows: e.RUNWARDEN_PREDICT_MAX_ROWS,
      predictMaxBytes: e.RUNWARDEN_PREDICT_MAX_BYTES,
    },
    review: {
      reconcileMs: e.RUNWARDEN_REVIEW_RECONCILE_MS,
      applyLockMs: e.RUNWARDEN_REVIEW_APPLY_LOCK_MS,
      redisRetryMs: e.RUNWARDEN_REVIEW_REDIS_RETRY_MS,
    },
    eval: {
      maxModelBytes: e.RUNWARDEN_EVAL_MAX_MODEL_BYTES,
      threads: e.RUNWARDEN_EVAL_THREADS,
      timeoutMs: e.RUNWARDEN_EVAL_TIMEOUT_MS,
    },
    inputs: {
      roots: (e.RUNWARDEN_INPUT_ROOTS ?? path.join(tasksDir, 'data'))
        .split(path.delimiter)
        .filter(Boolean)
        .map((r) => path.resolve(r)),
      allowDirs: e.RUNWARDEN_INPUT_DIRS,
      httpHosts: list(e.RUNWARDEN_HTTP_INPUT_HOSTS).map((h) => h.toLowerCase()),
      zipInputs: e.RUNWARDEN_ZIP_INPUTS,
    },
  });
}
