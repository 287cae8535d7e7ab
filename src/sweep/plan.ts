/**
 * Plans a sweep from its spec and template, before anything is queued or created: the spec is
 * parsed (every bad field named with the fix), the search space expanded within the bound, and
 * every child's parameters checked against the template exactly as a single task's are (a child
 * that would be refused refuses the whole sweep, naming the child). The sweep id is the config
 * hash of template, inputs, children, rules, experiment, max_concurrency, priority, timeout,
 * attempts and review (`s-<hash>`; `force` adds a random suffix, as for
 * tasks); child task ids are derived from it (`<sweep id>-c<index>`).
 */
import { randomBytes } from 'node:crypto';
import { ValidationError } from '../errors/index.js';
import { type ParsedSweepSpec, type SweepEarlyStop, SweepSpecSchema } from '../model/sweep-spec.js';
import type { NormalizedTask } from '../model/task-spec.js';
import type { Template } from '../model/template.js';
import { normalizeSpec } from '../queue/spec.js';
import { configHash } from '../tracking/lineage.js';
import { describeSpace, expandSpace, type ParamSet } from './expand.js';
import { spaceJson } from './tags.js';

export interface SweepPlan {
  sweepId: string;
  /** The sweep as a task (its id is the sweep id): the parent job's data and record. */
  parent: NormalizedTask;
  /** The children, without their parent run id yet (set once the parent run exists). */
  children: NormalizedTask[];
  /** The swept values of each child (only the swept names). */
  swept: ParamSet[];
  select: { metric: string; direction: 'min' | 'max' };
  review: 'none' | 'agent' | 'policy';
  maxConcurrency: number;
  earlyStop?: SweepEarlyStop;
  space: { kind: 'grid' | 'list' | 'random'; space: unknown };
}

/** Names every object inherits: never a parameter. */
const PROTOTYPE_KEYS = new Set([
  '__proto__',
  'constructor',
  'prototype',
  ...Object.getOwnPropertyNames(Object.prototype),
]);

/** Parse a sweep spec, naming the first bad field and what it expects. */
export function parseSweepSpec(raw: unknown): ParsedSweepSpec {
  // Before parsing: the parsed objects no longer hold a `__proto__` key (it would set the prototype).
  const obj = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined);
  const r = obj(raw);
  const random = obj(r?.random);
  const named: [string, unknown][] = [
    ['sweep.grid', r?.grid],
    ['sweep.random.space', random?.space],
    ...(Array.isArray(r?.list) ? r.list.map((s, i): [string, unknown] => [`sweep.list.${i}`, s]) : []),
  ];
  for (const [where, v] of named)
    for (const k of Object.keys(obj(v) ?? {}))
      if (PROTOTYPE_KEYS.has(k))
        throw new ValidationError(
          `${where}.${k}`,
          `'${k}' is not a parameter name (reserved by JavaScript objects); rename it`,
        );
  const parsed = SweepSpecSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new ValidationError(['sweep', ...i.path].join('.'), i.message);
  }
  return parsed.data;
}

/** A child's refusal, naming the child and its swept values. */
function childError(index: number, set: ParamSet, err: ValidationError): ValidationError {
  const why = err.message.startsWith(`${err.field}: `)
    ? err.message.slice(err.field.length + 2)
    : err.message;
  const values = JSON.stringify(set);
  return new ValidationError(
    `sweep child ${index} ${values.length > 200 ? `${values.slice(0, 199)}…` : values} ${err.field}`,
    why,
  );
}

