/**
 * Independent re-scoring of a review candidate (issue 10): the judge downloads the run's ONNX model
 * folder, scores the template's holdout table with onnxruntime-node (off the main thread), computes
 * `eval.rmse/mae/mse/composite` (+ `eval.rows`) on errors scaled by `target_scale.std`, logs them
 * on the run (with the logged model's `model_id` when there is one) and compares them with what the
 * run reported. Once per run: a run that already carries `runwarden.eval.status` is read back, not
 * scored again; concurrent first calls log identical metrics at the same timestamp (the review
 * item's creation time), which MLflow's SQL store stores once. A re-score that cannot run for a
 * reason retrying will not fix (no ONNX model, a bad holdout, a malformed model, too slow) is
 * recorded as `failed` with the reason; MLflow being unreachable is thrown (the judge retries).
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { capForEcho, RunwardenError, ValidationError } from '../errors/index.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import type { RescoreDef } from '../model/template.js';
import { defaultInputPolicy, type InputPolicy, resolveLocalInput } from '../runners/input-policy.js';
import { type ClaimResult, checkClaim } from './claim-check.js';
import { claimFromRecord, claimPoints, claimTolerance } from './claim-record.js';
import { errorMetrics, scoredCount } from './metrics.js';
import { downloadModelDir } from './model-dir.js';
import { openOnnxModel } from './onnx-session.js';
import { findModel, readSpec } from './rescore-model.js';
import { compare, describeRescore, judge, type RescoreGap, type RescoreResult } from './rescore-verdict.js';
import { parseCsv } from './table.js';
import { windowsFromTable } from './windows.js';

export { compare, describeRescore, type RescoreGap, type RescoreResult };

export const EVAL_TAGS = {
  status: 'runwarden.eval.status',
  holdout: 'runwarden.eval.holdout',
  digest: 'runwarden.eval.holdout_digest',
  gap: 'runwarden.eval.gap',
  note: 'runwarden.eval.note',
} as const;
/** Longest `runwarden.eval.note`. */
export const EVAL_NOTE_MAX = 1000;
/** Largest holdout file read (bytes). */
export const HOLDOUT_MAX_BYTES = 64 * 1024 * 1024;

export interface EvalSettings {
  maxModelBytes: number;
  threads: number;
  timeoutMs: number;
  /** The input policy the claim check reads the run's training input through (default: the tasks folder's data/). */
  inputs?: InputPolicy;
}
export const DEFAULT_EVAL_SETTINGS: EvalSettings = {
  maxModelBytes: 512 * 1024 * 1024,
  threads: 1,
  timeoutMs: 120_000,
};

interface RunFacts {
  runId: string;
  artifactUri: string;
  metrics: Record<string, number>;
  tags: Record<string, string>;
}

/** The earlier re-score as MLflow holds it. */
function fromRecord(run: RunFacts, def: RescoreDef): RescoreResult {
  const status = run.tags[EVAL_TAGS.status] === 'ok' ? 'ok' : 'failed';
  const res: RescoreResult = {
    status,
    holdout: run.tags[EVAL_TAGS.holdout] ?? def.holdout,
    tolerance: def.tolerance,
    gaps: [],
    fresh: false,
    claim: claimFromRecord(run, claimTolerance(def)),
  };
  if (status === 'failed') {
    const note = run.tags[EVAL_TAGS.note] ?? 'the earlier re-score failed';
    const lead = res.claim?.flag;
    res.reason = lead && note.startsWith(lead) ? note.slice(lead.length).trim() : note;
    return judge(res);
  }
  const m = run.metrics;
  if (
    [m['eval.rmse'], m['eval.mae'], m['eval.mse'], m['eval.composite']].every((v) => typeof v === 'number')
  ) {
    res.metrics = {
      rmse: m['eval.rmse']!,
      mae: m['eval.mae']!,
      mse: m['eval.mse']!,
      composite: m['eval.composite']!,
    };
    res.rows = m['eval.rows'];
    res.gaps = compare(run.metrics, res.metrics);
  }
  return judge(res);
}

/** Where the holdout file is: a path inside the tasks folder (template-owned), or a file:// URI inside it. */
async function holdoutFile(tasksDir: string, holdout: string): Promise<string> {
  const uri = holdout.startsWith('file://') ? holdout : `file://${path.resolve(tasksDir, holdout)}`;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(holdout) && !holdout.startsWith('file://'))
    throw new ValidationError(
      'review.rescore.holdout',
      'only a path inside the tasks folder (or a file:// URI there) is supported.',
    );
  const tasksRoot = path.resolve(tasksDir);
  const local = await resolveLocalInput('review.rescore.holdout', uri, {
    roots: [tasksRoot],
    allowDirs: false,
    httpHosts: [],
  });
  return local.real;
}

