/**
 * The MCP server's open runs. Runs started through MCP are leased to the client: the server keeps
 * their handles (no heartbeat), every tool call that touches a run renews its lease, and the runs a
 * session started are ended KILLED when that session goes away. Handles are shared by all
 * sessions of one server process; a run not in memory (server restarted) is adopted on first use.
 */

import { RunClosedError, ValidationError } from '../errors/index.js';
import type { MlflowClient } from '../mlflow/client.js';
import { untrackOpenRun } from '../tracking/open-runs.js';
import type { RunHandle } from '../tracking/run-handle.js';
import { adoptRun, requireRunning } from '../tracking/start-run.js';
import { RW_TAGS } from '../tracking/tags.js';

export class McpRunRegistry {
  private readonly handles = new Map<string, RunHandle>();
  private readonly bySession = new Map<string, Set<string>>();

  constructor(
    private readonly client: MlflowClient,
    private readonly leaseMs: number,
  ) {}

  add(handle: RunHandle, sessionKey: string): void {
    this.handles.set(handle.runId, handle);
    let set = this.bySession.get(sessionKey);
    if (!set) {
      set = new Set();
      this.bySession.set(sessionKey, set);
    }
    set.add(handle.runId);
  }

  /**
   * The open handle for `runId`, adopting the run if this process does not hold it yet. The run's
   * status is read from MLflow on every call: a run the reaper (or anyone) closed is refused with
   * who closed it, never written to.
   */
  async get(runId: string): Promise<RunHandle> {
    const known = this.handles.get(runId);
    if (known && known.status === 'RUNNING') {
      try {
        await requireRunning(this.client, runId);
      } catch (err) {
        if (err instanceof RunClosedError) {
          known.detach('KILLED');
          this.release(runId);
        }
        throw err;
      }
      return known;
    }
    const run = await requireRunning(this.client, runId);
    const owner = run.data?.tags?.find((t) => t.key === RW_TAGS.owner)?.value ?? '';
    if (owner.startsWith('worker:')) {
      throw new ValidationError(
        'run_id',
        `run ${runId} belongs to a task attempt (${owner}); only its worker writes to it and ends it. ` +
          'Read it with get_run, or act on the task with get_task / cancel_task',
      );
    }
    const adopted = await adoptRun(this.client, runId, { leaseMs: this.leaseMs, heartbeatMs: 0, run });
    // Only runs an MCP server started are this server's to end on shutdown; a run some script
    // started (no runwarden owner) may be written to, but its script ends it.
    if (!owner.startsWith('mcp:')) untrackOpenRun(adopted);
    this.handles.set(runId, adopted);
    return adopted;
  }

  /** Forget a run after it ended. */
  release(runId: string): void {
    this.handles.delete(runId);
    for (const set of this.bySession.values()) set.delete(runId);
  }

  /** Runs this session started that are still open. */
  openFor(sessionKey: string): RunHandle[] {
    return [...(this.bySession.get(sessionKey) ?? [])]
      .map((id) => this.handles.get(id))
      .filter((h): h is RunHandle => !!h && h.status === 'RUNNING');
  }

  /** End every run the session started, KILLED with `reason`. Returns how many were ended. */
  async closeSession(sessionKey: string, reason: string): Promise<number> {
    const open = this.openFor(sessionKey);
    // MLflow accepts an update on an ended run, so a run the reaper (or anyone) already closed is
    // checked first and only forgotten here, never re-closed over the first closer's status.
    const ended = await Promise.allSettled(
      open.map(async (h) => {
        try {
          await requireRunning(this.client, h.runId);
        } catch (err) {
          if (!(err instanceof RunClosedError)) throw err;
          h.detach('KILLED');
          return false;
        }
        await h.end('KILLED', { reason, closedBy: 'mcp-server' });
        return true;
      }),
    );
    for (const h of open) this.release(h.runId);
    this.bySession.delete(sessionKey);
    return ended.filter((r) => r.status === 'fulfilled' && r.value).length;
  }
}
