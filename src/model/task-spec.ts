/**
 * The task spec model: the spec planners submit (zod schema, checked at the boundary), the inline
 * table form small inputs may take (chapkit's `{columns, data}`, capped so job data stays small),
 * and the normalised task stored in the queue. The queue builds a `NormalizedTask` from a spec and
 * a template (src/queue/spec.ts); the runners bring its inputs into a workspace. Depends on
 * neither.
 */
import { z } from 'zod';
import type { SweepChild } from './sweep-spec.js';
import type { ParamValue } from './template.js';

/** Inline tables are capped so job data stays small (the claim-check rule). */
export const MAX_INLINE_TABLE_BYTES = 256 * 1024;

/** Longest review notes kept (characters): on a rework task, in tags and in descriptions. */
export const MAX_REVIEW_NOTES = 4000;

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
  // Omitted: the template's `review.mode`, else 'none' (resolved in src/queue/spec.ts).
  review: z.enum(['none', 'agent', 'policy']).optional(),
  force: z.boolean().default(false),
  // Set by a judge's `rework` verdict: the task again, with the judge's notes (RUNWARDEN_REVIEW_NOTES).
  rework: z
    .object({
      of_task: z.string().min(1).max(200).regex(NO_CONTROL, NO_CONTROL_SAYS),
      of_run: z.string().min(1).max(200).regex(NO_CONTROL, NO_CONTROL_SAYS),
      notes: z
        .string()
        .max(MAX_REVIEW_NOTES, `is longer than ${MAX_REVIEW_NOTES} characters; shorten the notes`),
    })
    .optional(),
});
export type TaskSpec = z.input<typeof TaskSpecSchema>;

/**
 * A prediction task (`{predict: {model, data}}`): a model reference (src/tracking/model-ref.ts) and
 * the data, a URI (the same rules as task inputs) or inline in a request shape of `mlflow models
 * serve` (src/eval/request-shapes.ts checks the shape; the bytes are capped like inline tables).
 */
export const PredictSpecSchema = z.object({
  predict: z.object({
    model: z
      .string()
      .min(1)
      .max(1000)
      .describe(
        'models:/<name>@<alias>, models:/<name>/<version>, models:/<model_id>, runs:/<run_id>/<path>',
      ),
    data: z.union([
      z
        .string()
        .max(4096, 'is longer than 4096 characters; pass a shorter URI')
        .regex(URI_RE, 'must be a file://, runs:/, mlflow-artifacts:/ or http(s):// URI'),
      z.record(z.string(), z.unknown()),
      z.array(z.unknown()),
    ]),
  }),
  run_name: z.string().max(250).regex(NO_CONTROL, NO_CONTROL_SAYS).optional(),
  priority: z.number().int().min(1).max(1000).optional(),
  timeout_seconds: z.number().int().min(1).max(86_400).optional(),
  attempts: z.number().int().min(1).max(10).default(1),
  force: z.boolean().default(false),
});
export type PredictSpec = z.input<typeof PredictSpecSchema>;

/** What a prediction task carries (the model is resolved again when it runs). */
export interface PredictTask {
  model: string;
  /** A URI, or a request body in one of mlflow serving's shapes. */
  data: string | Record<string, unknown> | unknown[];
  /** The training run the model came from, as resolved at enqueue (the run nests under it). */
  sourceRunId: string;
}

export interface NormalizedTask {
  /** Set on a prediction task (template `predict`): the worker predicts instead of training. */
  predict?: PredictTask;
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
  /** A judge asked for this task again: the reviewed task and run, and the judge's notes. */
  rework?: { ofTask: string; ofRun: string; notes: string };
  retryOnFailure: boolean;
  enqueuedAt: number;
  /** Set on the children of a sweep (src/sweep/). */
  sweep?: SweepChild;
}
