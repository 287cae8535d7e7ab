/**
 * MLflow's naming and size rules, checked before anything is sent, so a bad key fails with a
 * message that names it (MLflow's own error would arrive after part of a batch was written).
 * Limits are MLflow's (`mlflow/utils/validation.py`). Names and ids get runwarden's own rules too:
 * no control characters or lone surrogates in names, a bounded charset and length for ids, and
 * every value quoted back in an error is capped.
 */
import { capForEcho, isWellFormed, ValidationError } from '../errors/index.js';

export const LIMITS = {
  maxMetricsPerBatch: 1000,
  maxParamsPerBatch: 100,
  maxTagsPerBatch: 100,
  maxEntitiesPerBatch: 1000,
  maxKeyLength: 250,
  maxParamValueLength: 6000,
  maxTagValueLength: 8000,
  maxExperimentNameLength: 500,
  maxExperimentTagValueLength: 20_000,
  maxRunNameLength: 250,
  maxModelNameLength: 500,
} as const;

/**
 * Ids runwarden accepts before sending them anywhere. MLflow's run ids are 32 hex characters; other
 * tracking stores use other forms, so runs take 1-64 letters, digits, '_' and '-'. Experiment ids
 * are decimal (MLflow's are int64: at most 19 digits); model versions are positive integers.
 */
export const ID_RULES = {
  runId: {
    re: /^[A-Za-z0-9_-]{1,64}$/,
    says: "1-64 letters, digits, '_' or '-' (MLflow run ids are 32 hex characters)",
  },
  experimentId: { re: /^\d{1,19}$/, says: 'a decimal number of at most 19 digits, e.g. "0" or "123"' },
  modelVersion: { re: /^[1-9]\d{0,9}$/, says: 'a version number, e.g. "3"' },
  taskId: {
    re: /^[A-Za-z0-9._:-]{1,128}$/,
    says: "1-128 letters, digits, '.', '_', ':' or '-' (list_tasks shows task ids)",
  },
  reviewId: {
    re: /^r-[A-Za-z0-9._:-]{1,128}$/,
    says: "'r-' and a task or sweep id (list_pending_reviews shows review ids)",
  },
} as const;
export type IdKind = keyof typeof ID_RULES;

/** C0 and C1 control characters and DEL: NUL, newline, tab, escape and the like (Unicode category Cc). */
const CONTROL_CHAR = /\p{Cc}/u;

/** Throws a ValidationError naming `field` unless `value` is an id of the given kind. */
export function validateId(field: string, kind: IdKind, value: unknown): asserts value is string {
  const rule = ID_RULES[kind];
  if (typeof value !== 'string' || !rule.re.test(value)) {
    const shown =
      typeof value === 'string' ? `'${capForEcho(value, 80)}' (${value.length} characters)` : typeof value;
    throw new ValidationError(field, `${shown} is not a valid id: use ${rule.says}`);
  }
}

/** Throws a ValidationError naming `field` when `value` holds a lone UTF-16 surrogate. */
export function validateWellFormed(field: string, value: string): void {
  if (!isWellFormed(value)) {
    throw new ValidationError(
      field,
      'contains a lone UTF-16 surrogate (half of a pair, e.g. from a string cut in the middle of an emoji); send well-formed Unicode text',
    );
  }
}

/**
 * An experiment, run or model name: a non-empty string of at most `max` characters, without control
 * characters (NUL, newlines, tabs, ...) or lone surrogates. `what` names it in the message.
 */
export function validateName(
  field: string,
  value: unknown,
  what: string,
  max: number,
): asserts value is string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ValidationError(field, `${what} must be a non-empty string`);
  }
  if (value.length > max) {
    throw new ValidationError(field, `${what} is ${value.length} characters; at most ${max} are allowed`);
  }
  const bad = CONTROL_CHAR.exec(value);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    throw new ValidationError(
      field,
      `${what} contains the control character U+${code} at index ${bad.index}; names may not contain NUL, newlines, tabs or other control characters`,
    );
  }
  validateWellFormed(field, value);
}

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
      `key '${capForEcho(key)}' has characters MLflow refuses; use letters, digits, '_', '-', '.', ' ', ':' and '/'`,
    );
  }
  const segs = key.split('/');
  if (key.startsWith('/') || segs.includes('..') || key === '.' || segs.some((s) => s === '' || s === '.')) {
    throw new ValidationError(
      field,
      `key '${capForEcho(key)}' must be a clean relative name (no leading '/', '.', '..' or '//')`,
    );
  }
}

/** Throws a ValidationError naming `field` unless `value` is a string of at most `max` characters. */
export function validateTagValue(
  field: string,
  value: unknown,
  max: number = LIMITS.maxTagValueLength,
): void {
  if (typeof value !== 'string')
    throw new ValidationError(field, `tag value must be a string, got ${typeof value}`);
  if (value.length > max) {
    throw new ValidationError(field, `tag value is ${value.length} characters; MLflow allows at most ${max}`);
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
    throw new ValidationError(field, `step must be an integer, got ${capForEcho(step, 40)}`);
}

export function validateTimestamp(field: string, ts: unknown): void {
  if (!Number.isSafeInteger(ts) || (ts as number) < 0) {
    throw new ValidationError(
      field,
      `timestamp must be epoch milliseconds (a non-negative integer), got ${capForEcho(ts, 40)}`,
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
