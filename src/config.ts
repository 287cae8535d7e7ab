/**
 * The one place that reads the environment. `loadConfig()` parses `process.env` (or a given record)
 * with zod once and returns a typed, frozen `Config`; everything else receives what it needs from it.
 * Every setting has a default, documented in README's configuration table.
 */
import os from 'node:os';
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
  RUNWARDEN_OWNER: z.string().min(1).optional(),
  RUNWARDEN_LEASE_MS: intMs(300_000),
  RUNWARDEN_HEARTBEAT_MS: intMs(60_000),
  RUNWARDEN_FLUSH_INTERVAL_MS: intMs(1_000),
  RUNWARDEN_SHUTDOWN_TIMEOUT_MS: intMs(10_000),
  RUNWARDEN_HANDLE_SIGNALS: bool(true),
  RUNWARDEN_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  mlflow: {
    trackingUri: string;
    uiUrl: string;
    token?: string;
    username?: string;
    password?: string;
    timeoutMs: number;
    artifactTimeoutMs: number;
    maxRetries: number;
  };
  redisUrl: string;
  tracking: {
    owner: string;
    leaseMs: number;
    heartbeatMs: number;
    flushIntervalMs: number;
    shutdownTimeoutMs: number;
    handleSignals: boolean;
  };
  logLevel: z.infer<typeof EnvSchema>['RUNWARDEN_LOG_LEVEL'];
}

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
  const trackingUri = e.MLFLOW_TRACKING_URI.replace(/\/+$/, '');
  return Object.freeze({
    mlflow: {
      trackingUri,
      uiUrl: (e.RUNWARDEN_MLFLOW_UI_URL ?? trackingUri).replace(/\/+$/, ''),
      token: e.MLFLOW_TRACKING_TOKEN,
      username: e.MLFLOW_TRACKING_USERNAME,
      password: e.MLFLOW_TRACKING_PASSWORD,
      timeoutMs: e.RUNWARDEN_MLFLOW_TIMEOUT_MS,
      artifactTimeoutMs: e.RUNWARDEN_MLFLOW_ARTIFACT_TIMEOUT_MS,
      maxRetries: e.RUNWARDEN_MLFLOW_MAX_RETRIES,
    },
    redisUrl: e.REDIS_URL,
    tracking: {
      owner: e.RUNWARDEN_OWNER ?? defaultOwner(),
      leaseMs: e.RUNWARDEN_LEASE_MS,
      heartbeatMs: e.RUNWARDEN_HEARTBEAT_MS,
      flushIntervalMs: e.RUNWARDEN_FLUSH_INTERVAL_MS,
      shutdownTimeoutMs: e.RUNWARDEN_SHUTDOWN_TIMEOUT_MS,
      handleSignals: e.RUNWARDEN_HANDLE_SIGNALS,
    },
    logLevel: e.RUNWARDEN_LOG_LEVEL,
  });
}
