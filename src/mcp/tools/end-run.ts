/** Tool `end_run`: close a run with its true status; ending a closed run says who closed it. */
import { z } from 'zod';
import { isMlflowError, RunwardenError } from '../../errors/index.js';
import { ok, type RunInfo } from '../../mlflow/client.js';
import type { RunHandle } from '../../tracking/run-handle.js';
import { RW_TAGS } from '../../tracking/tags.js';
import { defineTool } from './define.js';

export const endRunTool = defineTool({
  name: 'end_run',
  title: 'End run',
  description:
    'Close a run: FINISHED (default), FAILED or KILLED, with an optional note added to its description. Buffered ' +
    'metrics are stored first. Ending an already closed run reports who closed it and when.',
  input: {
    run_id: z.string().describe('Run id from start_run'),
    status: z
      .enum(['FINISHED', 'FAILED', 'KILLED'])
      .default('FINISHED')
      .describe('Final status (default FINISHED)'),
    note: z.string().max(4000).optional().describe('Why it ended, e.g. the error for FAILED'),
  },
  output: {
    run_id: z.string(),
    status: z.string(),
    already_closed: z.boolean(),
    closed_by: z.string().optional(),
    close_reason: z.string().optional(),
    end_time: z.number().optional(),
    url: z.string(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  hints: {
    MLFLOW_UNREACHABLE:
      'The run was not ended: it is still RUNNING and its buffered metrics are kept. Call end_run again once ' +
      'MLflow answers; each call tries again (if its lease expires first, the reaper closes it).',
  },
  async run({ run_id, status, note }, ctx) {
    let alreadyClosed = false;
    let ended: RunHandle | undefined;
    try {
      ended = await ctx.runs.get(run_id);
      await ended.end(status, {
        reason: note ?? `ended by the MCP client (${status})`,
        closedBy: 'owner',
        error: status === 'FAILED' && note ? new Error(note) : undefined,
      });
      ctx.runs.release(run_id);
    } catch (err) {
      if (err instanceof RunwardenError && err.code === 'RUN_CLOSED') alreadyClosed = true;
      // Ended, but not as asked (metrics not stored by the deadline: FAILED) or a closing tag
      // refused: report what MLflow now says. Otherwise the run is still RUNNING: the error's
      // hint says to call again, and a later end_run does try again.
      else if (ended && ended.status !== 'RUNNING') ctx.runs.release(run_id);
      else throw err;
    }
    const got = await ok(
      ctx.client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id } } }),
    ).catch((err: unknown) => {
      if (isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST')) throw err;
      return { run: undefined };
    });
    const info: Partial<RunInfo> = got.run?.info ?? {};
    const tags = new Map((got.run?.data?.tags ?? []).map((t) => [t.key ?? '', t.value ?? '']));
    const closedBy = tags.get(RW_TAGS.closedBy);
    const reason = tags.get(RW_TAGS.closeReason);
    const when = info.end_time ? new Date(info.end_time).toISOString() : 'unknown time';
    const url = ctx.client.runUrl(info.experiment_id ?? '', run_id);
    const text = alreadyClosed
      ? `Run ${run_id} was already ${info.status}, closed by ${closedBy ?? 'someone else'} at ${when}` +
        `${reason ? ` (${reason})` : ''}. Nothing changed. To continue the work, start_run with parent_run_id="${run_id}".`
      : `Run ${run_id} ended ${info.status ?? status}${info.status && info.status !== status && reason ? ` (${reason})` : ''}. ${url}`;
    return {
      structured: {
        run_id,
        status: info.status ?? status,
        already_closed: alreadyClosed,
        closed_by: closedBy,
        close_reason: reason,
        end_time: info.end_time,
        url,
      },
      text,
    };
  },
});
