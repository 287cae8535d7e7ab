/** Tool `register_model`: register a run's model folder as a new model version, optionally moving an alias. */
import { z } from 'zod';
import { registerModel } from '../../tracking/models.js';
import { defineTool } from './define.js';
import { inToolTerms } from './field-names.js';

export const registerModelTool = defineTool({
  name: 'register_model',
  title: 'Register model',
  description:
    'Register the model folder of a run (e.g. artifact_path "model") as a new version of a registered model, created ' +
    'if missing; waits until READY and points alias (e.g. "champion") at it. The run must have artifact_path. ' +
    'idempotency_key makes retries (and concurrent calls) return one version.',
  input: {
    run_id: z.string().describe('Run holding the model'),
    artifact_path: z.string().min(1).describe('Run-relative model folder, e.g. "model"'),
    name: z.string().min(1).describe('Registered model name'),
    alias: z
      .string()
      .optional()
      .describe('Alias to point at the new version, e.g. "champion" (not "latest" or v<N>)'),
    description: z.string().optional().describe('Version description'),
    tags: z.record(z.string(), z.string()).optional().describe('Version tags'),
    idempotency_key: z.string().optional().describe('Same key again returns the version the first call made'),
  },
  output: {
    name: z.string(),
    version: z.string(),
    source: z.string(),
    alias: z.string().optional(),
    created: z.boolean(),
    status: z.string(),
    url: z.string(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(args, ctx) {
    const r = await registerModel(ctx.client, {
      runId: args.run_id,
      artifactPath: args.artifact_path,
      name: args.name,
      alias: args.alias,
      description: args.description,
      tags: args.tags,
      idempotencyKey: args.idempotency_key,
    }).catch((err: unknown) => {
      throw inToolTerms(err, {
        artifactPath: 'artifact_path',
        runId: 'run_id',
        idempotencyKey: 'idempotency_key',
      });
    });
    const url = `${ctx.client.uiUrl}/#/models/${encodeURIComponent(r.name)}/versions/${r.version}`;
    return {
      structured: {
        name: r.name,
        version: r.version,
        source: r.source,
        alias: r.alias,
        created: r.created,
        status: r.modelVersion.status ?? 'READY',
        url,
      },
      text: `${r.created ? 'Registered' : 'Found'} ${r.name} version ${r.version}${r.alias ? ` (alias ${r.alias})` : ''}. ${url}`,
    };
  },
});
