// The built-in trainers' command line: builtinArgv points at an entry that exists (main.ts under
// tsx from the sources, with the loader passed by absolute URL since the child runs in the
// workspace), and the entry refuses bad input with exit code 1 (2 for usage) and one clear
// `task failed:` line on stderr naming what is wrong.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { builtinArgv, builtinEntry } from '../../src/runners/builtin/command.js';

const series = path.resolve('tasks/data/weekly_cases.csv');
let dir = '';

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs the entry the way the worker does, in a fresh folder with this config.yml and CSV. */
async function runEntry(trainer: string, params: Record<string, unknown>, csv?: string) {
  dir = await mkdtemp(path.join(tmpdir(), 'rw-builtin-entry-'));
  let data = series;
  if (csv !== undefined) {
    data = path.join(dir, 'bad.csv');
    await writeFile(data, csv);
  }
  await writeFile(
    path.join(dir, 'config.yml'),
    JSON.stringify({ params, inputs: { series: data }, output_dir: path.join(dir, 'output') }),
  );
  const [node, ...args] = builtinArgv('ridge-forecast');
  args[args.indexOf('ridge-forecast')] = trainer;
  return new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
    execFile(node!, args, { cwd: dir, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr, stdout }),
    );
  });
}

describe('builtin command line', () => {
  it('builtinArgv: from the sources, runs main.ts beside command.ts with the tsx loader given by absolute URL', () => {
    const argv = builtinArgv('mlp-forecast');
    expect(argv[0]).toBe(process.execPath);
    expect(argv[1]).toBe('--import');
    expect(existsSync(fileURLToPath(argv[2]!))).toBe(true);
    expect(argv.slice(3)).toEqual([builtinEntry(), 'mlp-forecast', '--config', 'config.yml']);
    expect(builtinEntry().endsWith(path.join('src', 'runners', 'builtin', 'main.ts'))).toBe(true);
    expect(existsSync(builtinEntry())).toBe(true);
  });

  it('builtin entry: a good config trains, writes the model folder and exits 0', async () => {
    const r = await runEntry('ridge-forecast', { alphas: '1' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('@@runwarden {"metric":"composite"');
    const spec = JSON.parse(await readFile(path.join(dir, 'output', 'model', 'features.json'), 'utf8'));
    expect(spec.lookback).toBe(8);
    expect(existsSync(path.join(dir, 'output', 'model', 'model.onnx'))).toBe(true);
  }, 60_000);

  it('builtin entry: a series without the rainfall column exits 1 with a stderr line naming the column', async () => {
    const r = await runEntry('ridge-forecast', {}, 'week,cases,temperature\n2020-01-06,3,25\n');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(
      /^task failed: bad\.csv: missing column\(s\) rainfall; has week, cases, temperature$/,
    );
  }, 60_000);

  it('builtin entry: a series with too few rows exits 1 saying how many it needs', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => `2020-01-${String(i).padStart(2, '0')},${i},1,2`);
    const r = await runEntry('mlp-forecast', {}, `week,cases,rainfall,temperature\n${rows.join('\n')}\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('task failed: bad.csv: 50 rows; need at least 130');
  }, 60_000);

  it('builtin entry: a parameter out of range exits 1 naming the parameter and its bounds', async () => {
    const r = await runEntry('mlp-forecast', { hidden_size: 0 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('task failed: param hidden_size: expected an integer 1..256, got 0');
  }, 60_000);

  it('builtin entry: an unknown trainer is a usage error (exit 2)', async () => {
    const r = await runEntry('gbm-forecast', {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage: <ridge-forecast|mlp-forecast>');
  }, 60_000);
});
