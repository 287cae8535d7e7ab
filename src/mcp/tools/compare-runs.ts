/** Tool `compare_runs`: params and latest metrics of several runs side by side. */
import { z } from 'zod';
import { compareRuns } from '../../tracking/search.js';
import { defineTool } from './define.js';
import { metricValueSchema, toMetricValue } from './shapes.js';

export const compareRunsTool = defineTool({
  name: 'compare_runs',
  title: 'Compare runs',
  description:
    'Put 2-20 runs side by side: params and latest metrics per run, and which params differ. Use with search_runs to choose the best.',
  input: {
    run_ids: z.array(z.string()).min(2).max(20).describe('Run ids, 2-20'),
  },
  output: {
    runs: z.array(
      z.object({ run_id: z.string(), run_name: z.string(), status: z.string(), url: z.string() }),
    ),
    params: z.record(z.string(), z.record(z.string(), z.string())),
    metrics: z.record(z.string(), z.record(z.string(), metricValueSchema)),
    differing_params: z.array(z.string()),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run({ run_ids }, ctx) {
    const c = await compareRuns(ctx.client, run_ids);
    const metrics = Object.fromEntries(
      Object.entries(c.metrics).map(([k, byRun]) => [
        k,
        Object.fromEntries(Object.entries(byRun).map(([id, v]) => [id, toMetricValue(v)])),
      ]),
    );
    const runs = c.runs.map((r) => ({
      run_id: r.runId,
      run_name: r.runName,
      status: r.status,
      url: ctx.client.runUrl(r.experimentId, r.runId),
    }));
    const rows = Object.entries(metrics).map(
      ([k, byRun]) =>
        `${k}: ${runs.map((r) => `${r.run_name || r.run_id}=${byRun[r.run_id] ?? '—'}`).join(', ')}`,
    );
    return {
      structured: { runs, params: c.params, metrics, differing_params: c.differingParams },
      text: `Compared ${runs.length} runs. Differing params: ${c.differingParams.join(', ') || 'none'}.\n${rows.join('\n')}`,
    };
  },
});
