/**
 * The lease as a fence: given a run as MLflow returns it, decide whether the holder of a handle
 * still owns it. A run is lost when it is no longer RUNNING, when someone started closing it
 * (`runwarden.closed_by` is written before the status), or when `runwarden.owner` names another
 * holder (a superseding attempt, an adopting process). MLflow has no compare-and-set, so this is a
 * read: a close that lands between the read and the holder's next write is not seen until the
 * next read.
 */
import { RunClosedError } from '../errors/index.js';
import type { Run } from '../mlflow/client.js';
import { RW_TAGS } from './tags.js';

export interface RunLoss {
  /** MLflow's status of the run when it was read. */
  status: string;
  /** Who closed it (`runwarden.closed_by`) or, for a take-over, the new owner. */
  closedBy?: string;
  closeReason?: string;
}

/** Why the run is no longer `owner`'s, or undefined while it still is. */
export function runLoss(run: Run | undefined, owner: string | undefined): RunLoss | undefined {
  const status = run?.info?.status ?? 'UNKNOWN';
  const tags = new Map((run?.data?.tags ?? []).map((t) => [t.key ?? '', t.value ?? '']));
  const closedBy = tags.get(RW_TAGS.closedBy);
  const closeReason = tags.get(RW_TAGS.closeReason);
  if (status !== 'RUNNING' || closedBy) return { status, closedBy, closeReason };
  const holder = tags.get(RW_TAGS.owner);
  if (owner && holder && holder !== owner) {
    return { status, closedBy: holder, closeReason: `taken over by ${holder}` };
  }
  return undefined;
}

/** The error a fenced handle answers every write with, naming who closed the run and why. */
export function lostRunError(runId: string, loss: RunLoss, unsent: number): RunClosedError {
  const who = loss.closedBy ? `, closed by ${loss.closedBy}` : '';
  const why = loss.closeReason ? `: ${loss.closeReason}` : '';
  const lost = unsent ? `; ${unsent} buffered metric points were not stored` : '';
  return new RunClosedError(runId, `${loss.status}${who}${why}${lost}`, {
    closedBy: loss.closedBy,
    closeReason: loss.closeReason,
  });
}
