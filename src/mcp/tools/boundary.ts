/**
 * The input boundary every tool shares, applied after the SDK's schema check and before the tool
 * runs: every string (and record key) must be well-formed Unicode, ids must have an id's charset
 * and length, and names may not hold control characters. Rules go by field name, so a field means
 * the same thing in every tool; a refusal is a ValidationError naming the field (`run_ids[1]`,
 * `tags.<key>`) and what to send instead, with the offending value capped.
 */
import { capForEcho } from '../../errors/index.js';
import { validateAlias } from '../../tracking/models.js';
import {
  type IdKind,
  LIMITS,
  validateId,
  validateName,
  validateWellFormed,
} from '../../tracking/validation.js';

type NameRule = { what: string; max: number };

/** Fields holding ids, by name (array fields: each element). */
const ID_FIELDS: Record<string, IdKind> = {
  run_id: 'runId',
  parent_run_id: 'runId',
  run_ids: 'runId',
  experiment_id: 'experimentId',
  experiment_ids: 'experimentId',
  version: 'modelVersion',
  task_id: 'taskId',
  review_id: 'reviewId',
};

/** Fields holding names, by name: no control characters, bounded length. */
const NAME_FIELDS: Record<string, NameRule> = {
  name: { what: 'name', max: LIMITS.maxModelNameLength },
  experiment_name: { what: 'experiment name', max: LIMITS.maxExperimentNameLength },
  experiment_names: { what: 'experiment name', max: LIMITS.maxExperimentNameLength },
  experiment: { what: 'experiment name', max: LIMITS.maxExperimentNameLength },
  run_name: { what: 'run name', max: LIMITS.maxRunNameLength },
  template: { what: 'template name', max: 200 },
};

/** Throws a ValidationError for the first argument that breaks the shared rules. */
export function checkToolInput(args: unknown): void {
  if (!args || typeof args !== 'object') return;
  for (const [field, value] of Object.entries(args as Record<string, unknown>)) {
    const items = Array.isArray(value)
      ? value.map((v, i) => [`${field}[${i}]`, v] as const)
      : [[field, value] as const];
    for (const [path, v] of items) {
      if (typeof v !== 'string') continue;
      const id = ID_FIELDS[field];
      if (id) validateId(path, id, v);
      const name = NAME_FIELDS[field];
      if (name) validateName(path, v, name.what, name.max);
      if (field === 'alias') validateAlias(v);
    }
    walkStrings(field, value);
  }
}

/** Every string and record key under `value` must be well-formed UTF-16 (no lone surrogates). */
function walkStrings(path: string, value: unknown): void {
  if (typeof value === 'string') {
    validateWellFormed(path, value);
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) walkStrings(`${path}[${i}]`, v);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const child = `${path}.${capForEcho(k, 80)}`;
      validateWellFormed(child, k);
      walkStrings(child, v);
    }
  }
}
