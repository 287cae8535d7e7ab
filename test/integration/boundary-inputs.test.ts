// The task-input boundary against the real MLflow server and Redis, with `runwarden mcp`, the
// `runwarden enqueue` CLI and `runwarden worker` as their own processes: local inputs outside the
// input roots (directly or by symlink), folders, mlflow-artifacts:// URIs naming another host and
// http inputs from hosts not allow-listed are refused at enqueue over MCP and the CLI, and nothing
// reaches the other host (no Authorization header anywhere); a symlink swapped after enqueue and
// an http input the worker does not allow are refused when the worker brings them in (task failed,
// nothing of the target stored); a task's command sees MLflow settings but none of the worker's
// secrets; and workspace.zip holds inputs.json (URI, sha256) instead of a copy of the input.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMlflowClient } from '../../src/index.js';
import { TaskQueue } from '../../src/queue/task-queue.js';
import { checkInputs, materializeInputs } from '../../src/runners/inputs.js';
import { testClient, uniqueName } from '../support/clients.js';
import { stdioClient } from '../support/mcp.js';
import { pyGetRun, runPythonMlflow } from '../support/python.js';
import { repoRoot } from '../support/services.js';
import {
  type CliResult,
  findWorkspace,
  runCli,
  startWorkerProcess,
  stopAllWorkers,
  taskEnv,
  taskRuns,
  waitForTaskState,
  zipEntries,
  zipEntryText,
} from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const redisUrl = inject('redisUrl');
const client = testClient(mlflowUrl);
const TRACKING_TOKEN = 'tracking-token-for-boundary-tests';
const HTTP_TOKEN = 'mcp-http-token-the-script-must-not-see';
const SERIES = 'week,cases\n1,10\n2,12\n';

interface Seen {
  method: string;
  url: string;
  authorization?: string;
}

/** A loopback HTTP listener that records every request (method, path, Authorization header). */
async function recorder(host: string, handle: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const url = `http://${host}:${(server.address() as AddressInfo).port}`;
  return { seen, url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let tmp = '';
let tasksDir = '';
let dataRoot = '';
let outsideDir = '';
let marker = '';
let web: Awaited<ReturnType<typeof recorder>>;
let foreign: Awaited<ReturnType<typeof recorder>>;
const url = (p: string) => pathToFileURL(p).href;

/** The environment the CLI, the MCP server and the workers of a prefix share. */
function envFor(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return taskEnv({
    mlflowUrl,
    redisUrl,
    prefix,
    workDir: join(tmp, `work-${prefix}`),
    env: {
      RUNWARDEN_TASKS_DIR: tasksDir,
      RUNWARDEN_INPUT_ROOTS: dataRoot,
      MLFLOW_TRACKING_TOKEN: TRACKING_TOKEN,
      ...extra,
    },
  });
}

/** Every artifact file of a run, downloaded with MLflow's Python client: path → bytes. */
async function pyArtifactFiles(runId: string): Promise<Record<string, Buffer>> {
  const dst = join(tmp, `dl-${runId}`);
  await mkdir(dst, { recursive: true });
  const script = `
import json, os, mlflow
out = mlflow.artifacts.download_artifacts(run_id=os.environ['RW_RUN_ID'], dst_path=os.environ['RW_DST'])
print(json.dumps(out))
`;
  const root = await runPythonMlflow<string>(script, {
    trackingUri: mlflowUrl,
    env: { RW_RUN_ID: runId, RW_DST: dst },
  });
  const files: Record<string, Buffer> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir)) {
      const abs = join(dir, name);
      if (statSync(abs).isDirectory()) walk(abs, `${rel}${name}/`);
      else files[`${rel}${name}`] = readFileSync(abs);
    }
  };
  walk(root, '');
  return files;
}

