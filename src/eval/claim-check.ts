/**
 * The claim check of re-scoring: does the run's model really score what the run reported on its OWN
 * test split? The model says which rows it was tested on (`features.json` `test_rows`: the last N
 * rows of the training series); the judge finds the training input in the run's `inputs.json`
 * (inside `workspace.zip`), reads it only through the input policy (the roots of
 * `RUNWARDEN_INPUT_ROOTS`, the tasks folder for the template's own default) and only when its
 * sha256 matches the recorded one, scores the last `test_rows` windows and compares with the
 * reported `test_rmse/test_mae/test_mse/composite` to a tight tolerance (`claim_tolerance`).
 * When the model does not say `test_rows`, or the input cannot be read, the check is `skipped`
 * with the reason; it never fails an item for that alone (the holdout check still decides).
 */
import { capForEcho, redactUri } from '../errors/echo.js';
import { RunwardenError } from '../errors/index.js';
import type { MlflowClient } from '../mlflow/client.js';
import { templateDefaultInputs } from '../queue/spec.js';
import { loadTemplate } from '../queue/templates.js';
import type { InputPolicy } from '../runners/input-policy.js';
import type { FeatureSpec } from './features.js';
import { errorMetrics, scoredCount } from './metrics.js';
import type { OnnxModel } from './onnx-session.js';
import { compare, type RescoreGap } from './rescore-verdict.js';
import { parseCsv, type Table } from './table.js';
import { readInput, recordedInputs, Skip } from './training-input.js';
import { windowsFromTable } from './windows.js';

/** Default `review.rescore.claim_tolerance`: float32 models measured ~1e-5 relative. */
export const DEFAULT_CLAIM_TOLERANCE = 0.02;

export interface ClaimResult {
  /** `ok`: scored (a `flag` says it disagrees); `skipped`: could not be checked (`reason`). */
  status: 'ok' | 'skipped';
  tolerance: number;
  /** The training input scored (its URI as inputs.json records it, credentials redacted). */
  input?: string;
  /** Test windows scored (the model's `test_rows`). */
  rows?: number;
  metrics?: { rmse: number; mae: number; mse: number; composite: number };
  gaps: RescoreGap[];
  worstGap?: number;
  /** Set when the reported metrics are better than the re-score beyond the tolerance. */
  flag?: string;
  /** Why the check was skipped. */
  reason?: string;
}

const pct = (g: number) =>
  Number.isFinite(g) ? `${g >= 0 ? '+' : ''}${Math.round(g * 100)} %` : `${g > 0 ? '+' : '-'}∞`;
const num = (v: number) => v.toPrecision(3);

/** Adds worstGap and flag to a scored claim. */
export function judgeClaim(c: ClaimResult): ClaimResult {
  if (c.status !== 'ok' || !c.gaps.length) return c;
  const worst = c.gaps.reduce((a, b) => (b.gap > a.gap ? b : a));
  c.worstGap = worst.gap;
  if (worst.gap > c.tolerance)
    c.flag =
      `CLAIM DISAGREES: reported ${worst.reportedAs} ${num(worst.reported)}, re-scored on the run's own ` +
      `${c.rows ?? '?'} test rows ${num(worst.rescored)} (${pct(worst.gap)} > ${pct(c.tolerance).replace('+', '')}).`;
  return c;
}

/** One sentence for notes and the policy check. */
export function describeClaim(c: ClaimResult): string {
  if (c.status === 'skipped') return `claim check skipped: ${c.reason ?? 'no reason recorded'}`;
  const pairs = c.gaps
    .map((g) => `${g.reportedAs} ${num(g.reported)} vs ${num(g.rescored)} (${pct(g.gap)})`)
    .join(', ');
  if (c.flag) return `${c.flag} Reported vs re-scored on the test rows: ${pairs}.`;
  return pairs
    ? `claim check: re-scored on the run's own ${c.rows} test rows, reported vs re-scored ${pairs}, within ${pct(c.tolerance).replace('+', '')}.`
    : `claim check: re-scored on the run's own ${c.rows} test rows; the run reported no comparable metric.`;
}

