// Artifacts against the real MLflow server's artifact proxy: a 200 MB file streamed up and down
// byte-identical with the process's peak RSS far below the file size, directory trees listed
// recursively, and small reads capped.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  downloadTree,
  getOrCreateExperiment,
  listArtifacts,
  readArtifact,
  startRun,
} from '../../src/index.js';
import { killFixtures, runFixture, testClient, uniqueName } from '../support/clients.js';
import { pyListArtifacts } from '../support/python.js';

const mlflowUrl = inject('mlflowUrl');
const client = testClient(mlflowUrl);
const MB = 1024 * 1024;
let dir = '';

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function writeRandomFile(file: string, megabytes: number): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < megabytes; i++) {
    if (!out.write(randomBytes(MB))) await once(out, 'drain');
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rw-artifacts-'));
});
afterEach(() => killFixtures());
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('artifacts', () => {
  it('uploadFile/downloadFile: a 200 MB file round-trips byte-identical while the transfer adds well under half its size to peak RSS', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('big'));
    const src = join(dir, 'big.bin');
    const back = join(dir, 'big.back.bin');
    await writeRandomFile(src, 200);
    const fx = runFixture('artifact-roundtrip', [mlflowUrl, experimentId, src, back]);
    const r = (await fx.firstLine) as {
      runId: string;
      baselineRssBytes: number;
      maxRssBytes: number;
      uploadSeconds: number;
      downloadSeconds: number;
    };
    expect((await fx.exited).code).toBe(0);
    expect(await sha256(back)).toBe(await sha256(src));
    // Streaming: holding the file would add 200 MB (twice, up and down). The transfers add well
    // under half of that to the process (Node + tsx alone is ~100 MB of the peak).
    const growth = r.maxRssBytes - r.baselineRssBytes;
    expect(growth).toBeLessThan(80 * MB);
    expect(r.maxRssBytes).toBeLessThan(200 * MB);
    const listed = await pyListArtifacts(mlflowUrl, r.runId, 'data');
    expect(listed).toEqual([{ path: 'data/big.bin', is_dir: false, file_size: 200 * MB }]);
    console.info(
      `200 MB artifact: peak RSS ${(r.maxRssBytes / MB).toFixed(1)} MB (baseline ${(r.baselineRssBytes / MB).toFixed(1)} MB), ` +
        `upload ${r.uploadSeconds.toFixed(1)} s, download ${r.downloadSeconds.toFixed(1)} s`,
    );
  });

  it('logArtifact: a directory tree is uploaded file by file, listed recursively and downloaded back', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('tree'));
    const tree = join(dir, 'model');
    await mkdir(join(tree, 'weights', 'deep'), { recursive: true });
    await writeFile(join(tree, 'MLmodel'), 'flavors: {}\n');
    await writeFile(join(tree, 'weights', 'w.bin'), randomBytes(4096));
    await writeFile(join(tree, 'weights', 'deep', 'x y.txt'), 'spaces in names survive');
    const run = await startRun(client, { experimentId, handleSignals: false });
    const progress: number[] = [];
    const res = await run.logArtifact(tree, 'model', { onProgress: (done) => progress.push(done) });
    expect(res).toEqual({ files: 3, bytes: 12 + 4096 + 23 });
    expect(progress.at(-1)).toBe(12 + 4096 + 23);
    const files = (await listArtifacts(client, run.runId, '', { recursive: true })).map((f) => [
      f.path,
      f.is_dir,
    ]);
    expect(files).toEqual(
      expect.arrayContaining([
        ['model', true],
        ['model/MLmodel', false],
        ['model/weights', true],
        ['model/weights/w.bin', false],
        ['model/weights/deep', true],
        ['model/weights/deep/x y.txt', false],
      ]),
    );
    const out = join(dir, 'model-back');
    expect(await downloadTree(client, run.runId, run.artifactUri, 'model', out)).toEqual({
      files: 3,
      bytes: 4131,
    });
    expect(await sha256(join(out, 'weights', 'w.bin'))).toBe(await sha256(join(tree, 'weights', 'w.bin')));
    await run.end();
  });

  it('readArtifact: reads small text and stops at the byte cap, saying it truncated', async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('read'));
    const run = await startRun(client, { experimentId, handleSignals: false });
    await run.logText('x'.repeat(10_000), 'notes/long.txt');
    const full = await readArtifact(client, run.artifactUri, 'notes/long.txt', 1_000_000);
    expect(full).toMatchObject({ truncated: false });
    expect(full.bytes.length).toBe(10_000);
    const capped = await readArtifact(client, run.artifactUri, 'notes/long.txt', 100);
    expect(capped.truncated).toBe(true);
    expect(capped.bytes.length).toBe(100);
    await run.end();
  });

  it("logParams: a value past MLflow's 6000-character limit is truncated and stored whole as an artifact", async () => {
    const { experimentId } = await getOrCreateExperiment(client, uniqueName('longparam'));
    const run = await startRun(client, { experimentId, handleSignals: false });
    const long = 'abc'.repeat(3000);
    await run.logParam('prompt', long);
    const whole = await readArtifact(client, run.artifactUri, 'runwarden/params/prompt.txt', 1_000_000);
    expect(whole.bytes.toString('utf8')).toBe(long);
    const got = await client.api.GET('/api/2.0/mlflow/runs/get', {
      params: { query: { run_id: run.runId } },
    });
    const param = got.data?.run?.data?.params?.find((p) => p.key === 'prompt')?.value ?? '';
    expect(param.length).toBeLessThanOrEqual(6000);
    expect(param.endsWith('…[truncated]')).toBe(true);
    expect(got.data?.run?.data?.tags).toContainEqual({ key: 'runwarden.truncated_params', value: 'prompt' });
    await run.end();
  });
});