/** Every file under a folder, as text (for a workspace left by KEEP_WORKSPACES). */
function textsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((rel) => join(dir, rel))
    .filter((abs) => statSync(abs).isFile())
    .map((abs) => readFileSync(abs, 'utf8'));
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rw-boundary-'));
  tasksDir = join(tmp, 'tasks');
  dataRoot = join(tmp, 'data-root');
  outsideDir = join(tmp, 'outside');
  await mkdir(join(tasksDir, 'envprint'), { recursive: true });
  for (const f of ['task.yaml', 'envprint.mjs']) {
    await copyFile(join(repoRoot, 'test', 'fixtures', 'boundary', f), join(tasksDir, 'envprint', f));
  }
  await mkdir(join(dataRoot, 'folder'), { recursive: true });
  await mkdir(outsideDir, { recursive: true });
  marker = `SECRET-${uniqueName('marker')}`;
  await writeFile(join(outsideDir, 'secret.txt'), `${marker}\n`);
  await writeFile(join(dataRoot, 'good.csv'), SERIES);
  await writeFile(join(dataRoot, 'folder', 'a.csv'), SERIES);
  await symlink(join(outsideDir, 'secret.txt'), join(dataRoot, 'escape.csv'));
  web = await recorder('127.0.0.1', (req, res) => {
    if (req.url === '/series.csv') res.writeHead(200, { 'content-type': 'text/csv' }).end(SERIES);
    else if (req.url === '/moved.csv') res.writeHead(302, { location: `${foreign.url}/x.csv` }).end();
    else res.writeHead(404).end();
  });
  foreign = await recorder('127.0.0.2', (_req, res) => res.writeHead(200).end(SERIES));
});