export function planSweep(raw: unknown, template: Template, maxChildren: number): SweepPlan {
  const spec = parseSweepSpec(raw);
  if (spec.template !== template.name)
    throw new ValidationError(
      'sweep.template',
      `is '${spec.template}' but the template loaded is '${template.name}'`,
    );
  const isInt = (k: string) => Object.hasOwn(template.params, k) && template.params[k]?.type === 'int';
  // Own parameters only: `constructor`, `__proto__` and the like are refused by name, never
  // looked up through the prototype chain.
  const named: [string, string[]][] = spec.list
    ? spec.list.map((set, i) => [`sweep.list.${i}`, Object.keys(set)])
    : [[spec.grid ? 'sweep.grid' : 'sweep.random.space', Object.keys(spec.grid ?? spec.random?.space ?? {})]];
  for (const [where, names] of named)
    for (const k of names) {
      if (PROTOTYPE_KEYS.has(k))
        throw new ValidationError(
          `${where}.${k}`,
          `'${k}' is not a parameter name (reserved by JavaScript objects); rename it`,
        );
      if (!Object.hasOwn(template.params, k))
        throw new ValidationError(
          `${where}.${k.slice(0, 100)}`,
          `template '${template.name}' has no parameter '${k.slice(0, 100)}'; it takes: ${Object.keys(template.params).join(', ') || 'none'}`,
        );
    }
  const primary = template.primary_metric;
  const select =
    spec.select ?? (primary ? { metric: primary.name, direction: primary.direction } : undefined);
  if (!select)
    throw new ValidationError(
      'sweep.select',
      `template '${template.name}' declares no primary_metric; give select: {metric, direction}`,
    );
  const sets = expandSpace(spec, maxChildren, isInt);
  const children: NormalizedTask[] = sets.map((set, index) => {
    try {
      return normalizeSpec(
        {
          template: spec.template,
          params: { ...spec.params, ...set },
          inputs: spec.inputs,
          experiment: spec.experiment,
          priority: spec.priority,
          timeout_seconds: spec.timeout_seconds,
          attempts: spec.attempts,
          review: spec.review,
        },
        template,
      );
    } catch (err) {
      throw err instanceof ValidationError ? childError(index, set, err) : err;
    }
  });
  const first = children[0]!;
  const review = first.review;
  const earlyStop = spec.early_stop
    ? {
        metric: spec.early_stop.metric,
        warmupSteps: spec.early_stop.warmup_steps,
        direction: spec.early_stop.direction ?? select.direction,
      }
    : undefined;
  const space = describeSpace(spec);
  const hash = configHash({
    kind: 'sweep',
    template: template.name,
    inputs: first.inputs,
    children: children.map((c) => c.params),
    select,
    earlyStop,
    // Everything the caller set that changes the sweep: the same grid elsewhere or run otherwise
    // is another sweep, never the first one returned as existing.
    experiment: first.experiment,
    maxConcurrency: spec.max_concurrency,
    priority: first.priority,
    timeoutSeconds: first.timeoutSeconds,
    attempts: first.attempts,
    review: first.review,
  });
  const sweepId = `s-${hash.slice(0, 16)}${spec.force ? `-${randomBytes(3).toString('hex')}` : ''}`;
  const runName = spec.run_name ?? `${template.name}-sweep-${hash.slice(0, 6)}`;
  const now = Date.now();
  const parent: NormalizedTask = {
    ...first,
    taskId: sweepId,
    configHash: hash,
    params: { ...spec.params },
    runName,
    attempts: 3,
    review,
    retryOnFailure: true,
    enqueuedAt: now,
  };
  const spaceTag = spaceJson(space);
  return {
    sweepId,
    parent,
    children: children.map((c, index) => ({
      ...c,
      taskId: `${sweepId}-c${index}`,
      runName: `${runName}-${index}`,
      // Children are never reviewed themselves: the sweep's parent job reports its best child.
      review: 'none',
      enqueuedAt: now,
      sweep: {
        id: sweepId,
        parentTaskId: sweepId,
        parentRunId: '',
        index,
        earlyStop,
        maxConcurrency: spec.max_concurrency,
        space: spaceTag,
      },
    })),
    swept: sets,
    select,
    review,
    maxConcurrency: spec.max_concurrency,
    earlyStop,
    space,
  };
}
