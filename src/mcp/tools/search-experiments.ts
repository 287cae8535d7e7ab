/** Tool `search_experiments`: list experiments with MLflow's filter syntax and pagination. */
import { z } from 'zod';
import { ok } from '../../mlflow/client.js';
import { defineTool } from './define.js';
import { experimentShape, summarizeExperiment } from './shapes.js';

export const searchExperimentsTool = defineTool({
  name: 'search_experiments',
  title: 'Search experiments',
  description:
    'Find experiments. filter uses MLflow syntax over name, tags.<key>, creation_time (AND only), e.g. "name LIKE \'weekly%\'". Paginate with page_token.',
  input: {
    filter: z.string().optional().describe('MLflow filter, e.g. "name LIKE \'%gru%\'"; omit for all'),
    order_by: z
      .array(z.string())
      .optional()
      .describe('e.g. ["last_update_time DESC"] (default: newest first)'),
    max_results: z.number().int().min(1).max(200).default(50).describe('Page size, 1-200 (default 50)'),
    page_token: z.string().optional().describe('next_page_token from the previous page'),
    include_deleted: z.boolean().default(false).describe('Also list deleted experiments'),
  },
  output: {
    experiments: z.array(z.object(experimentShape)),
    next_page_token: z.string().optional(),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  hints: {
    INVALID_PARAMETER_VALUE: "Check the filter syntax: e.g. name = 'x', name LIKE 'x%', tags.team = 'y'.",
  },
  async run(args, ctx) {
    const page = await ok(
      ctx.client.api.POST('/api/2.0/mlflow/experiments/search', {
        body: {
          filter: args.filter,
          order_by: args.order_by,
          max_results: args.max_results,
          page_token: args.page_token,
          view_type: args.include_deleted ? 'ALL' : 'ACTIVE_ONLY',
        },
      }),
    );
    const experiments = (page.experiments ?? []).map((e) => summarizeExperiment(ctx.client, e));
    const more = page.next_page_token ? ' More: pass next_page_token.' : '';
    return {
      structured: { experiments, next_page_token: page.next_page_token },
      text: `${experiments.length} experiment(s): ${experiments.map((e) => `${e.name} (${e.experiment_id})`).join(', ')}.${more}`,
    };
  },
});