async function score(
  client: MlflowClient,
  run: RunFacts,
  def: RescoreDef,
  tasksDir: string,
  settings: EvalSettings,
  signal: { aborted: boolean },
  found: { claim?: ClaimResult; modelId?: string },
): Promise<{ res: RescoreResult; modelId?: string; digest?: string }> {
  const model = await findModel(client, run);
  found.modelId = model.modelId;
  const dir = await mkdtemp(path.join(tmpdir(), 'rw-rescore-'));
  try {
    await downloadModelDir(client, model.artifactUri, dir, { maxBytes: settings.maxModelBytes });
    if (signal.aborted) throw new Error('aborted');
    const spec = await readSpec(dir);
    const onnx = await openOnnxModel(dir, { threads: settings.threads });
    try {
      // The claim check first: it stands even when the holdout cannot be read.
      found.claim = await checkClaim(client, {
        run,
        spec,
        onnx,
        tasksDir,
        policy: settings.inputs ?? defaultInputPolicy(tasksDir),
        tolerance: claimTolerance(def),
        maxZipBytes: settings.maxModelBytes,
      });
      if (signal.aborted) throw new Error('aborted');
      const file = await holdoutFile(tasksDir, def.holdout);
      const st = await stat(file);
      if (st.size > HOLDOUT_MAX_BYTES)
        throw new ValidationError(
          'review.rescore.holdout',
          `is ${st.size} bytes, more than ${HOLDOUT_MAX_BYTES}.`,
        );
      const text = await readFile(file, 'utf8');
      const { createHash } = await import('node:crypto');
      const digest = createHash('sha256').update(text).digest('hex').slice(0, 16);
      const w = windowsFromTable(parseCsv(text), spec);
      const out = await onnx.run({ [spec.input]: { data: w.x, dims: [...w.dims] } });
      const pred = out[spec.output];
      if (!pred)
        throw new RunwardenError(
          'MODEL_INVALID',
          `the model has no tensor output '${capForEcho(spec.output, 100)}' (features.json output); it has ${onnx.outputs.map((o) => o.name).join(', ')}`,
        );
      if (pred.data.length !== w.targets.length)
        throw new RunwardenError(
          'MODEL_INVALID',
          `output '${capForEcho(spec.output, 100)}' has ${pred.data.length} values for ${w.targets.length} windows; a forecaster returns one per window`,
        );
      const p = Float64Array.from(pred.data as ArrayLike<number | bigint>, Number);
      const metrics = errorMetrics(w.targets, p, spec.target_scale.std);
      const res: RescoreResult = {
        status: 'ok',
        holdout: def.holdout,
        tolerance: def.tolerance,
        rows: scoredCount(w.targets, p),
        metrics,
        gaps: compare(run.metrics, metrics),
        modelUri: model.uri,
        fresh: true,
        claim: found.claim,
      };
      return { res, modelId: model.modelId, digest };
    } finally {
      await onnx.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Errors that retrying will not fix: recorded as a failed re-score. */
const FINAL = new Set([
  'MODEL_INVALID',
  'MODEL_INPUT_MISMATCH',
  'VALIDATION_ERROR',
  'UNSUPPORTED_ARTIFACT_URI',
  'UNSAFE_ARTIFACT_PATH',
]);

/**
 * Re-scores the candidate run once (or reads the earlier re-score back). `timestamp` must be the
 * same for every judge of the item (its createdAt) so concurrent first calls log identical points.
 */
export async function rescoreRun(
  client: MlflowClient,
  opts: { run: RunFacts; def: RescoreDef; tasksDir: string; timestamp: number; settings?: EvalSettings },
): Promise<RescoreResult> {
  const { run, def } = opts;
  if (run.tags[EVAL_TAGS.status] !== undefined) return fromRecord(run, def);
  const settings = opts.settings ?? DEFAULT_EVAL_SETTINGS;
  const signal = { aborted: false };
  let timer: NodeJS.Timeout | undefined;
  let res: RescoreResult;
  let modelId: string | undefined;
  let digest: string | undefined;
  const found: { claim?: ClaimResult; modelId?: string } = {};
  try {
    const done = await Promise.race([
      score(client, run, def, opts.tasksDir, settings, signal, found),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          signal.aborted = true;
          reject(
            new RunwardenError(
              'MODEL_INVALID',
              `re-scoring took longer than RUNWARDEN_EVAL_TIMEOUT_MS (${settings.timeoutMs} ms)`,
            ),
          );
        }, settings.timeoutMs);
      }),
    ]);
    ({ res, modelId, digest } = done);
  } catch (err) {
    if (!(err instanceof RunwardenError) || !FINAL.has(err.code)) throw err;
    res = {
      status: 'failed',
      holdout: def.holdout,
      tolerance: def.tolerance,
      gaps: [],
      reason: err.message,
      fresh: true,
      claim: found.claim,
    };
    modelId = found.modelId;
  } finally {
    clearTimeout(timer);
  }
  judge(res);
  const ts = opts.timestamp;
  const claim = claimPoints(res.claim, ts, modelId);
  const metrics =
    res.metrics === undefined
      ? []
      : [
          ['eval.rmse', res.metrics.rmse],
          ['eval.mae', res.metrics.mae],
          ['eval.mse', res.metrics.mse],
          ['eval.composite', res.metrics.composite],
          ['eval.rows', res.rows ?? 0],
        ].map(([key, value]) => ({
          key: key as string,
          value: value as number,
          timestamp: ts,
          step: 0,
          ...(modelId ? { model_id: modelId } : {}),
        }));
  metrics.push(...claim.metrics);
  const note = [res.claim?.flag, res.flag ?? res.reason].filter(Boolean).join(' ');
  const tags = [
    ...claim.tags,
    { key: EVAL_TAGS.holdout, value: capForEcho(def.holdout, 500) },
    ...(digest ? [{ key: EVAL_TAGS.digest, value: digest }] : []),
    ...(res.worstGap !== undefined ? [{ key: EVAL_TAGS.gap, value: String(res.worstGap) }] : []),
    ...(note ? [{ key: EVAL_TAGS.note, value: capForEcho(note, EVAL_NOTE_MAX) }] : []),
    // Last: the status says the record is complete.
    { key: EVAL_TAGS.status, value: res.status },
  ];
  await ok(client.api.POST('/api/2.0/mlflow/runs/log-batch', { body: { run_id: run.runId, metrics, tags } }));
  return res;
}
