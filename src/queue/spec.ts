/**
 * Enqueue-side normalisation of the task spec planners submit (its schema and the normalised form
 * are src/model/task-spec.ts): the spec is validated with zod at the boundary and becomes the task
 * stored in the queue: template parameters resolved, inputs as URIs (claim-check: data travels by
 * reference; small tables may be inline in chapkit's `{columns, data}` form), and a task id that
 * is by default the config hash of template + parameters + inputs, so the same spec dedups.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { ValidationError } from '../errors/index.js';
import {
  type InlineTable,
  MAX_INLINE_TABLE_BYTES,
  type NormalizedTask,
  TaskSpecSchema,
} from '../model/task-spec.js';
import type { Template } from '../model/template.js';
import { configHash } from '../tracking/lineage.js';
import { resolveParams } from './templates.js';

// The spec model (schemas and types) lives in src/model/task-spec.ts, below queue and runners.
export {
  InlineTable,
  MAX_INLINE_TABLE_BYTES,
  type NormalizedTask,
  type TaskSpec,
  TaskSpecSchema,
} from '../model/task-spec.js';

/** Parse a spec, naming the first bad field and what it expects. */
export function parseSpec(raw: unknown): z.output<typeof TaskSpecSchema> {
  const r = TaskSpecSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new ValidationError(i.path.join('.') || 'spec', i.message);
  }
  return r.data;
}

/**
 * A template's default inputs as the file:// URIs a spec gets when it names none (paths in
 * task.yaml are relative to the tasks folder). The worker confines these to the tasks folder; any
 * other local input must lie in the input roots.
 */
export function templateDefaultInputs(template: Template): { root: string; uris: Record<string, string> } {
  const uris: Record<string, string> = {};
  for (const [name, def] of Object.entries(template.inputs)) {
    if (def.default) uris[name] = pathToFileURL(path.resolve(template.root, def.default)).href;
  }
  return { root: path.resolve(template.root), uris };
}

export function normalizeSpec(raw: unknown, template: Template): NormalizedTask {
  const spec = parseSpec(raw);
  const params = resolveParams(template, spec.params);
  const inputs: Record<string, string | InlineTable> = {};
  const defaults = templateDefaultInputs(template).uris;
  for (const k of Object.keys(spec.inputs)) {
    if (!(k in template.inputs)) {
      throw new ValidationError(
        `inputs.${k.slice(0, 100)}`,
        `template '${template.name}' has no input '${k.slice(0, 100)}'; it takes: ${Object.keys(template.inputs).join(', ') || 'none'}`,
      );
    }
  }
  for (const [name, def] of Object.entries(template.inputs)) {
    const given = spec.inputs[name];
    if (given !== undefined) {
      if (typeof given !== 'string' && Buffer.byteLength(JSON.stringify(given)) > MAX_INLINE_TABLE_BYTES) {
        throw new ValidationError(
          `inputs.${name}`,
          `inline table exceeds ${MAX_INLINE_TABLE_BYTES} bytes; store it (a file or an MLflow artifact) and pass its URI`,
        );
      }
      inputs[name] = given;
    } else if (defaults[name]) {
      inputs[name] = defaults[name];
    } else if (def.required) {
      throw new ValidationError(
        `inputs.${name}`,
        `required by template '${template.name}': ${def.description}`,
      );
    }
  }
  const hash = configHash({ template: template.name, params, inputs });
  // A rework gets an id derived from the reviewed task and run, so enqueueing it again (a re-run of
  // the review's apply) finds the same task instead of queueing a second one.
  const forced = spec.rework
    ? `-rw${createHash('sha256').update(`${spec.rework.of_task}\n${spec.rework.of_run}`).digest('hex').slice(0, 8)}`
    : `-${randomBytes(3).toString('hex')}`;
  const taskId = `t-${hash.slice(0, 16)}${spec.force ? forced : ''}`;
  return {
    taskId,
    configHash: hash,
    template: template.name,
    params,
    inputs,
    experiment: spec.experiment ?? `tasks/${template.name}`,
    runName: spec.run_name ?? `${template.name}-${hash.slice(0, 6)}`,
    priority: spec.priority,
    timeoutSeconds: spec.timeout_seconds ?? template.timeout_seconds,
    attempts: spec.attempts,
    // The spec's mode wins; else the template's; else none.
    review: spec.review ?? template.review?.mode ?? 'none',
    ...(spec.rework
      ? { rework: { ofTask: spec.rework.of_task, ofRun: spec.rework.of_run, notes: spec.rework.notes } }
      : {}),
    retryOnFailure: template.retry_on_failure,
    enqueuedAt: Date.now(),
  };
}
