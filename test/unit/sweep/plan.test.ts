// Covers planning a sweep without any service: the spec's refusals (each naming the field and the
// fix), grid/list/random expansion, a seeded random space giving the same children every time,
// the bound on the number of children, every child checked against the template before anything
// is queued, and ids derived deterministically from the spec.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadTemplate } from '../../../src/queue/templates.js';
import { expandSpace, seededRandom } from '../../../src/sweep/expand.js';
import { parseSweepSpec, planSweep } from '../../../src/sweep/plan.js';

const TASKS_DIR = fileURLToPath(new URL('../../fixtures/tasks', import.meta.url));
const sweepfn = loadTemplate(TASKS_DIR, 'sweepfn');

describe('sweep spec', () => {
  it.each([
    [{ template: 'sweepfn' }, 'sweep: give a search space: grid'],
    [
      { template: 'sweepfn', grid: { x: [1] }, list: [{ x: 1 }] },
      'sweep.list: give exactly one of grid, list or random (got grid and list)',
    ],
    [{ template: 'sweepfn', grid: { x: [] } }, 'sweep.grid.x: give at least one value'],
    [
      { template: 'sweepfn', random: { space: { x: { min: 2, max: 1 } }, samples: 3 } },
      'max must be ≥ min; swap them',
    ],
    [
      { template: 'sweepfn', random: { space: { x: { min: 0, max: 1, log: true } }, samples: 3 } },
      'log sampling needs min > 0',
    ],
    [{ template: 'sweepfn', grid: { x: [1] }, max_concurrency: 0 }, 'sweep.max_concurrency'],
    [{ template: 'sweepfn', grid: { x: [1] }, selct: {} }, 'sweep: Unrecognized key'],
  ])('parseSweepSpec(%j): refused, naming the field: %s', (raw, says) => {
    expect(() => parseSweepSpec(raw)).toThrow(says);
  });

  it('defaults: concurrency 2, select from the template primary_metric, early_stop direction from select', () => {
    const plan = planSweep(
      { template: 'sweepfn', grid: { x: [1, 2] }, early_stop: { metric: 'loss' } },
      sweepfn,
      200,
    );
    expect(plan.maxConcurrency).toBe(2);
    expect(plan.select).toEqual({ metric: 'loss', direction: 'min' });
    expect(plan.earlyStop).toEqual({ metric: 'loss', warmupSteps: 0, direction: 'min' });
    expect(plan.children.every((c) => c.sweep?.earlyStop?.metric === 'loss')).toBe(true);
  });
});

