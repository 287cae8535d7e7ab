// MCP overhead benchmark: latency of one `get_run` tool call through runwarden's MCP server, over
// stdio (SDK Client + StdioClientTransport spawning the compiled `node dist/cli/index.js mcp`) and
// over Streamable HTTP (SDK StreamableHTTPClientTransport against `node dist/cli/index.js serve`),
// against the baseline: the REST call get_run makes, `GET <mlflow>/api/2.0/mlflow/runs/get?run_id=`
// with fetch from this process, reading the JSON body. All three hit one local MLflow server
// (SQLite, 2 workers) started here, and read one run created first (5 params, 5 metrics, 3 tags).
// Both MCP clients list tools first, as agents do, so the SDK client validates each result against
// get_run's output schema, which is part of the cost measured. After --warmup calls of each path,
// --calls rounds run one call of each path per round, in an order rotated every round to spread
// noise; each call is timed from request to parsed result. The table shows p50, p99 (nearest rank)
// and mean per path, and the overheads p50(stdio) - p50(REST) and p50(HTTP) - p50(REST); the target
// is an overhead over stdio of at most 2 ms at p50. `dist/` is rebuilt first when older than src/
// (tsc, ~30 s) so tsx's transform cost is not in the loop. The servers' MLflow reaper loop is off
// (RUNWARDEN_REAP_INTERVAL_MS=0) so a sweep lands in no measurement, and they log at warn.
// MLflow (Python, 2 workers) answers in 10-150 ms on a busy 2-core machine, so its jitter can hide
// a 2 ms difference (the direct overhead swung from -3 to +9 ms between runs here). So a second
// pass (skipped with --direct-only) sends all three paths through a timing proxy (a worker thread
// here) in front of MLflow and takes MLflow's part of each call, the hop to it included, out of each
// sample: what is left is the cost of the path itself, and its overhead line is the steady one. The
// second pass also times an MCP ping per transport (the SDK round trip with no tool and no MLflow).
// --profile also records CPU profiles of both servers (V8 --cpu-prof) and of this process (the
// clients) over the timed rounds only, prints where the CPU time goes by package, and times the
// MCP machinery in one process with no I/O (SDK Client + runwarden's server over InMemoryTransport,
// MLflow answered by a canned fetch), with zod and AJV validation timed on their own.
// Usage: npm run bench:mcp -- [--calls N] [--warmup W] [--direct-only] [--profile] [--skip-build]

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { Session } from 'node:inspector/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import { z } from 'zod';
import { silentLogger } from '../src/log.js';
import { McpRunRegistry } from '../src/mcp/runs.js';
import { createServer } from '../src/mcp/server.js';
import { runSummaryShape } from '../src/mcp/tools/shapes.js';
import { createMlflowClient } from '../src/mlflow/client.js';
import { type MlflowServer, repoRoot, startMlflowServer } from '../test/support/services.js';
import { formatTable, positiveInt, requireVenv } from './support.js';

const cliJs = join(repoRoot, 'dist', 'cli', 'index.js');
const profileDir = join(repoRoot, '.data', 'bench-mcp', 'profiles');
const TARGET_MS = 2;

type PathId = 'rest' | 'stdio' | 'http';
const PATHS: readonly PathId[] = ['rest', 'stdio', 'http'];
const LABELS: Record<PathId, string> = {
  rest: 'REST GET runs/get (baseline)',
  stdio: 'MCP get_run over stdio',
  http: 'MCP get_run over Streamable HTTP',
};

interface Options {
  calls: number;
  warmup: number;
  profile: boolean;
  isolate: boolean;
  skipBuild: boolean;
}

const log = (msg: string) => process.stderr.write(`bench:mcp: ${msg}\n`);

function parseCli(): Options {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string' },
      warmup: { type: 'string' },
      profile: { type: 'boolean', default: false },
      'direct-only': { type: 'boolean', default: false },
      'skip-build': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      'Usage: npm run bench:mcp -- [--calls N (500)] [--warmup W (50)] [--direct-only] [--profile] [--skip-build]',
    );
    process.exit(0);
  }
  return {
    calls: positiveInt('calls', values.calls, 500),
    warmup: positiveInt('warmup', values.warmup, 50),
    profile: values.profile,
    isolate: !values['direct-only'],
    skipBuild: values['skip-build'],
  };
}

