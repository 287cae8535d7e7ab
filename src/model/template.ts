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

export const TemplateSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  description: z.string().min(1),
  runner: z.literal('shell'),
  language: z.string().default('other'),
  python: z.object({ requirements: z.string() }).optional(),
  command: z.array(z.string()).min(1),
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
});

export interface Template extends z.infer<typeof TemplateSchema> {
  /** Absolute folder of the template. */
  dir: string;
  /** Absolute tasks/ folder (defaults of inputs are relative to it). */
  root: string;
}

export type ParamValue = string | number | boolean;
