/**
 * The task spec planners submit, validated with zod at the boundary, and its normalised form
 * stored in the queue: template parameters resolved, inputs as URIs (claim-check: data travels by
 * reference; small tables may be inline in chapkit's `{columns, data}` form), and a task id that
 * is by default the config hash of template + parameters + inputs, so the same spec dedups.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ValidationError } from '../errors/index.js';
import { configHash } from '../tracking/lineage.js';
import { type ParamValue, resolveParams, type Template } from './templates.js';

/** Inline tables are capped so job data stays small (the claim-check rule). */
export const MAX_INLINE_TABLE_BYTES = 256 * 1024;

export const InlineTable = z.object({
  columns: z.array(z.string()).min(1),
  data: z.array(z.array(z.union([z.string(), z.number(), z.boolean(), z.null()]))),
});
export type InlineTable = z.infer<typeof InlineTable>;

const URI_RE = /^(file:\/\/|runs:\/|mlflow-artifacts:\/|https?:\/\/)/;

const NO_CONTROL = /^\P{Cc}*$/u;
const NO_CONTROL_SAYS = 'may not contain NUL, newlines, tabs or other control characters';

export const TaskSpecSchema = z.object({
  template: z.string().min(1).describe('Registered template name, e.g. gru-forecast'),
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  inputs: z
    .record(
      z.string(),
      z.union([
        z
          .string()
          .max(4096, 'is longer than 4096 characters; pass a shorter URI')
          .regex(URI_RE, 'must be a file://, runs:/, mlflow-artifacts:/ or http(s):// URI'),
        InlineTable,
      ]),
    )
    .default({}),
  // No NUL, newlines or other control characters in names (the same rule as validateName).
  experiment: z.string().min(1).max(500).regex(NO_CONTROL, NO_CONTROL_SAYS).optional(),
  run_name: z.string().max(250).regex(NO_CONTROL, NO_CONTROL_SAYS).optional(),
  priority: z.number().int().min(1).max(1000).optional(),
  timeout_seconds: z
    .number()
    .int()
    .min(1)
    .max(7 * 86_400)
    .optional(),
  attempts: z.number().int().min(1).max(10).default(1),
  review: z.enum(['none', 'agent', 'policy']).default('none'),
  force: z.boolean().default(false),
});
export type TaskSpec = z.input<typeof TaskSpecSchema>;

export interface NormalizedTask {
  taskId: string;
  configHash: string;
  template: string;
  params: Record<string, ParamValue>;
  inputs: Record<string, string | InlineTable>;
  experiment: string;
  runName: string;
  priority?: number;
  timeoutSeconds: number;
  attempts: number;
  review: 'none' | 'agent' | 'policy';
  retryOnFailure: boolean;
  enqueuedAt: number;
}

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
  const taskId = `t-${hash.slice(0, 16)}${spec.force ? `-${randomBytes(3).toString('hex')}` : ''}`;
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
    review: spec.review,
    retryOnFailure: template.retry_on_failure,
    enqueuedAt: Date.now(),
  };
}
