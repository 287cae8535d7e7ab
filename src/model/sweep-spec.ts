/**
 * The sweep model: the spec planners submit to run one template over many parameter sets (zod,
 * checked at the boundary; the search space is a grid, a list of parameter sets, or seeded random
 * samples), and what each child carries in its normalised task (`SweepChild`) so the attempt can
 * nest its run under the sweep's parent run, take a concurrency slot, and the early-stopping rule
 * knows what to watch. Expansion and validation against the template are src/sweep/.
 */
import { z } from 'zod';
import { TaskSpecSchema } from './task-spec.js';

/** Early stopping carried to each child (the median rule, src/sweep/). */
export interface SweepEarlyStop {
  metric: string;
  warmupSteps: number;
  direction: 'min' | 'max';
}

/** A sweep child's link to its sweep: the sweep id is the parent task id (`s-...`). */
export interface SweepChild {
  id: string;
  parentTaskId: string;
  parentRunId: string;
  index: number;
  earlyStop?: SweepEarlyStop;
  /** The sweep's cap on children running at once, across all workers (src/sweep/slots.ts). */
  maxConcurrency?: number;
  /** The search space as JSON (capped), copied onto the child's run as a tag. */
  space?: string;
}

const Scalar = z.union([z.string(), z.number(), z.boolean()]);
const ParamName = z.string().min(1).max(250);

/** A random dimension: a uniform range (log-uniform with `log`), or a list to pick from. */
const RandomDim = z.union([
  z
    .object({
      min: z.number(),
      max: z.number(),
      log: z.boolean().default(false).describe('Sample log-uniformly (min must be > 0)'),
    })
    .strict()
    .refine((d) => d.max >= d.min, 'max must be ≥ min; swap them')
    .refine((d) => !d.log || d.min > 0, 'log sampling needs min > 0; raise min or drop log'),
  z.array(Scalar).min(1, 'give at least one value to pick from'),
]);

/** Most children one sweep may have unless the setting says otherwise (RUNWARDEN_SWEEP_MAX_CHILDREN). */
export const DEFAULT_MAX_SWEEP_CHILDREN = 200;

const base = TaskSpecSchema.pick({
  template: true,
  params: true,
  inputs: true,
  experiment: true,
  run_name: true,
  priority: true,
  timeout_seconds: true,
  attempts: true,
  review: true,
  force: true,
});

export const SweepSpecSchema = base
  .extend({
    grid: z
      .record(ParamName, z.array(Scalar).min(1, 'give at least one value'))
      .optional()
      .describe('Parameter → values; every combination is a child'),
    list: z
      .array(z.record(ParamName, Scalar))
      .min(1, 'give at least one parameter set')
      .optional()
      .describe('Parameter sets, one child each'),
    random: z
      .object({
        space: z.record(ParamName, RandomDim).describe('Parameter → {min, max[, log]} or a list of values'),
        samples: z.number().int().min(1),
        seed: z
          .number()
          .int()
          .min(0)
          .max(2 ** 32 - 1)
          .default(0),
      })
      .strict()
      .optional()
      .describe('Seeded random samples: the same spec gives the same children'),
    max_concurrency: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(2)
      .describe('Children running at once, across all workers'),
    select: z
      .object({ metric: z.string().min(1).max(250), direction: z.enum(['min', 'max']) })
      .strict()
      .optional()
      .describe("How the best child is chosen (default: the template's primary_metric)"),
    early_stop: z
      .object({
        metric: z.string().min(1).max(250),
        warmup_steps: z.number().int().min(0).max(1_000_000).default(0),
        direction: z.enum(['min', 'max']).optional().describe("Default: the select rule's direction"),
      })
      .strict()
      .optional()
      .describe('Median stopping on an intermediate metric after warm-up steps'),
  })
  .strict()
  .superRefine((s, ctx) => {
    const given = (['grid', 'list', 'random'] as const).filter((k) => s[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: given.length ? [given[1]!] : [],
        message: given.length
          ? `give exactly one of grid, list or random (got ${given.join(' and ')})`
          : 'give a search space: grid (param → values), list (parameter sets) or random ({space, samples, seed})',
      });
    }
  });
export type SweepSpec = z.input<typeof SweepSpecSchema>;
export type ParsedSweepSpec = z.output<typeof SweepSpecSchema>;
