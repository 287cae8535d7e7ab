/** Tool `get_or_create_experiment`: one experiment per name, race-safe. */
import { z } from 'zod';
import { getOrCreateExperiment } from '../../tracking/experiments.js';
import { defineTool } from './define.js';
import { experimentShape, summarizeExperiment } from './shapes.js';

export const getOrCreateExperimentTool = defineTool({
  name: 'get_or_create_experiment',
  title: 'Get or create experiment',
  description:
    'Return the experiment with this name, creating it if missing. Safe to call repeatedly and concurrently: ' +
    'one name always maps to one experiment. Tags apply only when it is created.',
  input: {
    name: z.string().min(1).max(500).describe('Experiment name, e.g. "weekly-cases/gru"'),
    tags: z.record(z.string(), z.string()).optional().describe('Tags set if the experiment is created'),
  },
  output: {
    experiment_id: z.string(),
    created: z.boolean(),
    experiment: z.object(experimentShape),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run({ name, tags }, ctx) {
    const r = await getOrCreateExperiment(ctx.client, name, { tags });
    const experiment = summarizeExperiment(ctx.client, r.experiment);
    return {
      structured: { experiment_id: r.experimentId, created: r.created, experiment },
      text: `${r.created ? 'Created' : 'Found'} experiment '${name}' (id ${r.experimentId}): ${experiment.url}`,
    };
  },
});
