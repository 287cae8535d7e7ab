/**
 * `runwarden serve`: the MCP server over Streamable HTTP. One stateful MCP session per client;
 * a session that closes or idles out has its runs' buffers flushed, and leases decide what happens
 * to the runs (another session may continue them; the reaper closes them if nobody renews the
 * lease; the server's shutdown ends the ones it owns KILLED); requests checked for
 * Host and Origin (DNS rebinding; parsed in `origin.ts`), a bearer token when one is set (required off loopback) and a
 * body size cap; `/health` and the task event streams (`/tasks/:id/events`) beside `/mcp`, and
 * (src/obs) `/metrics` in Prometheus text and the queue dashboard under `/admin/queues`, both behind
 * the same Host, Origin and token checks as `/mcp`.
 */
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { HttpSettings } from '../config.js';
import { capForEcho, RunwardenError, redactUri, redactUrisIn } from '../errors/index.js';
import { isDashboardPath, startObservability } from '../obs/index.js';
import { canonicalHost, hostOfHeader, isLoopbackHostname, originAllowed } from './origin.js';
import type { McpRuntime } from './runtime.js';
import { createServer } from './server.js';
import { streamTaskEvents } from './task-events.js';

export interface HttpOptions extends HttpSettings {
  /** Close sessions idle this long (default 1 h). */
  sessionIdleMs?: number;
}

export interface HttpServerHandle {
  url: string;
  port: number;
  /** Count another MLflow client's requests in /metrics too (e.g. `up`'s in-process worker). */
  observeMlflow(client: McpRuntime['client']): void;
  /** Close every session (flushing their runs, ending none) and stop listening. */
  close(reason: string): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function rpcError(
  res: http.ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
) {
  send(res, status, { jsonrpc: '2.0', error: { code: -32000, message }, id: null }, headers);
}

async function readBody(
  req: http.IncomingMessage,
  limit: number,
): Promise<{ ok: true; body: unknown } | { ok: false; status: number; message: string }> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit)
    return {
      ok: false,
      status: 413,
      message: `request body of ${declared} bytes exceeds the ${limit}-byte limit`,
    };
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit)
      return { ok: false, status: 413, message: `request body exceeds the ${limit}-byte limit` };
    chunks.push(chunk as Buffer);
  }
  if (!size) return { ok: true, body: undefined };
  try {
    return { ok: true, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  } catch {
    return { ok: false, status: 400, message: 'request body is not valid JSON' };
  }
}

