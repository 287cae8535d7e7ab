/** Tool `search_runs`: find runs with MLflow's filter syntax, ordered and paginated. */
import { z } from 'zod';
import { ValidationError } from '../../errors/index.js';
import { ok } from '../../mlflow/client.js';
import { getExperimentByName } from '../../tracking/experiments.js';
import { defineTool } from './define.js';
import { runSummaryShape, summarizeRun } from './shapes.js';

export const searchRunsTool = defineTool({
  name: 'search_runs',
  title: 'Search runs',
  description:
    'Find runs in experiments. filter is MLflow syntax (AND only), e.g. "metrics.rmse < 0.5 AND params.model = \'gru\'" ' +
    'or "attributes.status = \'FINISHED\'". order_by e.g. ["metrics.rmse ASC"]. Paginate with page_token.',
  input: {
    experiment_ids: z.array(z.string()).optional().describe('Experiment ids (or experiment_names)'),
    experiment_names: z.array(z.string()).optional().describe('Experiment names'),
    filter: z.string().optional().describe('MLflow filter string; omit for all runs'),
    order_by: z
      .array(z.string())
      .optional()
      .describe('e.g. ["metrics.rmse ASC", "attributes.start_time DESC"]'),
    max_results: z.number().int().min(1).max(200).default(25).describe('Page size, 1-200 (default 25)'),
    page_token: z.string().optional().describe('next_page_token from the previous page'),
    include_tags: z
      .boolean()
      .default(false)
      .describe('Include every tag (large); default only params and metrics'),
  },
  output: {
    runs: z.array(z.object(runSummaryShape)),
    next_page_token: z.string().optional(),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  hints: {
    INVALID_PARAMETER_VALUE:
      "Check the filter: clauses joined by AND, strings in single quotes, e.g. params.model = 'gru' AND metrics.rmse < 1.",
  },
  async run(args, ctx) {
    const ids = [...(args.experiment_ids ?? [])];
    for (const name of args.experiment_names ?? []) {
      const e = await getExperimentByName(ctx.client, name);
      if (!e?.experiment_id) throw new ValidationError('experiment_names', `no experiment named '${name}'`);
      ids.push(e.experiment_id);
    }
    if (!ids.length) throw new ValidationError('experiment_ids', 'give experiment_ids or experiment_names');
    const page = await ok(
      ctx.client.api.POST('/api/2.0/mlflow/runs/search', {
        body: {
          experiment_ids: ids,
          filter: args.filter,
          order_by: args.order_by,
          max_results: args.max_results,
          page_token: args.page_token,
        },
      }),
    );
    const runs = (page.runs ?? []).map((r) => {
      const s = summarizeRun(ctx.client, r);
      return args.include_tags ? s : { ...s, tags: { 'mlflow.runName': s.run_name } };
    });
    const lines = runs.map(
      (r) =>
        `${r.run_id} '${r.run_name}' ${r.status} ${Object.entries(r.metrics)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
    );
    return {
      structured: { runs, next_page_token: page.next_page_token },
      text: `${runs.length} run(s)${page.next_page_token ? ' (more: pass next_page_token)' : ''}:\n${lines.join('\n')}`,
    };
  },
});
