/**
 * Turns a sweep's search space into the children's parameter sets: every combination of a grid
 * (first key varies slowest), the parameter sets of a list as given, or `samples` draws from a
 * random space with a seeded PRNG (mulberry32 over the seed), so the same spec always gives the
 * same children. The number of children is checked against the bound before anything is built.
 */
import { ValidationError } from '../errors/index.js';
import type { ParsedSweepSpec } from '../model/sweep-spec.js';

export type ParamSet = Record<string, string | number | boolean>;

/** mulberry32: a small, fast, well-mixed 32-bit PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seven significant digits: sampled floats stay readable as MLflow params. */
const tidy = (x: number) => Number(x.toPrecision(7));

/** How many children the spec's search space gives, without building them. */
export function childCount(spec: ParsedSweepSpec): number {
  if (spec.grid) return Object.values(spec.grid).reduce((n, vs) => n * vs.length, 1);
  if (spec.list) return spec.list.length;
  return spec.random?.samples ?? 0;
}

/**
 * The swept parameter sets (only the swept names; the base params are merged by the caller).
 * `isInt(name)` says whether a random range of that parameter draws integers.
 */
export function expandSpace(
  spec: ParsedSweepSpec,
  maxChildren: number,
  isInt: (name: string) => boolean = () => false,
): ParamSet[] {
  const n = childCount(spec);
  if (n > maxChildren) {
    const field = spec.grid ? 'grid' : spec.list ? 'list' : 'random.samples';
    throw new ValidationError(
      field,
      `gives ${n} children; a sweep may have at most ${maxChildren} (RUNWARDEN_SWEEP_MAX_CHILDREN): narrow the space or split the sweep`,
    );
  }
  if (spec.grid) {
    let sets: ParamSet[] = [{}];
    for (const [k, values] of Object.entries(spec.grid))
      sets = sets.flatMap((s) => values.map((v) => ({ ...s, [k]: v })));
    return sets;
  }
  if (spec.list) return spec.list.map((s) => ({ ...s }));
  const r = spec.random!;
  const rand = seededRandom(r.seed);
  const out: ParamSet[] = [];
  for (let i = 0; i < r.samples; i++) {
    const set: ParamSet = {};
    // Keys in sorted order: the draws do not depend on how the spec's object was written.
    for (const k of Object.keys(r.space).sort()) {
      const dim = r.space[k]!;
      const u = rand();
      if (Array.isArray(dim)) {
        set[k] = dim[Math.min(dim.length - 1, Math.floor(u * dim.length))]!;
      } else if (isInt(k)) {
        const lo = Math.ceil(dim.min);
        const hi = Math.floor(dim.max);
        if (hi < lo)
          throw new ValidationError(
            `random.space.${k}`,
            `holds no integer between ${dim.min} and ${dim.max}; widen it`,
          );
        set[k] = dim.log
          ? Math.min(hi, Math.max(lo, Math.round(Math.exp(Math.log(lo) + u * (Math.log(hi) - Math.log(lo))))))
          : lo + Math.min(hi - lo, Math.floor(u * (hi - lo + 1)));
      } else {
        set[k] = tidy(
          dim.log
            ? Math.exp(Math.log(dim.min) + u * (Math.log(dim.max) - Math.log(dim.min)))
            : dim.min + u * (dim.max - dim.min),
        );
      }
    }
    out.push(set);
  }
  return out;
}

/** The search space as stored on the parent run and copied onto every child (JSON). */
export function describeSpace(spec: ParsedSweepSpec): { kind: 'grid' | 'list' | 'random'; space: unknown } {
  if (spec.grid) return { kind: 'grid', space: spec.grid };
  if (spec.list) return { kind: 'list', space: spec.list };
  return { kind: 'random', space: spec.random };
}