// --- build ---------------------------------------------------------------------------------------

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Runs `npm run build` unless dist/cli/index.js is newer than every file under src/. */
function ensureBuilt(skip: boolean): void {
  let built = 0;
  try {
    built = statSync(cliJs).mtimeMs;
  } catch {
    // not built yet
  }
  if (built && (skip || built >= newestMtime(join(repoRoot, 'src')))) return;
  if (skip) throw new Error(`--skip-build given but ${cliJs} does not exist: run npm run build`);
  log('dist/ is missing or older than src/: npm run build (~30 s) ...');
  execFileSync('npm', ['run', 'build', '--silent'], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

// --- MLflow fixture ------------------------------------------------------------------------------

async function mlflowPost<T>(base: string, path: string, body: unknown): Promise<T> {
  const res = await fetch(`${base}/api/2.0/mlflow/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`MLflow ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** One finished run with 5 params, 5 metrics and 3 tags; returns its id. */
async function createRun(base: string): Promise<string> {
  const { experiment_id } = await mlflowPost<{ experiment_id: string }>(base, 'experiments/create', {
    name: `bench-mcp-${Date.now()}`,
  });
  const now = Date.now();
  const { run } = await mlflowPost<{ run: { info: { run_id: string } } }>(base, 'runs/create', {
    experiment_id,
    run_name: 'bench-mcp',
    start_time: now,
  });
  const runId = run.info.run_id;
  await mlflowPost(base, 'runs/log-batch', {
    run_id: runId,
    params: ['lr', 'batch_size', 'epochs', 'optimizer', 'seed'].map((key, i) => ({
      key,
      value: ['0.001', '64', '10', 'adam', '42'][i],
    })),
    metrics: ['loss', 'accuracy', 'val_loss', 'val_accuracy', 'f1'].map((key, i) => ({
      key,
      value: 0.1 * (i + 1),
      timestamp: now,
      step: 9,
    })),
    tags: [
      { key: 'team', value: 'bench' },
      { key: 'dataset', value: 'synthetic' },
      { key: 'mlflow.note.content', value: 'created by bench/mcp.ts' },
    ],
  });
  await mlflowPost(base, 'runs/update', { run_id: runId, status: 'FINISHED', end_time: Date.now() });
  return runId;
}

// --- the three paths -----------------------------------------------------------------------------

type Call = () => Promise<void>;

/**
 * The REST baseline uses the connection policy runwarden's transport uses for a loopback MLflow: a
 * fresh connection per request. A reused (keep-alive) connection to MLflow's uvicorn waits ~40 ms
 * per request for a delayed ACK (see docs/library.md, keep-alive), which would make the baseline
 * slower than the MCP paths and the overhead negative.
 */
function restCall(base: string, runId: string): Call {
  const url = `${base}/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(runId)}`;
  const agent = new http.Agent({ keepAlive: false });
  return () =>
    new Promise<void>((resolve, reject) => {
      http
        .get(url, { agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
              run?: { info?: { run_id?: string } };
            };
            if (res.statusCode !== 200 || body.run?.info?.run_id !== runId)
              reject(new Error(`REST runs/get answered ${res.statusCode}`));
            else resolve();
          });
        })
        .on('error', reject);
    });
}

function checkToolResult(result: unknown, runId: string, path: PathId): void {
  const r = result as { isError?: boolean; structuredContent?: { run_id?: unknown }; content?: unknown };
  if (r.isError || r.structuredContent?.run_id !== runId) {
    throw new Error(
      `get_run over ${path} did not return the run: ${JSON.stringify(r.content).slice(0, 300)}`,
    );
  }
}

function mcpCall(client: Client, runId: string, path: PathId): Call {
  return async () => {
    checkToolResult(await client.callTool({ name: 'get_run', arguments: { run_id: runId } }), runId, path);
  };
}

function serverEnv(mlflowUrl: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  delete env.RUNWARDEN_HTTP_TOKEN; // the HTTP client here sends no token
  return {
    ...env,
    MLFLOW_TRACKING_URI: mlflowUrl,
    RUNWARDEN_LOG_LEVEL: 'warn',
    RUNWARDEN_REAP_INTERVAL_MS: '0',
  };
}

/** node's arguments for `runwarden <command>`, with a CPU profile written at exit when asked. */
function serverArgs(command: 'mcp' | 'serve', profileName: string | undefined): string[] {
  const prof = profileName
    ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${profileName}.cpuprofile`]
    : [];
  return [...prof, cliJs, command];
}

async function connectStdio(mlflowUrl: string, profile: boolean): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: serverArgs('mcp', profile ? 'stdio-server' : undefined),
    cwd: repoRoot,
    env: serverEnv(mlflowUrl),
    stderr: 'inherit',
  });
  const client = new Client({ name: 'bench-mcp-stdio', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

interface HttpServer {
  child: ChildProcess;
  url: string;
  exited: Promise<void>;
}

/** Starts `runwarden serve` on a port the OS picks and waits for the URL it prints. */
async function startServe(mlflowUrl: string, profile: boolean): Promise<HttpServer> {
  const child = spawn(process.execPath, serverArgs('serve', profile ? 'http-server' : undefined), {
    cwd: repoRoot,
    env: { ...serverEnv(mlflowUrl), RUNWARDEN_HTTP_PORT: '0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`runwarden serve printed no URL in 30 s:\n${stderr}`)),
      30_000,
    );
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      const m = /MCP at (http:\/\/\S+\/mcp)/.exec(stderr);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`runwarden serve exited (${signal ?? code}):\n${stderr}`));
    });
  });
  child.stderr?.on('data', (chunk: string) => process.stderr.write(`serve: ${chunk}`));
  return { child, url, exited };
}

async function connectHttp(url: string): Promise<Client> {
  const client = new Client({ name: 'bench-mcp-http', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

// --- measuring -----------------------------------------------------------------------------------

/** Nearest-rank percentile of ascending `sorted`. */
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Ascending differences a[i] - b[i]. */
function sortedDiffs(a: readonly number[], b: readonly number[]): number[] {
  return a.map((x, i) => x - (b[i] ?? 0)).sort((x, y) => x - y);
}

interface Stats {
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    min: sorted[0]!,
    max: sorted.at(-1)!,
  };
}

/**
 * `rounds` rounds of one call per path, in an order rotated each round; ms per call per path. With
 * `upstreamMs` (a running total of MLflow's time), each sample has MLflow's part taken out.
 */
async function measure(
  calls: Record<PathId, Call>,
  rounds: number,
  upstreamMs?: () => number,
): Promise<Record<PathId, number[]>> {
  const samples: Record<PathId, number[]> = { rest: [], stdio: [], http: [] };
  for (let i = 0; i < rounds; i++) {
    for (let j = 0; j < PATHS.length; j++) {
      const path = PATHS[(i + j) % PATHS.length]!;
      const up0 = upstreamMs?.() ?? 0;
      const t0 = performance.now();
      await calls[path]();
      const elapsed = performance.now() - t0;
      samples[path].push(elapsed - ((upstreamMs?.() ?? 0) - up0));
    }
  }
  return samples;
}

// --- timing proxy --------------------------------------------------------------------------------

interface RecordingProxy {
  url: string;
  /** Total ms MLflow took over all requests so far (request received to MLflow's last byte). */
  upstreamMs: () => number;
  close(): Promise<void>;
}

// The proxy runs in a worker thread, so that, as with MLflow itself, reaching it means waking
// another thread: MLflow's part of a call (the hop to it included) is what the proxy times and the
// bench subtracts. It adds microseconds up in shared memory, written before the answer's last byte
// is passed on, so the total is current when the call returns.
const PROXY_WORKER = `
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const { parentPort, workerData } = require('node:worker_threads');
const upstream = new URL(workerData.target);
const totalUs = new BigInt64Array(workerData.shared);
const agent = new http.Agent({ keepAlive: true });
const server = http.createServer((req, res) => {
  const started = performance.now();
  const forward = http.request(
    { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method,
      headers: { ...req.headers, host: upstream.host }, agent },
    (answer) => {
      const chunks = [];
      answer.on('data', (chunk) => chunks.push(chunk));
      answer.once('end', () => {
        Atomics.add(totalUs, 0, BigInt(Math.round((performance.now() - started) * 1000)));
        res.writeHead(answer.statusCode || 502, answer.headers);
        res.end(Buffer.concat(chunks));
      });
    },
  );
  forward.once('error', (err) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('proxy: ' + err.message);
  });
  req.pipe(forward);
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
`;

/** A pass-through HTTP proxy on 127.0.0.1 in front of `target` that adds up MLflow's time. */
async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const shared = new SharedArrayBuffer(8);
  const totalUs = new BigInt64Array(shared);
  const worker = new Worker(PROXY_WORKER, { eval: true, workerData: { target, shared } });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (value: unknown) => resolve(Number(value)));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the timing proxy exited (${code})`)));
  });
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    upstreamMs: () => Number(Atomics.load(totalUs, 0)) / 1000,
    close: () => {
      closing ??= worker.terminate().then(() => undefined);
      return closing;
    },
  };
}

