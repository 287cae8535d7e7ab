/**
 * Output shapes and converters shared by several tools: a compact run summary with its UI link,
 * and an experiment summary. Keeping them here keeps every tool's output the same shape.
 */
import { z } from 'zod';
import { ValidationError } from '../../errors/index.js';
import type { Experiment, MlflowClient, Run } from '../../mlflow/client.js';

/** Agents may not set runwarden's own tags (ownership, leases, cancellation, task ids). */
export function assertNoReservedTags(tags: Record<string, string> | undefined): void {
  const reserved = Object.keys(tags ?? {}).find((k) => k.startsWith('runwarden.'));
  if (reserved)
    throw new ValidationError(`tags.${reserved}`, "keys starting with 'runwarden.' are managed by runwarden");
}

/** A metric value as JSON can carry it: a finite number, or MLflow's strings for NaN and ±Infinity. */
export const metricValueSchema = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]);
export type MetricValue = z.infer<typeof metricValueSchema>;

/** MLflow answers NaN as "NaN" and ±Infinity as ±1.79e308 or strings; keep finite numbers, name the rest. */
export function toMetricValue(v: unknown): MetricValue {
  const n = typeof v === 'number' ? v : Number(v);
  if (Number.isFinite(n) && Math.abs(n) < Number.MAX_VALUE) return n;
  if (Number.isNaN(n)) return 'NaN';
  return n > 0 ? 'Infinity' : '-Infinity';
}

/** The JSON form back to a number (for arithmetic). */
export const metricNumber = (v: MetricValue): number => (typeof v === 'number' ? v : Number(v));

export const runSummaryShape = {
  run_id: z.string(),
  run_name: z.string(),
  experiment_id: z.string(),
  status: z.string(),
  start_time: z.number().optional(),
  end_time: z.number().optional(),
  artifact_uri: z.string().optional(),
  url: z.string(),
  params: z.record(z.string(), z.string()),
  metrics: z.record(z.string(), metricValueSchema),
  tags: z.record(z.string(), z.string()),
};
export const runSummarySchema = z.object(runSummaryShape);
export type RunSummary = z.infer<typeof runSummarySchema>;

export function summarizeRun(client: MlflowClient, run: Run): RunSummary {
  const info = run.info ?? {};
  const experimentId = info.experiment_id ?? '';
  const runId = info.run_id ?? '';
  return {
    run_id: runId,
    run_name: info.run_name ?? '',
    experiment_id: experimentId,
    status: info.status ?? 'UNKNOWN',
    start_time: info.start_time || undefined,
    end_time: info.end_time || undefined,
    artifact_uri: info.artifact_uri,
    url: client.runUrl(experimentId, runId),
    params: Object.fromEntries((run.data?.params ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
    metrics: Object.fromEntries((run.data?.metrics ?? []).map((m) => [m.key ?? '', toMetricValue(m.value)])),
    tags: Object.fromEntries((run.data?.tags ?? []).map((t) => [t.key ?? '', t.value ?? ''])),
  };
}

export const experimentShape = {
  experiment_id: z.string(),
  name: z.string(),
  lifecycle_stage: z.string(),
  artifact_location: z.string().optional(),
  tags: z.record(z.string(), z.string()),
  url: z.string(),
};
export const experimentSchema = z.object(experimentShape);

export function summarizeExperiment(client: MlflowClient, e: Experiment): z.infer<typeof experimentSchema> {
  const id = e.experiment_id ?? '';
  return {
    experiment_id: id,
    name: e.name ?? '',
    lifecycle_stage: e.lifecycle_stage ?? 'active',
    artifact_location: e.artifact_location,
    tags: Object.fromEntries((e.tags ?? []).map((t) => [t.key ?? '', t.value ?? ''])),
    url: client.experimentUrl(id),
  };
}

/** Describe a JSON value compactly for a text mirror. */
export const compact = (v: unknown): string => JSON.stringify(v);
