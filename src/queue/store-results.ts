/**
 * What an attempt stores on its run once the command has exited: the stdout/stderr logs, the
 * artifacts the script declared (paths normalised; missing or refused ones are logged, not
 * fatal), the template's model folder, and the workspace as a verified `workspace.zip` (inputs
 * left out unless asked for: inputs.json records their URIs and digests). The archive is built
 * and uploaded while the rest goes up. A model folder holding `model.onnx` (or declared
 * `format: onnx`) is made an MLflow model first (src/tracking/mlflow-model.ts), then also logged
 * as the run's MLflow 3 logged model with the run's test metrics linked to it. Returns the tags
 * that describe the result, and why the run must fail when a declared ONNX model is unusable.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { capForEcho, hasCode } from '../errors/index.js';
import type { Logger } from '../log.js';
import { uploadFile } from '../mlflow/artifacts.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { normalizeArtifactPath } from '../mlflow/paths.js';
import type { Template } from '../model/template.js';
import type { Workspace } from '../runners/workspace.js';
import { zipDirectory } from '../runners/zip.js';
import { type LoggedModelRef, logModel, logModelMetrics, MODEL_ID_TAG } from '../tracking/logged-model.js';
import { ONNX_FILE, writeMlflowModel } from '../tracking/mlflow-model.js';
import type { RunHandle } from '../tracking/run-handle.js';
import type { DeclaredArtifact } from './protocol-lines.js';

/** The run's reported metrics linked to its logged model (when present). */
export const MODEL_LINKED_METRICS = ['test_rmse', 'test_mae', 'test_mse', 'composite'] as const;
/** Longest `runwarden.model_note` (characters). */
const MODEL_NOTE_MAX = 500;
/** How long linking waits for the run's buffered metrics to reach MLflow. */
const LINK_FLUSH_MS = 10_000;

export interface StoredResults {
  tags: Record<string, string>;
  /** Set when the template declared `format: onnx` and its model is unusable: the run FAILS with it. */
  modelError?: string;
}

/**
 * Link the run's reported test metrics to the model: the same points (key, value, step, timestamp)
 * again with `model_id`, as MLflow's `log_model` does, so the run's history gains no point.
 */
async function linkReportedMetrics(client: MlflowClient, run: RunHandle, ref: LoggedModelRef): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const flushed = await Promise.race([
    run.flush().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(false), LINK_FLUSH_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  if (!flushed) return; // the attempt's own end flush decides what happens to the points
  const stored = (
    await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: run.runId } } }))
  ).run;
  for (const m of stored.data?.metrics ?? []) {
    if (!(MODEL_LINKED_METRICS as readonly string[]).includes(m.key)) continue;
    await logModelMetrics(
      client,
      ref,
      { [m.key]: Number(m.value) },
      { step: m.step, timestamp: m.timestamp },
    );
  }
}

export async function storeResults(
  client: MlflowClient,
  run: RunHandle,
  ws: Workspace,
  template: Template,
  declared: DeclaredArtifact[],
  exitCode: number | null,
  log: Logger,
  opts: { zipInputs: boolean },
): Promise<StoredResults> {
  const tags: Record<string, string> = { 'runwarden.exit_code': String(exitCode ?? 'none') };
  const out: StoredResults = { tags };
  const modelDir = template.model ? path.join(ws.outputDir, template.model.path) : undefined;
  const modelExists = modelDir !== undefined && existsSync(modelDir);
  // Written before the archive starts, so workspace.zip holds the same MLflow model folder.
  let mlflowModel = false;
  if (template.model && modelDir) {
    tags['runwarden.model_exists'] = String(modelExists);
    tags['runwarden.model_format'] = template.model.format;
    const onnx = template.model.format === 'onnx' || existsSync(path.join(modelDir, ONNX_FILE));
    if (modelExists && onnx) {
      try {
        await writeMlflowModel(modelDir);
        mlflowModel = true;
      } catch (err) {
        if (!hasCode(err, 'MODEL_INVALID')) throw err;
        const note = capForEcho(err.message, MODEL_NOTE_MAX);
        log.warn({ err: note }, 'the model folder is not a usable ONNX model; stored as is');
        if (template.model.format === 'onnx') {
          tags['runwarden.model_note'] = note;
          tags['runwarden.model_exists'] = 'false';
          out.modelError = `the template's ONNX model is unusable: ${note}`;
        } else {
          // A stray model.onnx beside a model of another declared format: the model stays (it
          // exists and is stored); only the MLflow-model conversion is skipped.
          tags['runwarden.model_note'] = capForEcho(
            `format ${template.model.format}: a ${ONNX_FILE} here is not a usable ONNX graph, so no MLflow ` +
              `model was written (the folder is stored as is): ${note}`,
            MODEL_NOTE_MAX,
          );
        }
      }
    }
  }
  // The archive is built and uploaded while the logs, declared artifacts and model go up.
  const files = async () => {
    await run.logArtifact(ws.logsDir, 'logs');
    for (const d of declared) {
      try {
        const rel = normalizeArtifactPath(d.path);
        const abs = path.join(ws.dir, rel);
        if (existsSync(abs))
          await run.logArtifact(abs, d.dest ?? path.posix.dirname(rel).replace(/^\.$/, ''));
        else log.warn({ path: d.path }, 'declared artifact does not exist');
      } catch (err) {
        log.warn({ path: d.path, err: (err as Error).message }, 'declared artifact refused');
      }
    }
    if (modelDir && modelExists) {
      await run.logArtifact(modelDir, 'model');
      if (mlflowModel) {
        const ref = await logModel(client, { runId: run.runId, experimentId: run.experimentId }, modelDir, {
          tags: { 'runwarden.model_format': 'onnx' },
        });
        tags[MODEL_ID_TAG] = ref.modelId;
        tags['runwarden.model_format'] = 'onnx';
        await linkReportedMetrics(client, run, ref);
      }
    }
  };
  const archive = async () => {
    const zipFile = path.join(path.dirname(ws.dir), `${path.basename(ws.dir)}.zip`);
    try {
      // The inputs stay out unless asked for: inputs.json records their URIs and digests.
      const z = await zipDirectory(ws.dir, zipFile, {
        exclude: opts.zipInputs ? undefined : (rel) => rel.startsWith('inputs/'),
      });
      await uploadFile(client, run.artifactUri, zipFile, { fileName: 'workspace.zip' });
      tags['runwarden.workspace_zip_entries'] = String(z.entries);
    } finally {
      await rm(zipFile, { force: true });
    }
  };
  const [a, b] = await Promise.allSettled([files(), archive()]);
  for (const r of [a, b]) if (r.status === 'rejected') throw r.reason;
  return out;
}