// --- profiles ------------------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/**
 * What a profile frame's script belongs to: a package, runwarden, or a V8 pseudo-frame; undefined
 * for builtins (JSON.parse...) and node core (streams, net, events), which are charged to the
 * package that called them.
 */
function categoryOf(url: string, functionName: string): string | undefined {
  if (!url) {
    if (functionName === '(garbage collector)') return 'V8 garbage collector';
    if (functionName === '(program)') return 'V8 (program: compiler, native, unattributed)';
    if (functionName === '(idle)') return 'idle';
    return undefined;
  }
  if (url.includes('node:internal/deps/undici')) return 'undici (fetch)';
  if (url.startsWith('node:')) return undefined;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg?.[1]) return pkg[1];
  if (url.includes('/dist/') || url.includes('/src/')) return 'runwarden';
  if (url.includes('/bench/')) return 'bench harness';
  return 'other';
}

/**
 * CPU ms per category over [fromUs, toUs] (the profile's monotonic clock, which is process.hrtime's
 * on Linux). A sample is charged to its innermost frame that belongs to a package (or runwarden), so
 * node core and builtins count for the package that called them; what no package called (I/O
 * callbacks of the event loop) is 'node core'.
 */
function profileByCategory(profile: CpuProfile, fromUs: number, toUs: number): Map<string, number> {
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const nodeCategory = new Map<number, string>();
  const categorize = (id: number): string => {
    const known = nodeCategory.get(id);
    if (known) return known;
    let cat: string | undefined;
    let inNodeCore = false;
    for (let cur: number | undefined = id; cur !== undefined && cat === undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame;
      if (!frame) break;
      cat = categoryOf(frame.url, frame.functionName);
      inNodeCore ||= frame.url.startsWith('node:');
    }
    const result = cat ?? (inNodeCore ? 'node core (event loop, I/O, under no package)' : 'builtins');
    nodeCategory.set(id, result);
    return result;
  };
  const totals = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    // The delta before sample i+1 is how long sample i's stack was running.
    const dur = deltas[i + 1] ?? 0;
    if (t < fromUs || t > toUs) continue;
    const cat = categorize(samples[i]!);
    totals.set(cat, (totals.get(cat) ?? 0) + dur / 1000);
  }
  return totals;
}

