/** Tool `get_metric_history`: a metric's full history, downsampled to a bound with the true count stated. */
import { z } from 'zod';
import type { Metric } from '../../mlflow/client.js';
import { getMetricHistory } from '../../tracking/search.js';
import { defineTool } from './define.js';
import { metricValueSchema, toMetricValue } from './shapes.js';

/**
 * At most `max` evenly spaced points. First and last are always kept; with room (max ≥ 4) the
 * minimum and maximum too, so a downsampled curve still shows its extremes.
 */
export function downsample(points: Metric[], max: number): Metric[] {
  if (points.length <= max) return points;
  const keep = new Set<number>([0, points.length - 1]);
  if (max >= 4) {
    let lo = -1;
    let hi = -1;
    points.forEach((p, i) => {
      const v = Number(p.value);
      if (!Number.isFinite(v)) return;
      if (lo < 0 || v < Number(points[lo]!.value)) lo = i;
      if (hi < 0 || v > Number(points[hi]!.value)) hi = i;
    });
    if (lo >= 0) keep.add(lo).add(hi);
  }
  const room = max - keep.size;
  for (let k = 1; k <= room; k++) keep.add(Math.round((k * (points.length - 1)) / (room + 1)));
  // Rounding may collide with kept indexes; fill any gap left from the start.
  for (let i = 1; keep.size < max && i < points.length - 1; i++) keep.add(i);
  return [...keep].sort((a, b) => a - b).map((i) => points[i]!);
}

export const getMetricHistoryTool = defineTool({
  name: 'get_metric_history',
  title: 'Get metric history',
  description:
    'All values of one metric of a run, in step order. Long histories are downsampled to max_points (first, last, ' +
    'min and max kept); total_points gives the true count.',
  input: {
    run_id: z.string().describe('Run id'),
    key: z.string().describe('Metric name, e.g. "val_loss"'),
    max_points: z
      .number()
      .int()
      .min(2)
      .max(5000)
      .default(500)
      .describe('Most points to return, 2-5000 (default 500)'),
  },
  output: {
    run_id: z.string(),
    key: z.string(),
    total_points: z.number(),
    returned_points: z.number(),
    downsampled: z.boolean(),
    min: z.number().optional(),
    max: z.number().optional(),
    last: metricValueSchema.optional(),
    points: z.array(z.object({ step: z.number(), value: metricValueSchema, timestamp: z.number() })),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run({ run_id, key, max_points }, ctx) {
    const all = await getMetricHistory(ctx.client, run_id, key);
    const values = all.map((m) => toMetricValue(m.value));
    const shown = downsample(all, max_points).map((m) => ({
      step: m.step ?? 0,
      value: toMetricValue(m.value),
      timestamp: m.timestamp ?? 0,
    }));
    // A loop, not Math.min(...values): spreading a long history overflows the call stack.
    let min: number | undefined;
    let max: number | undefined;
    for (const v of values) {
      if (typeof v !== 'number') continue;
      if (min === undefined || v < min) min = v;
      if (max === undefined || v > max) max = v;
    }
    const structured = {
      run_id,
      key,
      total_points: all.length,
      returned_points: shown.length,
      downsampled: shown.length < all.length,
      min,
      max,
      last: values.at(-1),
      points: shown,
    };
    return {
      structured,
      text:
        `${key} on run ${run_id}: ${all.length} points${structured.downsampled ? ` (showing ${shown.length})` : ''}; ` +
        `min ${structured.min}, max ${structured.max}, last ${structured.last}.`,
    };
  },
});
