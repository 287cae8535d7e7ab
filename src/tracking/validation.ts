/**
 * MLflow's naming and size rules, checked before anything is sent, so a bad key fails with a
 * message that names it (MLflow's own error would arrive after part of a batch was written).
 * Limits are MLflow's (`mlflow/utils/validation.py`).
 */
import { ValidationError } from '../errors/index.js';

export const LIMITS = {
  maxMetricsPerBatch: 1000,
  maxParamsPerBatch: 100,
  maxTagsPerBatch: 100,
  maxEntitiesPerBatch: 1000,
  maxKeyLength: 250,
  maxParamValueLength: 6000,
  maxTagValueLength: 8000,
  maxExperimentNameLength: 500,
} as const;

const KEY_RE = /^[/\w.\- :]*$/;

/** Throws a ValidationError naming `field` unless `key` is a valid MLflow metric/param/tag key. */
export function validateKey(field: string, key: string): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new ValidationError(field, 'key must be a non-empty string');
  }
  if (key.length > LIMITS.maxKeyLength) {
    throw new ValidationError(
      field,
      `key '${key.slice(0, 40)}…' is ${key.length} characters; MLflow allows at most ${LIMITS.maxKeyLength}`,
    );
  }
  if (!KEY_RE.test(key)) {
    throw new ValidationError(
      field,
      `key '${key}' has characters MLflow refuses; use letters, digits, '_', '-', '.', ' ', ':' and '/'`,
    );
  }
  const segs = key.split('/');
  if (key.startsWith('/') || segs.includes('..') || key === '.' || segs.some((s) => s === '' || s === '.')) {
    throw new ValidationError(
      field,
      `key '${key}' must be a clean relative name (no leading '/', '.', '..' or '//')`,
    );
  }
}

/** Metric values must be finite numbers or NaN/±Infinity (sent as MLflow's JSON strings). */
export function validateMetricValue(field: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') {
    throw new ValidationError(field, `metric value must be a number, got ${typeof value}`);
  }
}

export function validateStep(field: string, step: unknown): void {
  if (!Number.isSafeInteger(step))
    throw new ValidationError(field, `step must be an integer, got ${String(step)}`);
}

export function validateTimestamp(field: string, ts: unknown): void {
  if (!Number.isSafeInteger(ts) || (ts as number) < 0) {
    throw new ValidationError(
      field,
      `timestamp must be epoch milliseconds (a non-negative integer), got ${String(ts)}`,
    );
  }
}

/** MLflow JSON for a double: numbers as-is, non-finite values as the strings protobuf expects. */
export function metricValueToJson(v: number): number | 'NaN' | 'Infinity' | '-Infinity' {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  return v;
}