function printProfile(title: string, totals: Map<string, number>, rounds: number): void {
  const busy = [...totals].filter(([cat]) => cat !== 'idle').sort((a, b) => b[1] - a[1]);
  const busyMs = busy.reduce((sum, [, ms]) => sum + ms, 0);
  console.log(`\n${title}: ${busyMs.toFixed(0)} ms CPU busy over ${rounds} rounds`);
  console.log(
    formatTable(
      ['where', 'CPU ms', 'us per round', 'share'],
      busy
        .filter(([, ms]) => ms >= busyMs * 0.005)
        .map(([cat, ms]) => [
          cat,
          ms.toFixed(1),
          ((ms * 1000) / rounds).toFixed(0),
          `${((100 * ms) / busyMs).toFixed(1)}%`,
        ]),
      ['l', 'r', 'r', 'r'],
    ),
  );
}

// --- in-process floor ----------------------------------------------------------------------------

/**
 * The CPU cost of the MCP machinery alone, with no process, pipe or socket in between: get_run
 * through an SDK Client and runwarden's server joined by InMemoryTransport, with MLflow replaced by a
 * fetch that answers `body` (the real runs/get answer), against that fetch plus res.json(). Also the
 * validation steps on their own: zod on the server (input twice: SDK and define.ts; output once)
 * and on the client (CallToolResultSchema), and the client's AJV check of structuredContent.
 */
