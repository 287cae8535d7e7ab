/**
 * `createMlflowClient()`: the typed door to an MLflow tracking server. It wires openapi-fetch (typed
 * from `openapi.yaml` via `schema.gen.ts`) onto the transport (auth, timeouts, retries, typed
 * errors) and knows the server's UI links. Everything in runwarden reaches MLflow through this.
 */
import createClient, { type Client, createQuerySerializer, type Middleware } from 'openapi-fetch';
import type { Config } from '../config.js';
import {
  isWellFormed,
  MlflowBadResponseError,
  redactUri,
  ValidationError,
  wellFormed,
} from '../errors/index.js';
import type { Logger } from '../log.js';
import { missingRequiredField, REQUIRED_FIELDS } from './required.js';
import { defaultRetryPolicy, type RetryPolicy } from './retry.js';
import type { components, paths } from './schema.gen.js';
import { createTransport, type Transport } from './transport.js';

export type MlflowPaths = paths;
export type Schemas = components['schemas'];
export type Experiment = Schemas['Experiment'];
export type Run = Schemas['Run'];
export type RunInfo = Schemas['RunInfo'];
export type Metric = Schemas['Metric'];
export type Param = Schemas['Param'];
export type RunTag = Schemas['RunTag'];
export type FileInfo = Schemas['FileInfo'];
export type RegisteredModel = Schemas['RegisteredModel'];
export type ModelVersion = Schemas['ModelVersion'];
export type DatasetInput = Schemas['DatasetInput'];
/** A dataset input as log-inputs takes it (name, digest, source_type and source required). */
export type DatasetInputRequest = Schemas['DatasetInputRequest'];
export type RunStatus = Schemas['RunStatus'];

export interface MlflowClientOptions {
  /** Base URL of the tracking server, e.g. `http://127.0.0.1:5000` (as `MLFLOW_TRACKING_URI`). */
  trackingUri: string;
  /** Base URL of the UI for links (default: the tracking URI). */
  uiUrl?: string;
  /** Bearer token (`MLFLOW_TRACKING_TOKEN`); takes precedence over username/password. */
  token?: string;
  /** Basic auth (`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`). */
  username?: string;
  password?: string;
  /** A `fetch` to use instead of the global one (tests, proxies). */
  fetch?: typeof fetch;
  /** Per-attempt timeout for JSON API calls (default 30 s). */
  timeoutMs?: number;
  /** Per-attempt timeout for artifact transfers (default 10 min). */
  artifactTimeoutMs?: number;
  /** Retry policy for transient failures (default: 5 retries, 200 ms base, 10 s cap). */
  retry?: Partial<RetryPolicy>;
  logger?: Logger;
  /** Reuse HTTP connections: `auto` (default) = off for plain-http loopback servers, on otherwise. */
  keepAlive?: 'auto' | boolean;
}

export interface MlflowClient {
  readonly trackingUri: string;
  readonly uiUrl: string;
  /** Typed REST calls; non-2xx answers throw `MlflowApiError`, network failures `MlflowUnreachableError`. */
  readonly api: Client<paths>;
  /** Lower-level sends (artifact streaming). */
  readonly transport: Transport;
  readonly artifactTimeoutMs: number;
  /** Per-attempt timeout of JSON API calls (a request older than this may still land late). */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly logger?: Logger;
  /**
   * Experiment ids by name on this server, filled by `experimentIdFor` (src/queue/experiment-ids.ts):
   * the cache belongs to the client, so it goes away with it and never mixes two servers.
   */
  readonly experimentIds: Map<string, string>;
  /** UI link to an experiment. */
  experimentUrl(experimentId: string): string;
  /** UI link to a run, as MLflow's Python client prints it. */
  runUrl(experimentId: string, runId: string): string;
}

