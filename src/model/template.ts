/**
 * The task template model: the zod schema of a template's `task.yaml` (command, typed parameters
 * with bounds, named inputs, metrics, model folder, timeout, environment), the loaded `Template`
 * and the value a parameter takes. It sits below both the queue (which loads templates and
 * resolves parameters, src/queue/templates.ts) and the runners (which build a workspace and a
 * Python environment from a template), and depends on neither.
 */
import { z } from 'zod';
import { TemplateEnvEntry } from './template-env.js';

const ParamDef = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('int'),
    default: z.number().int().optional(),
    min: z.number().optional(),
    max: z.number().optional(),
    description: z.string().default(''),
  }),
  z.object({
    type: z.literal('float'),
    default: z.number().optional(),
    min: z.number().optional(),
    max: z.number().optional(),
    description: z.string().default(''),
  }),
  z.object({ type: z.literal('bool'), default: z.boolean().optional(), description: z.string().default('') }),
  z.object({
    type: z.literal('string'),
    default: z.string().optional(),
    max_length: z.number().int().positive().default(1000),
    description: z.string().default(''),
  }),
  z.object({
    type: z.literal('enum'),
    values: z.array(z.string()).min(1),
    default: z.string().optional(),
    description: z.string().default(''),
  }),
]);
export type ParamDef = z.infer<typeof ParamDef>;

const InputDef = z.object({
  description: z.string().default(''),
  /** Path relative to the tasks/ folder, used when the task gives no URI. */
  default: z.string().optional(),
  required: z.boolean().default(true),
});

/**
 * One metric's gate, with MLflow's `MetricThreshold` meaning (src/review/policy.ts): `threshold`
 * bounds the candidate's value; `min_absolute_change` / `min_relative_change` ask for that much
 * improvement over the champion; `greater_is_better` says which way is better.
 */
export const MetricThresholdDef = z
  .object({
    threshold: z.number().finite().optional(),
    min_absolute_change: z.number().finite().positive().optional(),
    min_relative_change: z.number().min(0).max(1).optional(),
    greater_is_better: z.boolean(),
  })
  .strict()
  .refine(
    (g) =>
      g.threshold !== undefined || g.min_absolute_change !== undefined || g.min_relative_change !== undefined,
    { message: 'no threshold was specified: set threshold, min_absolute_change or min_relative_change' },
  );
export type MetricThresholdDef = z.infer<typeof MetricThresholdDef>;

/**
 * Re-scoring by the judge: the candidate's ONNX model scores `holdout` (a path relative to the
 * tasks/ folder, or a URI the input policy allows) with onnxruntime-node; `eval.*` metrics are
 * logged and compared with what the run reported. A relative gap above `tolerance` on any of
 * RMSE, MAE, MSE and the composite (the run reporting better than the re-score) rejects the item
 * (policy) or flags it (agent). The claim check re-scores the model's own test split (the last
 * `test_rows` rows of its training input) and must match the reported metrics within
 * `claim_tolerance` (default 0.02).
 */
export const RescoreDef = z
  .object({
    holdout: z.string().min(1).max(2048),
    tolerance: z.number().positive().max(100).default(0.5),
    /** The claim check (src/eval/claim-check.ts): re-scored on the run's own test rows, tight. */
    claim_tolerance: z.number().positive().max(100).optional(),
  })
  .strict();
export type RescoreDef = z.infer<typeof RescoreDef>;

/** Trainers built into runwarden (src/runners/builtin/), run by templates with `runner: builtin`. */
export const BUILTIN_TRAINERS = ['ridge-forecast', 'mlp-forecast'] as const;
export type BuiltinTrainer = (typeof BUILTIN_TRAINERS)[number];

/** How results of a template are reviewed, and which registered model and alias they compete for. */
export const ReviewDef = z
  .object({
    mode: z.enum(['none', 'agent', 'policy']).default('none'),
    /** Registered model name (default: the template name). */
    model_name: z.string().min(1).max(256).optional(),
    alias: z
      .string()
      .regex(/^[\w-]+$/)
      .max(255)
      .default('champion'),
    /** Metric name → gate; `composite` = 0.5·RMSE + 0.3·MAE + 0.2·MSE of the run. */
    policy: z.record(z.string().min(1).max(250), MetricThresholdDef).default({}),
    /** Independent re-scoring of the candidate's ONNX model on held-out data (src/eval/). */
    rescore: RescoreDef.optional(),
  })
  .strict();
export type ReviewDef = z.infer<typeof ReviewDef>;

export const TemplateSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
    description: z.string().min(1),
    /** `shell` runs `command`; `builtin` runs one of runwarden's own trainers (`trainer`). */
    runner: z.enum(['shell', 'builtin']).default('shell'),
    trainer: z.enum(BUILTIN_TRAINERS).optional(),
    language: z.string().default('other'),
    python: z.object({ requirements: z.string() }).optional(),
    command: z.array(z.string()).min(1).optional(),
    params: z.record(z.string(), ParamDef).default({}),
    // Input names become folder names under inputs/ and {inputs.<name>} placeholders.
    inputs: z
      .record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only'), InputDef)
      .default({}),
    metrics: z.array(z.string()).default([]),
    primary_metric: z.object({ name: z.string(), direction: z.enum(['min', 'max']) }).optional(),
    model: z.object({ path: z.string(), format: z.string() }).optional(),
    outputs_dir: z.string().default('output'),
    timeout_seconds: z.number().int().positive().default(3600),
    retry_on_failure: z.boolean().default(false),
    shared: z.array(z.string()).default([]),
    // Environment of the command beyond the base (see src/runners/task-env.ts): NAME or NAME=value.
    env: z.array(TemplateEnvEntry).default([]),
    // How results are judged (mode, model name, alias, policy gates); absent = no review.
    review: ReviewDef.optional(),
  })
  .superRefine((t, ctx) => {
    if (t.runner === 'shell' && !t.command)
      ctx.addIssue({
        code: 'custom',
        path: ['command'],
        message: 'a shell template needs a command (argv list)',
      });
    if (t.runner === 'builtin' && !t.trainer)
      ctx.addIssue({
        code: 'custom',
        path: ['trainer'],
        message: `a builtin template names its trainer: one of ${BUILTIN_TRAINERS.join(', ')}`,
      });
    if (t.runner === 'builtin' && (t.command || t.python))
      ctx.addIssue({
        code: 'custom',
        path: ['runner'],
        message: 'a builtin template has no command and no python section: remove them, or use runner: shell',
      });
  });

export interface Template extends z.infer<typeof TemplateSchema> {
  /** Absolute folder of the template. */
  dir: string;
  /** Absolute tasks/ folder (defaults of inputs are relative to it). */
  root: string;
}

export type ParamValue = string | number | boolean;