async function inProcessFloor(body: string, runId: string, n: number): Promise<void> {
  const fakeFetch: typeof fetch = async () =>
    new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
  const mlflowClient = createMlflowClient({ trackingUri: 'http://127.0.0.1:9', fetch: fakeFetch });
  const session = createServer({
    client: mlflowClient,
    runs: new McpRunRegistry(mlflowClient, 900_000),
    settings: {
      readOnly: true,
      allowedRoots: [],
      maxInlineArtifactBytes: 1 << 20,
      readArtifactMaxBytes: 1 << 20,
      leaseSeconds: 900,
      owner: 'mcp:bench',
    },
    logger: silentLogger,
    prompts: [],
    version: 'bench',
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await session.server.connect(serverSide);
  const client = new Client({ name: 'bench-mcp-inprocess', version: '1.0.0' });
  await client.connect(clientSide);
  const { tools } = await client.listTools();
  const outputSchema = tools.find((t) => t.name === 'get_run')?.outputSchema;
  if (!outputSchema) throw new Error('get_run has no output schema');
  const result = await client.callTool({ name: 'get_run', arguments: { run_id: runId } });
  checkToolResult(result, runId, 'stdio');
  const structured = (result as { structuredContent: Record<string, unknown> }).structuredContent;
  const ajv = new AjvJsonSchemaValidator().getValidator(outputSchema);
  const input = z.object({ run_id: z.string() });
  const output = z.object(runSummaryShape);

  const timeUs = async (fn: () => unknown): Promise<number> => {
    for (let i = 0; i < Math.min(n, 200); i++) await fn();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fn();
    return ((performance.now() - t0) * 1000) / n;
  };
  const rest = await timeUs(async () => (await fakeFetch('http://127.0.0.1:9')).json());
  const openapi = await timeUs(() =>
    mlflowClient.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }),
  );
  const mcp = await timeUs(() => client.callTool({ name: 'get_run', arguments: { run_id: runId } }));
  const zodServer = await timeUs(async () => {
    input.parse({ run_id: runId });
    input.parse({ run_id: runId });
    await output.safeParseAsync(structured);
  });
  const zodClient = await timeUs(() => CallToolResultSchema.parse(result));
  const ajvClient = await timeUs(() => ajv(structured));
  await client.close();
  await session.close('bench over');

  console.log(`
CPU floor per get_run call in one process, no I/O (${n} calls each, us):`);
  console.log(
    formatTable(
      ['what', 'us per call'],
      [
        ['fetch + res.json() of the runs/get answer (REST analog)', rest.toFixed(0)],
        ["runwarden's client.api.GET runs/get (openapi-fetch + retrying transport)", openapi.toFixed(0)],
        ['MCP get_run: SDK Client <-> runwarden server over InMemoryTransport', mcp.toFixed(0)],
        ['  of which zod on the server (input x2, output schema)', zodServer.toFixed(1)],
        ['  of which zod on the client (CallToolResultSchema)', zodClient.toFixed(1)],
        ['  of which AJV on the client (output schema)', ajvClient.toFixed(1)],
      ],
      ['l', 'r'],
    ),
  );
  console.log(`MCP machinery floor (MCP - REST analog): ${(mcp - rest).toFixed(0)} us per call`);
}

const hrtimeUs = () => Number(process.hrtime.bigint() / 1000n);

function readProfile(name: string): CpuProfile | undefined {
  try {
    return JSON.parse(readFileSync(join(profileDir, `${name}.cpuprofile`), 'utf8')) as CpuProfile;
  } catch {
    return undefined;
  }
}

// --- main ----------------------------------------------------------------------------------------

const fmt = (ms: number) => ms.toFixed(2);
const fmtSigned = (ms: number) => `${ms >= 0 ? '+' : ''}${ms.toFixed(2)}`;
const verdict = (overhead: number) =>
  `${overhead <= TARGET_MS ? 'MET' : 'NOT MET'} (${fmtSigned(overhead)} ms)`;

