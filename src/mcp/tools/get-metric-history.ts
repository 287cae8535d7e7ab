/** Tool `get_metric_history`: a metric's full history, downsampled to a bound with the true count stated. */
import { z } from 'zod';
import type { Metric } from '../../mlflow/client.js';
import { getMetricHistory } from '../../tracking/search.js';
import { defineTool } from './define.js';

/** Evenly spaced points, always keeping the first, the last, the minimum and the maximum. */
export function downsample(points: Metric[], max: number): Metric[] {
  if (points.length <= max) return points;
  const keep = new Set<number>([0, points.length - 1]);
  let lo = 0;
  let hi = 0;
  points.forEach((p, i) => {
    if (Number(p.value) < Number(points[lo]!.value)) lo = i;
    if (Number(p.value) > Number(points[hi]!.value)) hi = i;
  });
  keep.add(lo).add(hi);
  const stride = (points.length - 1) / (max - keep.size + 1);
  for (let x = stride; keep.size < max && x < points.length - 1; x += stride) keep.add(Math.round(x));
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
    last: z.number().optional(),
    points: z.array(z.object({ step: z.number(), value: z.number(), timestamp: z.number() })),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run({ run_id, key, max_points }, ctx) {
    const all = await getMetricHistory(ctx.client, run_id, key);
    const values = all.map((m) => Number(m.value));
    const shown = downsample(all, max_points).map((m) => ({
      step: m.step ?? 0,
      value: Number(m.value),
      timestamp: m.timestamp ?? 0,
    }));
    const finite = values.filter(Number.isFinite);
    const structured = {
      run_id,
      key,
      total_points: all.length,
      returned_points: shown.length,
      downsampled: shown.length < all.length,
      min: finite.length ? Math.min(...finite) : undefined,
      max: finite.length ? Math.max(...finite) : undefined,
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
