/** Tool `log_params`: write-once params, renewing the run's lease. */
import { z } from 'zod';
import { defineTool } from './define.js';

export const logParamsTool = defineTool({
  name: 'log_params',
  title: 'Log params',
  description:
    'Log params (hyperparameters, config) to an open run. Params are write-once: the same value again is fine, ' +
    'a different value is refused. Values over 6000 chars are truncated and stored whole as an artifact.',
  input: {
    run_id: z.string().describe('Run id from start_run'),
    params: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .describe('Key → value, e.g. {"lr": 0.001, "optimizer": "adam"}; keys ≤250 chars of [A-Za-z0-9_-. :/]'),
  },
  output: {
    run_id: z.string(),
    logged: z.number(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run({ run_id, params }, ctx) {
    const run = await ctx.runs.get(run_id);
    await run.logParams(params);
    const n = Object.keys(params).length;
    return { structured: { run_id, logged: n }, text: `Logged ${n} param(s) to run ${run_id}.` };
  },
});