export function createMlflowClient(opts: MlflowClientOptions): MlflowClient {
  const trackingUri = opts.trackingUri.replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(trackingUri);
  } catch {
    throw new TypeError(
      `trackingUri: ${JSON.stringify(opts.trackingUri)} is not a URL; use e.g. http://127.0.0.1:5000`,
    );
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`trackingUri: only http(s) tracking servers are supported, got ${parsed.protocol}`);
  }
  const retry = { ...defaultRetryPolicy, ...opts.retry };
  const transport = createTransport({
    trackingUri,
    token: opts.token,
    username: opts.username,
    password: opts.password,
    fetch: opts.fetch,
    timeoutMs: opts.timeoutMs ?? 30_000,
    retry,
    logger: opts.logger,
    keepAlive: opts.keepAlive,
  });
  const api = createClient<paths>({
    baseUrl: trackingUri,
    fetch: transport.fetch,
    querySerializer: safeQuery,
  });
  api.use(tagEndpoint);
  // Links are shown to people and agents: never with the credentials a URI may embed.
  const uiUrl = redactUri((opts.uiUrl ?? trackingUri).replace(/\/+$/, ''));
  const seg = (v: string) => encodeURIComponent(wellFormed(v));
  return {
    trackingUri,
    uiUrl,
    api,
    transport,
    artifactTimeoutMs: opts.artifactTimeoutMs ?? 600_000,
    timeoutMs: opts.timeoutMs ?? 30_000,
    retry,
    logger: opts.logger,
    experimentIds: new Map(),
    experimentUrl: (e) => `${uiUrl}/#/experiments/${seg(e)}`,
    runUrl: (e, r) => `${uiUrl}/#/experiments/${seg(e)}/runs/${seg(r)}`,
  };
}

const serializeQuery = createQuerySerializer();

/**
 * openapi-fetch's query encoding, refusing a lone UTF-16 surrogate with a ValidationError naming the
 * parameter (encodeURIComponent would throw a bare "URIError: URI malformed").
 */
function safeQuery(query: Record<string, unknown>): string {
  for (const [name, v] of Object.entries(query ?? {})) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (typeof item === 'string' && !isWellFormed(item)) {
        throw new ValidationError(name, 'contains a lone UTF-16 surrogate; send well-formed Unicode text');
      }
    }
  }
  return serializeQuery(query);
}

/** Build a client from the parsed environment. */
export function mlflowClientFromConfig(config: Config, logger?: Logger): MlflowClient {
  const m = config.mlflow;
  return createMlflowClient({
    trackingUri: m.trackingUri,
    uiUrl: m.uiUrl,
    token: m.token,
    username: m.username,
    password: m.password,
    timeoutMs: m.timeoutMs,
    artifactTimeoutMs: m.artifactTimeoutMs,
    retry: { maxRetries: m.maxRetries },
    keepAlive: m.keepAlive,
    logger,
  });
}

/** Where `tagEndpoint` writes `METHOD /path` (as openapi.yaml spells it) on each answer. */
const ENDPOINT = Symbol('runwarden.endpoint');

/** openapi-fetch middleware: remember which endpoint an answer came from, for `ok()`'s check. */
const tagEndpoint: Middleware = {
  onResponse({ request, schemaPath, response }) {
    Object.defineProperty(response, ENDPOINT, { value: `${request.method} ${schemaPath}` });
  },
};

/**
 * Unwrap an openapi-fetch result. The transport already threw for non-2xx answers, so `data` is
 * there; MLflow answers `{}` for empty results, which stays `{}`. Fields MLflow always sends
 * (`required.ts`) are checked: a missing one is an MlflowBadResponseError naming it.
 */
export async function ok<T>(
  call: Promise<{ data?: T; error?: unknown; response?: Response }>,
): Promise<NonNullable<T>> {
  const { data, response } = await call;
  const endpoint = (response as { [ENDPOINT]?: string } | undefined)?.[ENDPOINT];
  const required = endpoint ? REQUIRED_FIELDS[endpoint] : undefined;
  if (endpoint && required) {
    const missing = missingRequiredField(data ?? {}, required);
    if (missing) throw new MlflowBadResponseError(endpoint, missing);
  }
  return (data ?? {}) as NonNullable<T>;
}