function report(samples: Record<PathId, number[]>, opts: Options, load: readonly [number, number]): void {
  const s: Record<PathId, Stats> = {
    rest: stats(samples.rest),
    stdio: stats(samples.stdio),
    http: stats(samples.http),
  };
  console.log(`\nget_run latency, ${opts.calls} calls per path after ${opts.warmup} warm-up calls (ms)`);
  console.log(
    `machine: ${availableParallelism()} CPUs, 1-min load average ${load[0].toFixed(1)} before and ` +
      `${load[1].toFixed(1)} after the timed rounds${opts.profile ? '; profilers on (--profile) add latency' : ''}`,
  );
  console.log(
    formatTable(
      ['path', 'p50', 'p99', 'mean', 'min', 'max', 'p50 overhead vs REST'],
      PATHS.map((p) => [
        LABELS[p],
        fmt(s[p].p50),
        fmt(s[p].p99),
        fmt(s[p].mean),
        fmt(s[p].min),
        fmt(s[p].max),
        p === 'rest' ? '-' : fmtSigned(s[p].p50 - s.rest.p50),
      ]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  );
  const stdioOverhead = s.stdio.p50 - s.rest.p50;
  // Each round calls all three paths back to back, so a round's differences share the machine's
  // state at that moment; their median is steadier than a difference of medians on a busy machine.
  const paired = (p: PathId) => percentile(sortedDiffs(samples[p], samples.rest), 50);
  console.log(
    `overhead p50 stdio - p50 REST: ${fmtSigned(stdioOverhead)} ms (median of per-round differences: ${fmtSigned(paired('stdio'))} ms)`,
  );
  console.log(
    `overhead p50 HTTP - p50 REST: ${fmtSigned(s.http.p50 - s.rest.p50)} ms (median of per-round differences: ${fmtSigned(paired('http'))} ms)`,
  );
  console.log(`target p50 overhead over stdio <= ${TARGET_MS} ms: ${verdict(stdioOverhead)}`);
}

function reportIsolated(net: Record<PathId, number[]>, opts: Options): void {
  const s: Record<PathId, Stats> = { rest: stats(net.rest), stdio: stats(net.stdio), http: stats(net.http) };
  console.log(
    `\nsecond pass: ${opts.calls} rounds through a timing proxy, MLflow's part taken out of each call ` +
      '(ms; what is left is the path itself: client, hops, server)',
  );
  console.log(
    formatTable(
      ['path', 'p50', 'p99', 'mean', 'p50 overhead vs REST'],
      PATHS.map((p) => [
        LABELS[p],
        fmt(s[p].p50),
        fmt(s[p].p99),
        fmt(s[p].mean),
        p === 'rest' ? '-' : fmtSigned(s[p].p50 - s.rest.p50),
      ]),
      ['l', 'r', 'r', 'r', 'r'],
    ),
  );
  console.log(
    `target p50 overhead over stdio <= ${TARGET_MS} ms, MLflow's time taken out: ${verdict(s.stdio.p50 - s.rest.p50)}`,
  );
}

interface Paths {
  calls: Record<PathId, Call>;
  /** An MCP ping per transport: the SDK round trip with no tool and no MLflow. */
  pings: Record<'stdio' | 'http', Call>;
  /** Closes both clients and stops both servers (idempotent). */
  stop(): Promise<void>;
}

/**
 * Starts the two MCP servers against `trackingUrl` (stdio: spawned by the SDK client; HTTP:
 * `runwarden serve`), connects a client to each, lists tools, and returns one call per path.
 */
async function startPaths(trackingUrl: string, runId: string, profile: boolean): Promise<Paths> {
  const stops: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      while (stops.length) await stops.pop()!().catch(() => undefined);
    })();
    return stopping;
  };
  try {
    const stdio = await connectStdio(trackingUrl, profile);
    stops.push(() => stdio.close());
    const serve = await startServe(trackingUrl, profile);
    stops.push(async () => {
      if (serve.child.exitCode === null && serve.child.signalCode === null) {
        serve.child.kill('SIGTERM');
        const killer = setTimeout(() => serve.child.kill('SIGKILL'), 10_000);
        await serve.exited;
        clearTimeout(killer);
      }
    });
    const http = await connectHttp(serve.url);
    stops.push(() => http.close());
    // As agents do: list the tools first (the client then validates results against output schemas).
    for (const client of [stdio, http]) {
      const { tools } = await client.listTools();
      if (!tools.some((t) => t.name === 'get_run' && t.outputSchema))
        throw new Error('get_run (with an output schema) is not listed');
    }
    return {
      calls: {
        rest: restCall(trackingUrl, runId),
        stdio: mcpCall(stdio, runId, 'stdio'),
        http: mcpCall(http, runId, 'http'),
      },
      pings: {
        stdio: async () => {
          await stdio.ping();
        },
        http: async () => {
          await http.ping();
        },
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function bench(mlflow: MlflowServer, opts: Options, cleanups: (() => Promise<void>)[]): Promise<void> {
  const runId = await createRun(mlflow.url);
  const runGetBody = await (await fetch(`${mlflow.url}/api/2.0/mlflow/runs/get?run_id=${runId}`)).text();
  log(`run ${runId} created; starting the MCP servers (stdio and HTTP) from dist/`);
  if (opts.profile) {
    rmSync(profileDir, { recursive: true, force: true });
    mkdirSync(profileDir, { recursive: true });
  }

  const paths = await startPaths(mlflow.url, runId, opts.profile);
  cleanups.push(() => paths.stop());
  log(`warming up: ${opts.warmup} calls per path`);
  await measure(paths.calls, opts.warmup);

  let session: Session | undefined;
  if (opts.profile) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  log(`measuring: ${opts.calls} rounds of one call per path`);
  const loadBefore = loadavg()[0]!;
  const fromUs = hrtimeUs();
  const samples = await measure(paths.calls, opts.calls);
  const toUs = hrtimeUs();
  const clientProfile = session ? ((await session.post('Profiler.stop')).profile as CpuProfile) : undefined;
  session?.disconnect();
  // The servers write their profiles when they exit.
  await paths.stop();

  report(samples, opts, [loadBefore, loadavg()[0]!]);

  if (opts.isolate) {
    // Second pass: everything (REST included) goes through a proxy here that times MLflow's part of
    // each call, and each sample has that time taken out, so MLflow's own jitter cancels.
    const proxy = await startRecordingProxy(mlflow.url);
    cleanups.push(() => proxy.close());
    log(`second pass: through a timing proxy (${proxy.url}) in front of MLflow`);
    const proxied = await startPaths(proxy.url, runId, false);
    cleanups.push(() => proxied.stop());
    await measure(proxied.calls, opts.warmup);
    const net = await measure(proxied.calls, opts.calls, proxy.upstreamMs);
    const pings: Record<'stdio' | 'http', number[]> = { stdio: [], http: [] };
    for (let i = 0; i < opts.calls; i++) {
      for (const t of i % 2 ? (['http', 'stdio'] as const) : (['stdio', 'http'] as const)) {
        const t0 = performance.now();
        await proxied.pings[t]();
        pings[t].push(performance.now() - t0);
      }
    }
    await proxied.stop();
    await proxy.close();
    reportIsolated(net, opts);
    console.log(
      `MCP ping round trip (SDK and transport only, no tool, no MLflow), p50: stdio ${fmt(stats(pings.stdio).p50)} ms, ` +
        `HTTP ${fmt(stats(pings.http).p50)} ms`,
    );
  }

  if (opts.profile && clientProfile) {
    console.log(`\nCPU profiles of the timed rounds (${profileDir}), charged to the package whose code ran:`);
    printProfile(
      'bench process (REST fetch + both SDK clients)',
      profileByCategory(clientProfile, 0, Infinity),
      opts.calls,
    );
    for (const name of ['stdio-server', 'http-server']) {
      const profile = readProfile(name);
      if (!profile) {
        console.log(`\n${name}: no profile written`);
        continue;
      }
      printProfile(`${name} process`, profileByCategory(profile, fromUs, toUs), opts.calls);
    }
    await inProcessFloor(runGetBody, runId, 2_000);
  }
}

async function main(): Promise<void> {
  const opts = parseCli();
  requireVenv();
  ensureBuilt(opts.skipBuild);
  log('starting MLflow server (10-40 s) ...');
  const started = performance.now();
  const mlflow = await startMlflowServer();
  log(`MLflow at ${mlflow.url} after ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const cleanups: (() => Promise<void>)[] = [() => mlflow.stop()];
  let stopping: Promise<void> | undefined;
  const stopAll = () => {
    stopping ??= (async () => {
      while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
    })();
    return stopping;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the servers`);
    void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await bench(mlflow, opts, cleanups);
  } finally {
    await stopAll();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:mcp failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
