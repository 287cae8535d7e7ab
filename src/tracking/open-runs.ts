/**
 * Open-run registries: the run handles one runtime holds open (an MCP server, a worker, a library
 * user's script), so that when it stops it can flush them and end KILLED the runs it still owns.
 * There is no process-wide registry: whoever starts runs makes one and passes it to `startRun` /
 * `withRun` (a run started without one gets a registry of its own). Closing re-reads each run first
 * and ends only those still RUNNING and still carrying the owner id the registry recorded for them;
 * a run it merely adopted, or that someone else closed or took over, is flushed (when still open)
 * and forgotten, never closed again over the first closer's status. A process killed outright
 * (SIGKILL, crash) cannot do this: the reaper covers that case.
 */
import { randomBytes } from 'node:crypto';
import { RunClosedError } from '../errors/index.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import type { RunHandle } from './run-handle.js';
import { RW_TAGS, type TerminalStatus } from './tags.js';

/** What a run handle needs from the registry it is tracked in. */
export interface OpenRunTracker {
  untrack(handle: RunHandle): void;
}

export interface TrackOptions {
  /** The client the run is read back with when the registry closes it. */
  client: MlflowClient;
  /**
   * The `runwarden.owner` this runtime wrote on the run when it started it. Only runs tracked with
   * an owner are ended on close, and only while the run still carries that owner. Leave it out for
   * a run this runtime merely writes to (adopted): it is flushed on close, never ended.
   */
  owner?: string;
}

export interface CloseAllOptions {
  status?: 'KILLED' | 'FAILED';
  reason?: string;
  closedBy?: string;
  /** Stop waiting after this long (default 10 s); what is not done by then counts as failed. */
  timeoutMs?: number;
}

export interface CloseAllResult {
  /** Runs this registry ended. */
  closed: number;
  /** Runs flushed and forgotten without ending them: adopted, already closed, or taken over. */
  released: number;
  /** Runs whose close or flush failed or did not finish in time. */
  failed: number;
}

/**
 * A unique owner id for one runtime: `<kind>:<configured>:<nonce>`. The configured part
 * (`RUNWARDEN_OWNER`, default `user@host:pid`) says who it is; the random nonce keeps two runtimes
 * with the same setting (two MCP servers, two workers, one restarted) from closing each other's runs.
 */
