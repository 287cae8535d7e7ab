/**
 * The MCP server's open runs. Runs started through MCP are leased to the client: the server keeps
 * their handles (no heartbeat) and every tool call that touches a run renews its lease. Handles are
 * shared by all sessions of one server process, so an agent can continue a run from a new session;
 * a run not in memory (started by another server, or before a restart) is adopted on first use.
 *
 * Leases decide, not sessions: when a session closes (DELETE /mcp, idle timeout, stdio client gone)
 * its handles are flushed and it lets go of them, but no run is ended; a run nobody renews is closed
 * by the reaper when its lease expires. Only `shutdown()` (the process is going away) ends runs, and
 * only those this runtime started and still owns (`runwarden.owner` equal to its own id), re-read
 * first: a run another server owns, or one someone already ended, is never touched.
 */

import { RunClosedError, ValidationError } from '../errors/index.js';
import type { MlflowClient } from '../mlflow/client.js';
import { type CloseAllResult, OpenRunRegistry } from '../tracking/open-runs.js';
import type { RunHandle } from '../tracking/run-handle.js';
import { adoptRun, requireRunning } from '../tracking/start-run.js';
import { RW_TAGS } from '../tracking/tags.js';

export interface McpRunRegistryOptions {
  /** This runtime's unique owner id (`mcp:<configured>:<nonce>`): the runs it may end on shutdown. */
  owner?: string;
  /** The runtime's open-run registry (default: a new one). */
  openRuns?: OpenRunRegistry;
}

export class McpRunRegistry {
  private readonly handles = new Map<string, RunHandle>();
  private readonly bySession = new Map<string, Set<string>>();
  /** Every handle this server holds; `shutdown()` closes through it. */
  readonly openRuns: OpenRunRegistry;
  private readonly owner?: string;

  constructor(
    private readonly client: MlflowClient,
    private readonly leaseMs: number,
    opts: McpRunRegistryOptions = {},
  ) {
    this.owner = opts.owner;
    this.openRuns = opts.openRuns ?? new OpenRunRegistry();
  }

  /** A run this server just started (with its own owner id) for `sessionKey`. */
  add(handle: RunHandle, sessionKey: string): void {
    this.handles.set(handle.runId, handle);
    this.openRuns.track(handle, { client: this.client, owner: this.owner });
    this.link(handle.runId, sessionKey);
  }

  private link(runId: string, sessionKey: string): void {
    let set = this.bySession.get(sessionKey);
    if (!set) {
      set = new Set();
      this.bySession.set(sessionKey, set);
    }
    set.add(runId);
  }

  /**
   * The open handle for `runId`, adopting the run if this process does not hold it yet. The run's
   * status is read from MLflow on every call: a run the reaper (or anyone) closed is refused with
   * who closed it, never written to. With `sessionKey`, the session's close flushes the handle too.
   */
  async get(runId: string, sessionKey?: string): Promise<RunHandle> {
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
      if (sessionKey) this.link(runId, sessionKey);
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
    // Adopted runs are written to and flushed, but ended on shutdown only if they carry this
    // runtime's own owner id (never another server's run, nor a script's).
    const adopted = await adoptRun(this.client, runId, {
      leaseMs: this.leaseMs,
      heartbeatMs: 0,
      run,
      registry: this.openRuns,
      owner: this.owner,
    });
    this.handles.set(runId, adopted);
    if (sessionKey) this.link(runId, sessionKey);
    return adopted;
  }

  /** Forget a run after it ended. */
  release(runId: string): void {
    this.handles.delete(runId);
    for (const set of this.bySession.values()) set.delete(runId);
  }

  /** Forget runs someone else closed (e.g. the reaper's sweep): their handles stop, nothing is written. */
  forgetClosed(runIds: Iterable<string>): void {
    for (const id of runIds) {
      const h = this.handles.get(id);
      if (h?.status === 'RUNNING') h.detach('KILLED');
      this.release(id);
    }
  }

  /** Runs this session started (or touched) that are still open here. */
  openFor(sessionKey: string): RunHandle[] {
    return [...(this.bySession.get(sessionKey) ?? [])]
      .map((id) => this.handles.get(id))
      .filter((h): h is RunHandle => !!h && h.status === 'RUNNING');
  }

  /**
   * The session went away: flush what its runs have buffered and let go of them, ending none.
   * The runs stay RUNNING under their lease; another session may continue them (renewing it), and
   * the reaper closes them when it expires. Returns how many open runs the session left.
   */
  async closeSession(sessionKey: string): Promise<number> {
    const open = this.openFor(sessionKey);
    this.bySession.delete(sessionKey);
    await Promise.allSettled(open.map((h) => h.flush()));
    return open.length;
  }

  /**
   * The process is going away: end KILLED, with `reason`, the runs this runtime started and still
   * owns (re-read first), flush the others, and forget every handle. Bounded by `timeoutMs`.
   */
  async shutdown(reason: string, timeoutMs: number): Promise<CloseAllResult> {
    const r = await this.openRuns.closeAll({ status: 'KILLED', reason, closedBy: 'mcp-server', timeoutMs });
    this.handles.clear();
    this.bySession.clear();
    return r;
  }
}
