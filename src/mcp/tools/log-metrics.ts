/** Tool `log_metrics`: many metric points in one call, batched within MLflow's limits. */
import { z } from 'zod';
import { defineTool } from './define.js';

export const logMetricsTool = defineTool({
  name: 'log_metrics',
  title: 'Log metrics',
  description:
    'Log metric points to an open run (any number of keys and steps; sent in batches within MLflow limits). ' +
    'Returns once all points are stored. Renews the run lease.',
  input: {
    run_id: z.string().describe('Run id from start_run'),
    metrics: z
      .array(
        z.object({
          key: z.string().describe('Metric name, e.g. "val_loss"'),
          value: z
            .union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])])
            .describe('Value; non-finite values as the strings "NaN", "Infinity", "-Infinity"'),
          step: z.number().int().optional().describe('Step or epoch (default 0)'),
          timestamp: z.number().int().optional().describe('Epoch ms (default now)'),
        }),
      )
      .min(1)
      .max(10_000)
      .describe('Points, 1-10000 per call'),
  },
  output: {
    run_id: z.string(),
    logged: z.number(),
    keys: z.array(z.string()),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run({ run_id, metrics }, ctx) {
    const run = await ctx.runs.get(run_id);
    const now = Date.now();
    for (const m of metrics)
      await run.logMetric(m.key, Number(m.value), { step: m.step, timestamp: m.timestamp ?? now });
    await run.flush();
    const keys = [...new Set(metrics.map((m) => m.key))];
    return {
      structured: { run_id, logged: metrics.length, keys },
      text: `Stored ${metrics.length} point(s) for ${keys.join(', ')} on run ${run_id}.`,
    };
  },
});