describe('expansion', () => {
  it('grid: every combination, the first key varying slowest', () => {
    const spec = parseSweepSpec({ template: 'sweepfn', grid: { x: [1, 2], epochs: [3, 4, 5] } });
    expect(expandSpace(spec, 200)).toEqual([
      { x: 1, epochs: 3 },
      { x: 1, epochs: 4 },
      { x: 1, epochs: 5 },
      { x: 2, epochs: 3 },
      { x: 2, epochs: 4 },
      { x: 2, epochs: 5 },
    ]);
  });

  it('random: the same seed gives the same children, another seed others; ints are whole and in range', () => {
    const spec = (seed: number) =>
      parseSweepSpec({
        template: 'sweepfn',
        random: {
          space: { x: { min: -2, max: 5 }, epochs: { min: 1, max: 9 }, fail: [false, true] },
          samples: 20,
          seed,
        },
      });
    const isInt = (k: string) => k === 'epochs';
    const a = expandSpace(spec(7), 200, isInt);
    expect(expandSpace(spec(7), 200, isInt)).toEqual(a);
    expect(expandSpace(spec(8), 200, isInt)).not.toEqual(a);
    expect(a).toHaveLength(20);
    for (const s of a) {
      expect(s.x).toBeGreaterThanOrEqual(-2);
      expect(s.x).toBeLessThanOrEqual(5);
      expect(Number.isInteger(s.epochs)).toBe(true);
      expect(s.epochs).toBeGreaterThanOrEqual(1);
      expect(s.epochs).toBeLessThanOrEqual(9);
      expect([false, true]).toContain(s.fail);
    }
    // Not all the same: the draws spread over the range.
    expect(new Set(a.map((s) => s.epochs)).size).toBeGreaterThan(3);
  });

  it('seededRandom: deterministic floats in [0, 1)', () => {
    const r1 = seededRandom(42);
    const r2 = seededRandom(42);
    const xs = Array.from({ length: 1000 }, () => r1());
    expect(Array.from({ length: 1000 }, () => r2())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });

  it('a grid of 21 × 10 children is refused before it is built, naming the setting', () => {
    const spec = parseSweepSpec({
      template: 'sweepfn',
      grid: {
        x: Array.from({ length: 21 }, (_, i) => i),
        epochs: Array.from({ length: 10 }, (_, i) => i + 1),
      },
    });
    expect(() => expandSpace(spec, 200)).toThrow(
      'grid: gives 210 children; a sweep may have at most 200 (RUNWARDEN_SWEEP_MAX_CHILDREN)',
    );
  });
});

describe('planSweep', () => {
  it('a child whose params the template refuses refuses the whole sweep, naming the child and the bound', () => {
    expect(() => planSweep({ template: 'sweepfn', list: [{ x: 1 }, { x: 500 }] }, sweepfn, 200)).toThrow(
      'sweep child 1 {"x":500} params.x: 500 is out of bounds; allowed -100 to 100',
    );
  });

  it('a swept name the template lacks is refused with the names it takes', () => {
    expect(() => planSweep({ template: 'sweepfn', grid: { lr: [0.1] } }, sweepfn, 200)).toThrow(
      "sweep.grid.lr: template 'sweepfn' has no parameter 'lr'; it takes: x, epochs, sleep_ms, fail",
    );
  });

  it('ids: s-<16 hex> from the spec (the same spec, the same id; force a new one), children <id>-c<i>, base params merged', () => {
    const spec = { template: 'sweepfn', params: { epochs: 4 }, grid: { x: [1, 2] } };
    const a = planSweep(spec, sweepfn, 200);
    expect(a.sweepId).toMatch(/^s-[0-9a-f]{16}$/);
    expect(planSweep(spec, sweepfn, 200).sweepId).toBe(a.sweepId);
    expect(planSweep({ ...spec, force: true }, sweepfn, 200).sweepId).toMatch(
      new RegExp(`^${a.sweepId}-[0-9a-f]{6}$`),
    );
    expect(planSweep({ ...spec, grid: { x: [1, 3] } }, sweepfn, 200).sweepId).not.toBe(a.sweepId);
    expect(a.children.map((c) => c.taskId)).toEqual([`${a.sweepId}-c0`, `${a.sweepId}-c1`]);
    expect(a.children[1]!.params).toEqual({ x: 2, epochs: 4, sleep_ms: 0, fail: false });
    expect(a.children.every((c) => c.review === 'none' && c.sweep?.id === a.sweepId)).toBe(true);
    expect(a.parent.taskId).toBe(a.sweepId);
  });

  it('a template without primary_metric needs select', () => {
    const noop = loadTemplate(TASKS_DIR, 'noop');
    expect(() => planSweep({ template: 'noop', grid: { n: [1, 2] } }, noop, 200)).toThrow(
      "sweep.select: template 'noop' declares no primary_metric; give select: {metric, direction}",
    );
    expect(
      planSweep(
        { template: 'noop', grid: { n: [1, 2] }, select: { metric: 'm', direction: 'max' } },
        noop,
        200,
      ).select,
    ).toEqual({
      metric: 'm',
      direction: 'max',
    });
  });
});

describe('sweep identity and parameter names', () => {
  const grid = { template: 'sweepfn', grid: { x: [1, 2] } };
  const id = (extra: Record<string, unknown>) => planSweep({ ...grid, ...extra }, sweepfn, 200).sweepId;

  it.each([
    [{ experiment: 'b' }],
    [{ max_concurrency: 1 }],
    [{ priority: 5 }],
    [{ timeout_seconds: 60 }],
    [{ attempts: 2 }],
  ])('the same grid with %j is another sweep (another id), never the first one returned as existing', (extra) => {
    expect(id(extra)).not.toBe(id({}));
  });

  it.each([
    ['grid', (k: string) => `{"template":"sweepfn","grid":{"${k}":[1]}}`],
    ['list', (k: string) => `{"template":"sweepfn","list":[{"x":1},{"${k}":1}]}`],
    ['random.space', (k: string) => `{"template":"sweepfn","random":{"samples":2,"space":{"${k}":[1,2]}}}`],
  ])('%s: a prototype key (constructor, __proto__, toString) is refused, naming the field', (where, json) => {
    for (const k of ['constructor', '__proto__', 'toString']) {
      const raw = JSON.parse(json(k)) as unknown;
      expect(() => planSweep(raw, sweepfn, 200), `${where}.${k}`).toThrow(
        new RegExp(`sweep\\.${where.replace('.', '\\.')}(\\.1)?\\.${k}`),
      );
    }
  });
});
