// Small helpers shared by the benchmarks: command-line numbers, medians, a Python runner for
// MLflow's own client from the repo's .venv, and plain-text tables. The MLflow server itself comes
// from test/support/services.ts (`startMlflowServer()`), the same one integration tests use.

import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { runPythonMlflow } from '../test/support/python.js';
import { repoRoot } from '../test/support/services.js';

export const pythonBin = join(repoRoot, '.venv', 'bin', 'python');
export const mlflowBin = join(repoRoot, '.venv', 'bin', 'mlflow');

const SETUP_HINT = 'MLflow is not installed in .venv: run `npm run setup` (installs mlflow into .venv)';

/** Throws, saying to run `npm run setup`, unless .venv has both `mlflow` and `python`. */
export function requireVenv(): void {
  for (const bin of [mlflowBin, pythonBin]) {
    try {
      accessSync(bin, constants.X_OK);
    } catch {
      throw new Error(`${SETUP_HINT} (missing ${bin})`);
    }
  }
}

/** Parses a flag value as a positive integer (underscores and commas allowed: 100_000, 100,000). */
export function positiveInt(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw.replace(/[_,]/g, ''));
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`--${flag} must be a positive integer, got '${raw}'`);
  return n;
}

export function median(values: readonly number[]): number {
  if (!values.length) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Runs `script` with .venv's python (`python -c script ...args`) and MLFLOW_TRACKING_URI set;
 * returns its last stdout line parsed as JSON (the test harness's runner, with a benchmark-sized
 * timeout). Scripts time themselves and report the seconds they measured.
 */
export function runPython<T>(
  script: string,
  args: readonly string[],
  opts: { trackingUri: string; timeoutMs?: number },
): Promise<T> {
  return runPythonMlflow<T>(script, {
    trackingUri: opts.trackingUri,
    args,
    timeoutMs: opts.timeoutMs ?? 15 * 60_000,
  });
}

/** A plain-text table; `align` per column ('l' or 'r', default 'l'), four spaces between columns. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly ('l' | 'r')[] = [],
): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((cell, c) => (align[c] === 'r' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('    ')
        .trimEnd(),
    )
    .join('\n');
}

/** 12345.6 -> '12,346' */
export const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
