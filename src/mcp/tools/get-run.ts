/** Tool `get_run`: one run's status, params, latest metrics and tags. */
import { z } from 'zod';
import { ok } from '../../mlflow/client.js';
import { defineTool } from './define.js';
import { runSummaryShape, summarizeRun } from './shapes.js';

export const getRunTool = defineTool({
  name: 'get_run',
  title: 'Get run',
  description: 'Read a run: status, times, params, latest metric values, tags and UI link.',
  input: { run_id: z.string().describe('Run id') },
  output: runSummaryShape,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run({ run_id }, ctx) {
    const res = await ok(ctx.client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id } } }));
    const s = summarizeRun(ctx.client, res.run ?? {});
    const metrics = Object.entries(s.metrics)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    return {
      structured: s,
      text: `Run ${s.run_id} '${s.run_name}' ${s.status}; ${Object.keys(s.params).length} params; metrics: ${metrics || 'none'}. ${s.url}`,
    };
  },
});
