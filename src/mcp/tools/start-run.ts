/** Tool `start_run`: open a leased run that closes itself if the client forgets it. */
import { z } from 'zod';
import { ValidationError } from '../../errors/index.js';
import { getOrCreateExperiment } from '../../tracking/experiments.js';
import { startRun } from '../../tracking/start-run.js';
import { defineTool } from './define.js';
import { inToolTerms } from './field-names.js';
import { assertNoReservedTags } from './shapes.js';

export const startRunTool = defineTool({
  name: 'start_run',
  title: 'Start run',
  description:
    'Open an MLflow run (give experiment_id, or experiment_name to get-or-create it). The run is leased: each call ' +
    'that logs to it renews the lease; call end_run when done. If the lease expires or the client disconnects, ' +
    'the run is ended KILLED with the reason.',
  input: {
    experiment_id: z.string().optional().describe('Experiment id (or give experiment_name)'),
    experiment_name: z.string().min(1).max(500).optional().describe('Experiment name; created if missing'),
    run_name: z.string().max(250).optional().describe('Run name shown in the UI'),
    description: z.string().max(8000).optional().describe('Markdown description of the run'),
    tags: z.record(z.string(), z.string()).optional().describe('Run tags'),
    params: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .optional()
      .describe('Initial params, e.g. {"lr": 0.001, "epochs": 20}'),
    parent_run_id: z
      .string()
      .optional()
      .describe('Nest this run under another run (an existing, not deleted run of the same experiment)'),
    lease_seconds: z
      .number()
      .int()
      .min(10)
      .max(86_400)
      .optional()
      .describe('Lease length in seconds (default 900, max 86400); renewed by every write'),
  },
  output: {
    run_id: z.string(),
    experiment_id: z.string(),
    experiment_created: z.boolean(),
    run_name: z.string(),
    artifact_uri: z.string(),
    lease_seconds: z.number(),
    lease_expires_at: z.string(),
    url: z.string(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(args, ctx) {
    if (!args.experiment_id === !args.experiment_name) {
      throw new ValidationError('experiment_id', 'give exactly one of experiment_id or experiment_name');
    }
    assertNoReservedTags(args.tags);
    let experimentId = args.experiment_id ?? '';
    let created = false;
    if (args.experiment_name) {
      const r = await getOrCreateExperiment(ctx.client, args.experiment_name);
      experimentId = r.experimentId;
      created = r.created;
    }
    const leaseSeconds = args.lease_seconds ?? ctx.settings.leaseSeconds;
    const handle = await startRun(ctx.client, {
      experimentId,
      runName: args.run_name,
      description: args.description,
      tags: { ...args.tags, 'runwarden.mcp_session': ctx.sessionKey },
      params: args.params,
      parentRunId: args.parent_run_id,
      owner: ctx.settings.owner,
      leaseMs: leaseSeconds * 1000,
      heartbeatMs: 0,
      leaseExpiryStatus: 'KILLED',
      expiryNote: 'the MCP client never called end_run',
      sourceType: 'LOCAL',
      sourceName: 'runwarden-mcp',
      handleSignals: false,
    }).catch((err: unknown) => {
      throw inToolTerms(err, {
        parentRunId: 'parent_run_id',
        experimentId: 'experiment_id',
        runName: 'run_name',
      });
    });
    ctx.runs.add(handle, ctx.sessionKey);
    const expires = new Date(Date.now() + leaseSeconds * 1000).toISOString();
    return {
      structured: {
        run_id: handle.runId,
        experiment_id: handle.experimentId,
        experiment_created: created,
        run_name: handle.runName,
        artifact_uri: handle.artifactUri,
        lease_seconds: leaseSeconds,
        lease_expires_at: expires,
        url: handle.url,
      },
      text: `Started run ${handle.runId} ('${handle.runName}') in experiment ${handle.experimentId}; lease ${leaseSeconds}s. Call end_run when done. ${handle.url}`,
    };
  },
});
