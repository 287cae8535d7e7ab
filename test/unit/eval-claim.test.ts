// The claim check's pure parts: reading a recorded training input only through the input policy
// and only while its sha256 still matches, the flag and summary wording, and the MLflow record
// (points and tags) read back to the same verdict.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeClaim, judgeClaim } from '../../src/eval/claim-check.js';
import { claimFromRecord, claimPoints } from '../../src/eval/claim-record.js';
import { compare } from '../../src/eval/rescore-verdict.js';
import { readInput, Skip } from '../../src/eval/training-input.js';

let dir = '';
let roots: string[] = [];
let file = '';
const text = 'week,cases\n2020-01,1\n2020-02,2\n';
const sha = createHash('sha256').update(text).digest('hex');
const policy = () => ({ roots, allowDirs: false, httpHosts: [] });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rw-claim-unit-'));
  await mkdir(path.join(dir, 'data'));
  await mkdir(path.join(dir, 'elsewhere'));
  roots = [path.join(dir, 'data')];
  file = path.join(dir, 'data', 'series.csv');
  await writeFile(file, text);
  await writeFile(path.join(dir, 'elsewhere', 'secret.csv'), text);
  await symlink(path.join(dir, 'elsewhere', 'secret.csv'), path.join(dir, 'data', 'link.csv'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const entry = (p: string, over: Record<string, string> = {}) => ({
  name: 'series',
  uri: pathToFileURL(p).href,
  kind: 'file',
  sha256: sha,
  ...over,
});

describe('claim check: the training input', () => {
  it('readInput: a file inside the input roots whose sha256 matches the record is read', async () => {
    expect(await readInput(entry(file), policy(), undefined)).toBe(text);
  });

  it('readInput: a file that changed since the run (sha256 differs) is skipped with both digests named', async () => {
    const e = entry(file, { sha256: 'f'.repeat(64) });
    const err = await readInput(e, policy(), undefined).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(Skip);
    expect((err as Error).message).toMatch(
      /changed since the run trained: sha256 [0-9a-f]{16}…, recorded f{16}…/,
    );
  });

  it('readInput: a file outside the roots (directly or through a symlink) is skipped, never read', async () => {
    for (const p of [path.join(dir, 'elsewhere', 'secret.csv'), path.join(dir, 'data', 'link.csv')]) {
      const err = await readInput(entry(p), policy(), undefined).catch((x: unknown) => x);
      expect(err, p).toBeInstanceOf(Skip);
      expect((err as Error).message).toMatch(/outside the input roots/);
    }
  });

  it("readInput: the template's own default is confined to the tasks folder instead of the roots", async () => {
    const p = path.join(dir, 'elsewhere', 'secret.csv');
    const e = entry(p);
    const defaults = { root: path.join(dir, 'elsewhere'), uris: { series: e.uri } };
    expect(await readInput(e, policy(), defaults)).toBe(text);
  });

  it('readInput: a non-file input (http, runs:/, inline, a folder) is skipped saying so', async () => {
    for (const e of [
      entry(file, { uri: 'https://user:pw@example.com/x.csv' }),
      entry(file, { uri: 'runs:/abc/x.csv' }),
      entry(file, { uri: 'inline' }),
      entry(file, { kind: 'folder' }),
    ]) {
      const err = await readInput(e, policy(), undefined).catch((x: unknown) => x);
      expect(err, e.uri).toBeInstanceOf(Skip);
      expect((err as Error).message).not.toContain('pw@');
    }
  });
});

describe('claim check: verdict and record', () => {
  const reported = { test_rmse: 0.3, test_mae: 0.2, test_mse: 0.09, composite: 0.228 };
  const real = { rmse: 0.333, mae: 0.222, mse: 0.1109, composite: 0.25 };

  it('judgeClaim: reported better than re-scored beyond the tolerance flags with both numbers and the rows', () => {
    const c = judgeClaim({
      status: 'ok',
      tolerance: 0.02,
      rows: 52,
      metrics: real,
      gaps: compare(reported, real),
      input: 'file:///x',
    });
    expect(c.flag).toMatch(
      /^CLAIM DISAGREES: reported test_mse 0\.0900, re-scored on the run's own 52 test rows 0\.111 \(\+23 % > 2 %\)\.$/,
    );
    expect(describeClaim(c)).toContain('test_rmse 0.300 vs 0.333 (+11 %)');
  });

  it('judgeClaim: within the tolerance (float32 noise) no flag; a model better than it said is never flagged', () => {
    const close = { rmse: 0.300003, mae: 0.2, mse: 0.09, composite: 0.228 };
    expect(
      judgeClaim({ status: 'ok', tolerance: 0.02, rows: 52, metrics: close, gaps: compare(reported, close) })
        .flag,
    ).toBeUndefined();
    const better = { rmse: 0.1, mae: 0.1, mse: 0.01, composite: 0.1 };
    expect(
      judgeClaim({
        status: 'ok',
        tolerance: 0.02,
        rows: 52,
        metrics: better,
        gaps: compare(reported, better),
      }).flag,
    ).toBeUndefined();
  });

  it('claimPoints/claimFromRecord: the logged record reads back to the same metrics, gap and flag; a skip keeps its reason', () => {
    const c = judgeClaim({
      status: 'ok',
      tolerance: 0.02,
      rows: 52,
      metrics: real,
      gaps: compare(reported, real),
      input: 'file:///x',
    });
    const { metrics, tags } = claimPoints(c, 123, 'm-1');
    expect(metrics.map((m) => m.key)).toEqual([
      'eval.test_rmse',
      'eval.test_mae',
      'eval.test_mse',
      'eval.test_composite',
      'eval.test_rows',
    ]);
    expect(metrics.every((m) => m.timestamp === 123 && m.step === 0 && m.model_id === 'm-1')).toBe(true);
    const run = {
      metrics: { ...reported, ...Object.fromEntries(metrics.map((m) => [m.key, m.value])) },
      tags: Object.fromEntries(tags.map((t) => [t.key, t.value])),
    };
    const back = claimFromRecord(run, 0.02)!;
    expect(back.metrics).toEqual(real);
    expect(back.rows).toBe(52);
    expect(back.flag).toBe(c.flag);
    expect(back.worstGap).toBeCloseTo(c.worstGap!, 12);
    const skipped = claimPoints(
      { status: 'skipped', tolerance: 0.02, gaps: [], reason: 'no test_rows' },
      1,
      undefined,
    );
    expect(skipped.metrics).toEqual([]);
    const s = claimFromRecord(
      { metrics: {}, tags: Object.fromEntries(skipped.tags.map((t) => [t.key, t.value])) },
      0.02,
    )!;
    expect(s).toMatchObject({ status: 'skipped', reason: 'no test_rows' });
    expect(claimFromRecord({ metrics: {}, tags: {} }, 0.02)).toBeUndefined();
  });
});
