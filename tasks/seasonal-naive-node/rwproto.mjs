/**
 * The runwarden stdout line protocol for task scripts written for Node: each call writes one JSON
 * object after the exact prefix `@@runwarden `; every other line is plain log. Non-finite metric
 * values travel as the strings "NaN", "Infinity" and "-Infinity" (JSON has no such numbers).
 */
export const PREFIX = '@@runwarden ';

export function emit(message) {
  process.stdout.write(`${PREFIX}${JSON.stringify(message)}\n`);
}

function number(v) {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  return v;
}

export const metric = (key, value, step = 0) =>
  emit({ metric: key, value: number(Number(value)), step: Math.trunc(step) });
export const param = (key, value) =>
  emit({ param: key, value: ['string', 'number', 'boolean'].includes(typeof value) ? value : String(value) });
export const tag = (key, value) => emit({ tag: key, value: String(value) });
export const progress = (fraction, message) =>
  emit({ progress: Math.min(1, Math.max(0, fraction)), ...(message ? { message } : {}) });
/** Ask the worker to upload `path` (file or folder, relative to the workspace) under `dest`. */
export const artifact = (path, dest) => emit({ artifact: path, ...(dest ? { dest } : {}) });