afterAll(async () => {
  await stopAllWorkers();
  await web?.close();
  await foreign?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('refused at enqueue, over MCP enqueue_task and the CLI', () => {
  const prefix = uniqueName('q-bound-refuse');
  let mcp: { client: Client; transport: StdioClientTransport };
  let queue: TaskQueue;
  const viaCli = new Map<string, Promise<CliResult>>();
  const cases = () => [
    { what: 'file:///etc/passwd', input: 'file:///etc/passwd', message: /outside the input roots/ },
    {
      what: 'a symlink inside the root that leads outside',
      input: url(join(dataRoot, 'escape.csv')),
      message: /escape\.csv \(resolves to .*secret\.txt\) is outside the input roots/,
    },
    {
      what: 'a folder (folders are off by default)',
      input: url(join(dataRoot, 'folder')),
      message: /is a folder; folder inputs are off/,
    },
    {
      what: 'an mlflow-artifacts:// URI naming another host',
      input: `mlflow-artifacts://${new URL(foreign.url).host}/x/data.csv`,
      message: /names host 127\.0\.0\.2:\d+, not the tracking server/,
    },
    {
      what: 'an http input from a host that is not allow-listed',
      input: `${web.url}/series.csv`,
      message:
        /http\(s\) inputs are allowed only from hosts named in RUNWARDEN_HTTP_INPUT_HOSTS \(now: none\)/,
    },
  ];

  beforeAll(async () => {
    queue = new TaskQueue({ redisUrl, prefix, tasksDir, client });
    // The CLI processes start together (each takes seconds to boot); every test checks its own.
    for (const c of cases()) {
      const p = runCli(['enqueue', 'envprint', '--input', `table=${c.input}`], envFor(prefix));
      p.catch(() => undefined);
      viaCli.set(c.what, p);
    }
    mcp = await stdioClient(envFor(prefix));
  }, 120_000);

  afterAll(async () => {
    await mcp?.client.close();
    await queue?.close();
  });

  it.each([
    'file:///etc/passwd',
    'a symlink inside the root that leads outside',
    'a folder (folders are off by default)',
    'an mlflow-artifacts:// URI naming another host',
    'an http input from a host that is not allow-listed',
  ])('%s is refused naming inputs.table, by MCP enqueue_task and by the CLI (exit 2)', async (what) => {
    const c = cases().find((x) => x.what === what)!;
    const res = (await mcp.client.callTool({
      name: 'enqueue_task',
      arguments: { template: 'envprint', inputs: { table: c.input } },
    })) as { isError?: boolean; content: { type: string; text: string }[] };
    expect(res.isError).toBe(true);
    const text = res.content.map((x) => x.text).join('\n');
    expect(text).toContain('inputs.table');
    expect(text).toMatch(c.message);

    const cli = await viaCli.get(what)!;
    expect(cli.code).toBe(2);
    expect(cli.err).toContain('VALIDATION_ERROR: inputs.table:');
    expect(cli.err).toMatch(c.message);
    expect(cli.out).toBe('');
  });

  it('after every refusal nothing is queued, and neither the other host nor the web server got a request (no Authorization header sent anywhere)', async () => {
    await Promise.all(viaCli.values());
    expect(await queue.list()).toEqual([]);
    expect(foreign.seen).toEqual([]);
    expect(web.seen).toEqual([]);
  });
});

describe('credentials go only to the tracking server', () => {
  it('transport: a request to the tracking origin carries the token; one to another host (JSON or streamed download) carries none', async () => {
    const tracking = await recorder('127.0.0.1', (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
    );
    try {
      const c = createMlflowClient({
        trackingUri: tracking.url,
        token: TRACKING_TOKEN,
        retry: { maxRetries: 0 },
      });
      await c.transport.send(() => ({ url: `${tracking.url}/api/2.0/mlflow/x`, init: { method: 'GET' } }));
      const before = foreign.seen.length;
      await c.transport.send(() => ({ url: `${foreign.url}/probe-json`, init: { method: 'GET' } }));
      await c.transport.getToFile(`${foreign.url}/probe-file`, join(tmp, 'probe-file'));
      expect(tracking.seen).toEqual([
        { method: 'GET', url: '/api/2.0/mlflow/x', authorization: `Bearer ${TRACKING_TOKEN}` },
      ]);
      expect(foreign.seen.slice(before)).toEqual([
        { method: 'GET', url: '/probe-json', authorization: undefined },
        { method: 'GET', url: '/probe-file', authorization: undefined },
      ]);
    } finally {
      foreign.seen.length = 0;
      await tracking.close();
    }
  });
});

describe('redirects are not followed', () => {
  it('checkInputs and materializeInputs: an allow-listed http input answering a redirect to another host is refused, and the other host gets no request', async () => {
    const policy = { roots: [dataRoot], allowDirs: false, httpHosts: ['127.0.0.1'] };
    const before = foreign.seen.length;
    const input = { table: `${web.url}/moved.csv` };
    await expect(checkInputs(client, input, policy)).rejects.toThrow(
      /inputs\.table: .*moved\.csv answered a redirect \(HTTP 302 to http:\/\/127\.0\.0\.2:\d+\/x\.csv\); redirects are not followed/,
    );
    await expect(materializeInputs(client, input, join(tmp, 'redirect-ws'), policy)).rejects.toThrow(
      /redirects are not followed/,
    );
    expect(foreign.seen.length).toBe(before);
  });
});

describe('refused again when the worker brings the input in', () => {
  const prefix = uniqueName('q-bound-late');
  let queue: TaskQueue;

  beforeAll(() => {
    // The planner's side allows web inputs from 127.0.0.1; the worker (started later) does not.
    queue = new TaskQueue({
      redisUrl,
      prefix,
      tasksDir,
      client,
      inputs: { roots: [dataRoot], allowDirs: false, httpHosts: ['127.0.0.1'] },
    });
  });

  afterAll(async () => {
    await stopAllWorkers();
    await queue?.close();
  });

  it('a symlink swapped to a file outside the roots after enqueue fails the task, and nothing of the target is in any artifact or the workspace; an http input the worker does not allow is never fetched', async () => {
    const experiment = uniqueName('boundary-late');
    web.seen.length = 0;
    const link = join(dataRoot, 'swap.csv');
    await symlink(join(dataRoot, 'good.csv'), link);
    const swapped = await queue.enqueue({ template: 'envprint', inputs: { table: url(link) }, experiment });
    const webTask = await queue.enqueue({
      template: 'envprint',
      inputs: { table: `${web.url}/series.csv` },
      experiment,
    });
    expect(web.seen.map((s) => s.method)).toEqual(['HEAD']); // the enqueue check
    await unlink(link);
    await symlink(join(outsideDir, 'secret.txt'), link);

    await startWorkerProcess({
      mlflowUrl,
      redisUrl,
      prefix,
      workDir: join(tmp, `work-${prefix}`),
      env: envFor(prefix),
    });
    const failed = await waitForTaskState(queue, swapped.task.taskId, ['failed', 'completed'], 120_000);
    expect(failed.state).toBe('failed');
    const [run] = await taskRuns(client, experiment, swapped.task.taskId);
    const py = await pyGetRun(mlflowUrl, run!.info!.run_id!);
    expect(py.status).toBe('FAILED');
    expect(py.tags['mlflow.note.content']).toMatch(
      /swap\.csv \(resolves to .*secret\.txt\) is outside the input roots/,
    );
    const files = await pyArtifactFiles(run!.info!.run_id!);
    for (const [p, bytes] of Object.entries(files)) expect(bytes.includes(marker), p).toBe(false);
    const ws = findWorkspace(join(tmp, `work-${prefix}`), swapped.task.taskId, 1);
    for (const text of ws ? textsUnder(ws) : []) expect(text).not.toContain(marker);

    const webFailed = await waitForTaskState(queue, webTask.task.taskId, ['failed', 'completed'], 120_000);
    expect(webFailed.state).toBe('failed');
    const [webRun] = await taskRuns(client, experiment, webTask.task.taskId);
    expect((await pyGetRun(mlflowUrl, webRun!.info!.run_id!)).tags['mlflow.note.content']).toMatch(
      /RUNWARDEN_HTTP_INPUT_HOSTS \(now: none\)/,
    );
    expect(web.seen.map((s) => s.method)).toEqual(['HEAD']);
  });
});

describe('an allowed task: explicit environment, web input from an allow-listed host, manifest instead of a copy', () => {
  const prefix = uniqueName('q-bound-ok');

  afterAll(async () => {
    await stopAllWorkers();
  });

  it('the command sees MLflow settings and what its template declares but none of the worker’s secrets, and workspace.zip holds inputs.json with the digest and no copy of the input', async () => {
    const allow = { RUNWARDEN_HTTP_INPUT_HOSTS: '127.0.0.1' };
    const secrets = {
      RUNWARDEN_HTTP_TOKEN: HTTP_TOKEN,
      RW_CLOUD_SECRET_KEY: 'cloud-secret-the-script-must-not-see',
      RW_TEST_PASSED: 'passed-through',
    };
    await startWorkerProcess({
      mlflowUrl,
      redisUrl,
      prefix,
      workDir: join(tmp, `work-${prefix}`),
      env: { ...envFor(prefix, allow), ...secrets },
    });
    web.seen.length = 0;
    const experiment = uniqueName('boundary-ok');
    const input = `${web.url}/series.csv`;
    const res = await runCli(
      ['enqueue', 'envprint', '--input', `table=${input}`, '--experiment', experiment, '--wait', '--json'],
      envFor(prefix, allow),
      120_000,
    );
    expect(res.err).not.toMatch(/VALIDATION_ERROR/);
    expect(res.code).toBe(0);
    const end = JSON.parse(res.out.slice(res.out.indexOf('{'))) as { task_id: string; state: string };
    expect(end.state).toBe('completed');
    // Checked at enqueue (HEAD), fetched by the worker (GET); no credentials to this host.
    expect(web.seen).toEqual([
      { method: 'HEAD', url: '/series.csv', authorization: undefined },
      { method: 'GET', url: '/series.csv', authorization: undefined },
    ]);

    const [run] = await taskRuns(client, experiment, end.task_id);
    const runId = run!.info!.run_id!;
    const files = await pyArtifactFiles(runId);
    const probe = JSON.parse(files['probe/env.json']!.toString('utf8')) as {
      env: Record<string, string>;
      tableSha256: string;
    };
    expect(probe.env).toMatchObject({
      MLFLOW_TRACKING_URI: mlflowUrl,
      MLFLOW_RUN_ID: runId,
      MLFLOW_EXPERIMENT_ID: run!.info!.experiment_id,
      MLFLOW_TRACKING_TOKEN: TRACKING_TOKEN,
      RUNWARDEN_TASK_ID: end.task_id,
      PYTHONUNBUFFERED: '1',
      RW_TEST_PASSED: 'passed-through',
      RW_TEST_FIXED: 'fixed-value',
    });
    expect(probe.env.PATH).toBeTruthy();
    for (const name of [
      'RUNWARDEN_HTTP_TOKEN',
      'RW_CLOUD_SECRET_KEY',
      'REDIS_URL',
      'RUNWARDEN_QUEUE_PREFIX',
    ]) {
      expect(probe.env[name], name).toBeUndefined();
    }
    expect(JSON.stringify(probe.env)).not.toContain(HTTP_TOKEN);

    const digest = createHash('sha256').update(SERIES).digest('hex');
    expect(probe.tableSha256).toBe(digest); // the script got the input
    const zip = join(tmp, `${end.task_id}.zip`);
    await writeFile(zip, files['workspace.zip']!);
    const entries = await zipEntries(zip);
    expect(entries).toContain('inputs.json');
    expect(entries.filter((e) => e.startsWith('inputs/'))).toEqual([]);
    expect(JSON.parse(await zipEntryText(zip, 'inputs.json'))).toEqual({
      inputs: [{ name: 'table', uri: input, kind: 'file', sha256: digest, bytes: SERIES.length, files: 1 }],
    });
  });
});
