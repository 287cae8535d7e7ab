// Claim-check inputs against the real MLflow server and a local HTTP server: runs:/ files and
// folders, mlflow-artifacts:/ URIs and http:// URLs are checked before enqueueing and brought into
// the workspace, each input in its own folder; a missing artifact is refused naming the input.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { getOrCreateExperiment, startRun } from '../../src/index.js';
import type { InputPolicy } from '../../src/runners/input-policy.js';
import { checkInputs, materializeInputs } from '../../src/runners/inputs.js';
import { testClient, uniqueName } from '../support/clients.js';

const client = testClient(inject('mlflowUrl'));
let dir = '';
let runId = '';
let artifactUri = '';
let web: http.Server;
let webUrl = '';
// The web server is on loopback: allowed by name, as RUNWARDEN_HTTP_INPUT_HOSTS would.
const policy: InputPolicy = { roots: [], allowDirs: false, httpHosts: ['127.0.0.1'] };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rw-inputs-it-'));
  await mkdir(join(dir, 'src', 'tables'), { recursive: true });
  await writeFile(join(dir, 'src', 'data.csv'), 'week,cases\n1,10\n');
  await writeFile(join(dir, 'src', 'tables', 'a.csv'), 'x\n1\n');
  await writeFile(join(dir, 'src', 'tables', 'b.csv'), 'x\n2\n');
  const { experimentId } = await getOrCreateExperiment(client, uniqueName('inputs'));
  const run = await startRun(client, { experimentId, handleSignals: false });
  await run.logArtifact(join(dir, 'src', 'data.csv'), 'data');
  await run.logArtifact(join(dir, 'src', 'tables'), 'tables');
  await run.end('FINISHED');
  runId = run.runId;
  artifactUri = run.artifactUri;
  web = http.createServer((req, res) => {
    if (req.url === '/series/data.csv') res.writeHead(200).end('week,cases\n9,90\n');
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => web.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

describe('claim-check inputs', () => {
  it('runs:/ file and folder, mlflow-artifacts:/ and http:// inputs all pass the check and land in their own folders', async () => {
    const inputs = {
      series: `runs:/${runId}/data/data.csv`,
      tables: `runs:/${runId}/tables`,
      proxied: `${artifactUri}/data/data.csv`,
      web: `${webUrl}/series/data.csv`,
    };
    expect(artifactUri).toMatch(/^mlflow-artifacts:\//);
    await checkInputs(client, inputs, policy);
    const into = join(dir, 'ws', 'inputs');
    const out = await materializeInputs(client, inputs, into, policy);
    expect(out).toEqual({
      series: join(into, 'series', 'data.csv'),
      tables: join(into, 'tables', 'tables'),
      proxied: join(into, 'proxied', 'data.csv'),
      web: join(into, 'web', 'data.csv'),
    });
    // Three inputs named data.csv, none overwritten by another.
    expect(readFileSync(out.series!, 'utf8')).toBe('week,cases\n1,10\n');
    expect(readFileSync(out.proxied!, 'utf8')).toBe('week,cases\n1,10\n');
    expect(readFileSync(out.web!, 'utf8')).toBe('week,cases\n9,90\n');
    expect(readFileSync(join(out.tables!, 'a.csv'), 'utf8')).toBe('x\n1\n');
    expect(readFileSync(join(out.tables!, 'b.csv'), 'utf8')).toBe('x\n2\n');
  });

  it('checkInputs: a missing runs:/ artifact, mlflow-artifacts:/ file or URL is refused naming the input', async () => {
    await expect(checkInputs(client, { series: `runs:/${runId}/nope.csv` }, policy)).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'inputs.series',
    });
    await expect(checkInputs(client, { proxied: `${artifactUri}/nope.csv` }, policy)).rejects.toMatchObject({
      field: 'inputs.proxied',
    });
    await expect(checkInputs(client, { web: `${webUrl}/nope.csv` }, policy)).rejects.toThrow(
      /inputs\.web: .*nope\.csv cannot be read \(HTTP 404\)/,
    );
  });
});