export async function startHttpServer(runtime: McpRuntime, opts: HttpOptions): Promise<HttpServerHandle> {
  if (!isLoopbackHostname(canonicalHost(opts.host)) && !opts.token) {
    throw new RunwardenError(
      'CONFIG_ERROR',
      `refusing to serve MCP on ${opts.host} without a token: set RUNWARDEN_HTTP_TOKEN (16+ characters), or bind 127.0.0.1`,
    );
  }
  // Loopback names and literals are always allowed; others only when configured (or bound to).
  const allowedHosts = new Set(opts.allowedHosts.map(canonicalHost));
  if (!['0.0.0.0', '::'].includes(opts.host)) allowedHosts.add(canonicalHost(opts.host));
  const hostOk = (header: string | undefined) => {
    const host = hostOfHeader(header);
    return host !== undefined && (isLoopbackHostname(host) || allowedHosts.has(host));
  };
  const allowedOrigins = new Set(opts.allowedOrigins);
  const idleMs = opts.sessionIdleMs ?? 3_600_000;
  const log = runtime.logger;

  interface Session {
    transport: StreamableHTTPServerTransport;
    close: (reason: string) => Promise<void>;
    lastSeen: number;
    /** POST requests still being answered: a session busy with a tool call is not idle. */
    inFlight: number;
  }
  const sessions = new Map<string, Session>();
  const obs = startObservability(
    {
      client: runtime.client,
      logger: log,
      redisUrl: runtime.queues.redisUrl,
      prefix: runtime.queues.prefix,
      openRuns: () => runtime.runs.openRuns.list(),
      runsReaped: () => runtime.reaped.runs,
      reviewCounts: () => runtime.reviews.counts(),
    },
    {
      metrics: opts.metrics ?? { enabled: true, timeoutMs: 2_000 },
      dashboard: opts.dashboard ?? { enabled: true, readOnly: true },
    },
  );

  async function health(res: http.ServerResponse) {
    let mlflow: { reachable: boolean; version?: string; error?: string };
    try {
      const r = await runtime.client.transport.send(
        () => ({ url: `${runtime.client.trackingUri}/version`, init: { method: 'GET' } }),
        { retry: false, timeoutMs: 5_000 },
      );
      mlflow = { reachable: true, version: (await r.text()).trim() };
    } catch (err) {
      mlflow = { reachable: false, error: capForEcho(redactUrisIn((err as Error).message), 500) };
    }
    send(res, mlflow.reachable ? 200 : 503, {
      status: mlflow.reachable ? 'ok' : 'degraded',
      runwarden: runtime.version,
      // Never the credentials a URI may embed (http://user:pass@host, ?token=...).
      mlflow: { trackingUri: redactUri(runtime.client.trackingUri), ...mlflow },
      sessions: sessions.size,
    });
  }

  /** With a token set, answer 401 unless the request carries it; true when it may go on. */
  function authorized(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (!opts.token) return true;
    // Constant-time comparison, so response timing does not reveal how much of a guess was right.
    const given = Buffer.from(req.headers.authorization ?? '');
    const expected = Buffer.from(`Bearer ${opts.token}`);
    if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
    rpcError(res, 401, 'missing or wrong bearer token: send Authorization: Bearer <RUNWARDEN_HTTP_TOKEN>', {
      'www-authenticate': 'Bearer realm="runwarden"',
    });
    return false;
  }

  async function mcp(req: http.IncomingMessage, res: http.ServerResponse) {
    if (!authorized(req, res)) return;
    const sessionId = req.headers['mcp-session-id'];
    let body: unknown;
    if (req.method === 'POST') {
      const read = await readBody(req, opts.maxBodyBytes);
      if (!read.ok) return rpcError(res, read.status, read.message);
      body = read.body;
    }
    if (typeof sessionId === 'string') {
      const s = sessions.get(sessionId);
      if (!s)
        return rpcError(
          res,
          404,
          `unknown or expired MCP session ${capForEcho(sessionId, 100)}: initialize a new session`,
        );
      s.lastSeen = Date.now();
      if (req.method === 'POST') {
        s.inFlight++;
        res.once('close', () => {
          s.inFlight--;
          s.lastSeen = Date.now();
        });
      }
      await s.transport.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      return rpcError(res, 400, 'no mcp-session-id header: start with an initialize request');
    }
    const session = createServer({ ...runtime });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => session.sessionKey,
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, close: session.close, lastSeen: Date.now(), inFlight: 0 });
        log.info({ session: id }, 'MCP HTTP session opened');
      },
    });
    transport.onclose = () => {
      sessions.delete(session.sessionKey);
      void session.close('the MCP HTTP session was closed without calling end_run');
    };
    await session.server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  const server = http.createServer((req, res) => {
    const started = Date.now();
    const path = (req.url ?? '/').split('?')[0];
    const done = () =>
      log.debug({ method: req.method, path, status: res.statusCode, ms: Date.now() - started }, 'http');
    res.on('finish', done);
    if (!hostOk(req.headers.host)) {
      return rpcError(
        res,
        403,
        `Host header '${capForEcho(req.headers.host ?? '')}' is not allowed (DNS-rebinding protection); add it to RUNWARDEN_HTTP_ALLOWED_HOSTS`,
      );
    }
    if (!originAllowed(req.headers.origin, allowedOrigins)) {
      return rpcError(
        res,
        403,
        `Origin '${capForEcho(req.headers.origin ?? '')}' is not allowed; add it to RUNWARDEN_HTTP_ALLOWED_ORIGINS`,
      );
    }
    const handle = async () => {
      if (path === '/health' && req.method === 'GET') return health(res);
      if (path === '/mcp') return mcp(req, res);
      if (path === '/metrics' && req.method === 'GET' && obs.metrics) {
        if (!authorized(req, res)) return;
        return obs.metrics(res);
      }
      if (obs.dashboard && isDashboardPath(path ?? '')) {
        if (!authorized(req, res)) return;
        return obs.dashboard(req, res);
      }
      const task = /^\/tasks\/([A-Za-z0-9._-]+)\/events$/.exec(path ?? '');
      if (task && req.method === 'GET') {
        if (!authorized(req, res)) return;
        return streamTaskEvents(req, res, task[1]!, runtime.tasks, { logger: log });
      }
      return send(res, 404, {
        error: `no route ${capForEcho(req.method, 20)} ${capForEcho(path)}; MCP is at /mcp, health at /health, task events at /tasks/<id>/events, metrics at /metrics, the queue dashboard at /admin/queues`,
      });
    };
    handle().catch((err: unknown) => {
      log.error({ err }, 'http handler failed');
      if (!res.headersSent) rpcError(res, 500, 'internal error');
      else res.end();
    });
  });

  const sweeper = setInterval(
    () => {
      const now = Date.now();
      for (const [id, s] of sessions) {
        if (!s.inFlight && now - s.lastSeen > idleMs) {
          sessions.delete(id);
          const idle =
            idleMs >= 60_000 ? `${Math.round(idleMs / 60_000)} min` : `${Math.round(idleMs / 1000)} s`;
          void s.close(`the MCP HTTP session was idle for ${idle}`);
          void s.transport.close();
        }
      }
    },
    Math.min(idleMs, 60_000),
  );
  sweeper.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  }).catch(async (err: unknown) => {
    await obs.close();
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    observeMlflow: (client) => obs.observeClient(client),
    async close(reason) {
      clearInterval(sweeper);
      await Promise.allSettled([...sessions.values()].map((s) => s.close(reason)));
      for (const s of sessions.values()) await s.transport.close().catch(() => undefined);
      sessions.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await obs.close();
    },
  };
}
