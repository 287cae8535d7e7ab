// get_metric_history and its downsample(): caps, true totals and extremes, non-finite values.
import { describe, expect, it } from 'vitest';
import { downsample } from '../../../../src/mcp/tools/get-metric-history.js';
import type { Metric } from '../../../../src/mlflow/client.js';
import { textOf } from '../harness.js';
import { failed, ok, s, seedRun, useToolSessions } from '../tool-session.js';

useToolSessions();

describe('get_metric_history: downsampling', () => {
  const MIN_AT = 777;

  const MAX_AT = 1333;

  const valueAt = (i: number) => (i === MIN_AT ? -100 : i === MAX_AT ? 100 : Math.sin(i / 50));

  it('get_metric_history: 2000 points with max_points 100 return at most 100, with the true total and first, last, min and max kept', async () => {
    const run = seedRun();
    // Out of order on purpose: the tool sorts by step.
    for (let i = 1999; i >= 0; i--)
      run.history.push({ key: 'loss', value: valueAt(i), step: i, timestamp: 1_000 + i });
    const res = await s.call('get_metric_history', { run_id: run.info.run_id, key: 'loss', max_points: 100 });
    const out = ok<{
      total_points: number;
      returned_points: number;
      downsampled: boolean;
      min: number;
      max: number;
      last: number;
      points: { step: number; value: number; timestamp: number }[];
    }>(res, 'get_metric_history');
    expect(out.total_points).toBe(2000);
    expect(out.returned_points).toBeLessThanOrEqual(100);
    expect(out.returned_points).toBeGreaterThanOrEqual(90);
    expect(out.points).toHaveLength(out.returned_points);
    expect(out.downsampled).toBe(true);
    expect(out).toMatchObject({ min: -100, max: 100, last: valueAt(1999) });
    const steps = out.points.map((p) => p.step);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(new Set(steps).size).toBe(steps.length);
    expect(steps).toEqual(expect.arrayContaining([0, 1999, MIN_AT, MAX_AT]));
    expect(out.points.find((p) => p.step === MIN_AT)).toEqual({
      step: MIN_AT,
      value: -100,
      timestamp: 1_000 + MIN_AT,
    });
    expect(textOf(res)).toContain('2000 points (showing');
  });

  it('get_metric_history: 200,000 points give the true min and max (no call-stack overflow from spreading them)', async () => {
    const run = seedRun();
    for (let i = 0; i < 200_000; i++)
      run.history.push({ key: 'loss', value: i === 150_000 ? -5 : i === 3 ? 9 : 1, step: i, timestamp: i });
    const out = ok<{ total_points: number; min: number; max: number }>(
      await s.call('get_metric_history', { run_id: run.info.run_id, key: 'loss', max_points: 100 }),
      'get_metric_history',
    );
    expect(out).toMatchObject({ total_points: 200_000, min: -5, max: 9 });
  }, 60_000);

  it('get_run and get_metric_history: NaN and infinite metric values come back as the strings "NaN" and "Infinity", not a schema error', async () => {
    const run = seedRun();
    run.history.push({ key: 'odd', value: 'NaN', step: 0, timestamp: 1 });
    run.history.push({ key: 'odd', value: 1.7976931348623157e308, step: 1, timestamp: 2 });
    run.history.push({ key: 'odd', value: 0.5, step: 2, timestamp: 3 });
    const hist = ok<{ points: { value: unknown }[]; min: number; max: number; last: unknown }>(
      await s.call('get_metric_history', { run_id: run.info.run_id, key: 'odd' }),
      'get_metric_history',
    );
    expect(hist.points.map((p) => p.value)).toEqual(['NaN', 'Infinity', 0.5]);
    expect(hist).toMatchObject({ min: 0.5, max: 0.5, last: 0.5 });
    const got = ok<{ metrics: Record<string, unknown> }>(
      await s.call('get_run', { run_id: run.info.run_id }),
      'get_run',
    );
    expect(got.metrics).toEqual({ odd: 0.5 });
  });

  it('downsample: max_points 2 or 3 never returns more points than asked', () => {
    const points = Array.from({ length: 50 }, (_, i) => ({
      key: 'm',
      value: (i * 37) % 11,
      step: i,
      timestamp: i,
    }));
    expect(downsample(points, 2).map((p) => p.step)).toEqual([0, 49]);
    expect(downsample(points, 3)).toHaveLength(3);
    expect(downsample(points, 4)).toHaveLength(4);
  });

  it('get_metric_history: an unknown run is RESOURCE_DOES_NOT_EXIST, not an empty history', async () => {
    const text = failed(await s.call('get_metric_history', { run_id: 'ghost', key: 'loss' }));
    expect(text).toContain('RESOURCE_DOES_NOT_EXIST');
  });

  it('get_metric_history: a run without the metric returns zero points', async () => {
    const run = seedRun();
    const out = ok(
      await s.call('get_metric_history', { run_id: run.info.run_id, key: 'loss' }),
      'get_metric_history',
    );
    expect(out).toMatchObject({ total_points: 0, returned_points: 0, downsampled: false, points: [] });
  });

  const series = (n: number, at: (i: number) => number = valueAt): Metric[] =>
    Array.from({ length: n }, (_, i) => ({ key: 'm', value: at(i), step: i, timestamp: i }));

  it('downsample: a series no longer than max comes back unchanged', () => {
    const points = series(50);
    expect(downsample(points, 50)).toBe(points);
    expect(downsample(points, 500)).toBe(points);
  });

  it('downsample: 2000 points to 100 keeps first, last, min and max, in step order, without duplicates', () => {
    const out = downsample(series(2000), 100);
    const steps = out.map((p) => p.step!);
    expect(out.length).toBeLessThanOrEqual(100);
    expect(out.length).toBeGreaterThanOrEqual(90);
    expect(steps[0]).toBe(0);
    expect(steps.at(-1)).toBe(1999);
    expect(steps).toEqual(expect.arrayContaining([MIN_AT, MAX_AT]));
    expect(steps).toEqual([...new Set(steps)].sort((a, b) => a - b));
  });

  it('downsample: the kept points are spread over the whole series', () => {
    const steps = downsample(
      series(10_000, (i) => i),
      200,
    ).map((p) => p.step!);
    const gaps = steps.slice(1).map((st, i) => st - steps[i]!);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2 * (10_000 / 200));
  });

  it('downsample: with max 4, the extremes at interior steps are the 4 points kept', () => {
    const out = downsample(series(2000), 4);
    expect(out.map((p) => p.step)).toEqual([0, MIN_AT, MAX_AT, 1999]);
  });

  it('downsample: monotonic series keep their endpoints as min and max', () => {
    const out = downsample(
      series(1000, (i) => -i),
      10,
    );
    expect(out.length).toBeLessThanOrEqual(10);
    expect(out[0]!.step).toBe(0);
    expect(out.at(-1)!.step).toBe(999);
  });
});