/** The rows ordered by the time column as every forecaster orders them (by its text), when there is one. */
function sortedByTime(table: Table, spec: FeatureSpec): Table {
  const w = spec.time_column === undefined ? -1 : table.columns.indexOf(spec.time_column);
  if (w < 0) return table;
  const rows = [...table.rows].sort((a, b) => {
    const [x, y] = [String(a[w]), String(b[w])];
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return { columns: table.columns, rows };
}

/**
 * Scores the model on the last `spec.test_rows` rows of the run's training input. Never throws for
 * a reason that only means "cannot check" (that is `skipped`); MLflow errors are thrown (retried).
 */
export async function checkClaim(
  client: MlflowClient,
  o: {
    run: {
      runId: string;
      artifactUri: string;
      metrics: Record<string, number>;
      tags: Record<string, string>;
    };
    spec: FeatureSpec;
    onnx: OnnxModel;
    tasksDir: string;
    policy: InputPolicy;
    tolerance: number;
    maxZipBytes: number;
  },
): Promise<ClaimResult> {
  const base: ClaimResult = { status: 'skipped', tolerance: o.tolerance, gaps: [] };
  const N = o.spec.test_rows;
  if (N === undefined)
    return {
      ...base,
      reason: "the model's features.json does not say test_rows, so its test split is unknown",
    };
  try {
    const entries = await recordedInputs(client, o.run, o.maxZipBytes);
    let defaults: { root: string; uris: Record<string, string> } | undefined;
    try {
      const name = o.run.tags['runwarden.template'];
      if (name) defaults = templateDefaultInputs(loadTemplate(o.tasksDir, name));
    } catch {
      defaults = undefined;
    }
    // The training series: the first file input whose header has every column the model needs.
    const need = [...o.spec.columns, o.spec.target];
    const why: string[] = [];
    for (const e of entries) {
      let text: string;
      try {
        text = await readInput(e, o.policy, defaults);
      } catch (err) {
        if (!(err instanceof Skip)) throw err;
        why.push(err.message);
        continue;
      }
      const table = sortedByTime(parseCsv(text), o.spec);
      if (!need.every((c) => table.columns.includes(c))) {
        why.push(`input '${capForEcho(e.name, 80)}' lacks the model's columns`);
        continue;
      }
      const w = windowsFromTable(table, o.spec);
      const count = w.targets.length;
      if (N > count)
        throw new Skip(
          `test_rows ${N} is more than the ${count} windows the training input '${capForEcho(e.name, 80)}' gives`,
        );
      const per = w.dims[1] * w.dims[2];
      const x = w.x.slice((count - N) * per);
      const targets = w.targets.slice(count - N);
      const out = await o.onnx.run({ [o.spec.input]: { data: x, dims: [N, w.dims[1], w.dims[2]] } });
      const pred = out[o.spec.output];
      if (!pred || pred.data.length !== N)
        throw new RunwardenError(
          'MODEL_INVALID',
          `output '${capForEcho(o.spec.output, 100)}' did not give one value per test window`,
        );
      const p = Float64Array.from(pred.data as ArrayLike<number | bigint>, Number);
      const metrics = errorMetrics(targets, p, o.spec.target_scale.std);
      return judgeClaim({
        status: 'ok',
        tolerance: o.tolerance,
        input: capForEcho(redactUri(e.uri), 500),
        rows: scoredCount(targets, p),
        metrics,
        gaps: compare(o.run.metrics, metrics),
      });
    }
    return {
      ...base,
      reason: why.length
        ? `no training input could be read: ${why.join('; ')}`
        : 'the run recorded no file input to re-score its test split on',
    };
  } catch (err) {
    if (err instanceof Skip) return { ...base, reason: err.message };
    if (err instanceof RunwardenError && err.code === 'VALIDATION_ERROR')
      return { ...base, reason: capForEcho(err.message, 400) };
    throw err;
  }
}