export function uniqueOwnerId(kind: string, configured: string): string {
  return `${kind}:${configured}:${randomBytes(4).toString('hex')}`;
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
/** Marks runwarden's signal listeners (a constant, not state): when only these listen, the last one exits. */
const RUNWARDEN_LISTENER = Symbol('runwarden.openRunsSignalListener');
type MarkedListener = ((...args: unknown[]) => void) & { [RUNWARDEN_LISTENER]?: { done?: Promise<unknown> } };

type CloseOutcome = 'closed' | 'released';

export class OpenRunRegistry implements OpenRunTracker {
  private readonly entries = new Map<RunHandle, TrackOptions>();
  private uninstallSignals?: () => void;
  private readonly uninstallWhenEmpty: boolean;

  /**
   * @param opts.uninstallWhenEmpty remove the signal handlers once the last run is untracked (the
   * registry `startRun` makes for a single run uses this, so it leaves no listener behind).
   */
  constructor(opts: { uninstallWhenEmpty?: boolean } = {}) {
    this.uninstallWhenEmpty = opts.uninstallWhenEmpty ?? false;
  }

  track(handle: RunHandle, opts: TrackOptions): void {
    this.prune();
    const known = this.entries.get(handle);
    // Once tracked as owned, a later adoption of the same handle does not drop the ownership.
    this.entries.set(handle, { client: opts.client, owner: opts.owner ?? known?.owner });
  }

  untrack(handle: RunHandle): void {
    this.entries.delete(handle);
    if (this.uninstallWhenEmpty && !this.entries.size) this.uninstallSignals?.();
  }

  /** Handles not yet ended (those that ended, or were detached, are dropped here). */
  list(): RunHandle[] {
    this.prune();
    return [...this.entries.keys()];
  }

  get size(): number {
    return this.list().length;
  }

  private prune(): void {
    for (const h of this.entries.keys()) if (h.status !== 'RUNNING') this.entries.delete(h);
  }

  /**
   * Flush every open handle and end (default KILLED) the runs this registry owns and that are still
   * RUNNING under its owner id, waiting at most `timeoutMs`. Re-reads each run first: a run someone
   * else ended keeps its status; a run another owner holds, or one merely adopted, is only flushed.
   */
  async closeAll(opts: CloseAllOptions = {}): Promise<CloseAllResult> {
    const handles = this.list();
    const result: CloseAllResult = { closed: 0, released: 0, failed: 0 };
    if (!handles.length) return result;
    const all = Promise.allSettled(
      handles.map((h) =>
        this.closeOne(h, opts).then((outcome) => {
          result[outcome]++;
          this.untrack(h);
        }),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, opts.timeoutMs ?? 10_000);
    });
    await Promise.race([all, timeout]);
    clearTimeout(timer);
    result.failed = handles.length - result.closed - result.released;
    return result;
  }

  private async closeOne(handle: RunHandle, opts: CloseAllOptions): Promise<CloseOutcome> {
    const entry = this.entries.get(handle);
    if (!entry || handle.status !== 'RUNNING') return 'released';
    const got = await ok(
      entry.client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: handle.runId } } }),
    );
    const status = got.run?.info?.status;
    if (status !== 'RUNNING') {
      // Closed by someone else (the reaper, the agent through another server, a superseding
      // attempt): forget it without writing, so their status and closed_by stand.
      handle.detach(isTerminal(status) ? status : 'KILLED');
      return 'released';
    }
    const owner = got.run?.data?.tags?.find((t) => t.key === RW_TAGS.owner)?.value;
    if (!entry.owner || owner !== entry.owner) {
      // Not ours to end: adopted, or taken over. What we logged to it is still sent.
      await handle.flush();
      return 'released';
    }
    try {
      await handle.end(opts.status ?? 'KILLED', {
        reason: opts.reason ?? 'process shutting down',
        closedBy: opts.closedBy ?? 'signal',
      });
    } catch (err) {
      // The run was closed between our read and our end (the handle noticed): not ours any more.
      if (err instanceof RunClosedError) return 'released';
      throw err;
    }
    return 'closed';
  }

  /**
   * SIGINT/SIGTERM handlers (once per registry) that close this registry's runs. When runwarden's
   * handlers are the only ones for the signal, the last to finish exits the process (128 + signal
   * number), as Node would have; otherwise the application's own handlers decide when to exit.
   * Returns a function that removes the handlers.
   */
  installSignalHandlers(opts: { timeoutMs?: number } = {}): () => void {
    if (this.uninstallSignals) return this.uninstallSignals;
    const installed: [NodeJS.Signals, MarkedListener][] = [];
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const state: { done?: Promise<unknown> } = {};
      const listener: MarkedListener = () => {
        state.done = this.closeAll({
          reason: `process received ${signal}`,
          closedBy: 'signal',
          timeoutMs: opts.timeoutMs,
        });
        void state.done.finally(async () => {
          const listeners = process.listeners(signal) as MarkedListener[];
          if (listeners.some((l) => !l[RUNWARDEN_LISTENER])) return;
          await Promise.allSettled(listeners.map((l) => l[RUNWARDEN_LISTENER]?.done));
          process.exit(SIGNAL_EXIT[signal]);
        });
      };
      listener[RUNWARDEN_LISTENER] = state;
      // Many concurrent single-run registries each add a listener: make room instead of warning.
      if (process.listenerCount(signal) >= process.getMaxListeners() && process.getMaxListeners() > 0)
        process.setMaxListeners(process.getMaxListeners() + 1);
      process.on(signal, listener);
      installed.push([signal, listener]);
    }
    this.uninstallSignals = () => {
      for (const [signal, listener] of installed) process.removeListener(signal, listener);
      this.uninstallSignals = undefined;
    };
    return this.uninstallSignals;
  }
}

function isTerminal(status: string | undefined): status is TerminalStatus {
  return status === 'FINISHED' || status === 'FAILED' || status === 'KILLED';
}
