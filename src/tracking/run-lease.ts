/**
 * The lease a run handle holds on its run, and its fence. Every write renews the lease
 * (`runwarden.lease_expires_at`, `runwarden.heartbeat_at`) when a renewal is due (at most once a
 * second); a heartbeat covers quiet periods. Each beat first reads the run: if it was closed or
 * taken over by someone else (fence.ts), the handle is told and the beat renews nothing. A read that
 * shows the closing tags the handle itself sent (a retried end()) is not a loss.
 */
import { type MlflowClient, ok } from '../mlflow/client.js';
import type { KeyValue } from './batching.js';
import { type RunLoss, runLoss } from './fence.js';
import { RW_TAGS, type TerminalStatus } from './tags.js';

/** Renew-on-touch at most this often; the heartbeat covers quiet periods. */
const RENEW_THROTTLE_MS = 1_000;

export interface RunLeaseInit {
  client: MlflowClient;
  runId: string;
  leaseMs: number;
  /** Heartbeat interval; 0: none (the lease lives only as long as callers keep touching the run). */
  heartbeatMs: number;
  /** The `runwarden.owner` the handle holds the run as; another owner on the run means it was taken over. */
  owner?: string;
  /** Send one log-batch request with these tags. */
  send: (tags: KeyValue[]) => Promise<void>;
  /** True while the handle holds the run (RUNNING, not detached); renewals and beats stop after. */
  holding: () => boolean;
  /** A heartbeat found the run closed or taken over by someone else. */
  onLost: (loss: RunLoss) => void;
}

/** What a read of the run showed: undefined while it is still the handle's. */
export type RunRead = { loss: RunLoss; ownClose: boolean } | undefined;

export class RunLease {
  private lastRenewedAt: number;
  private readonly heartbeat?: NodeJS.Timeout;
  /** The close the handle sent, so a retried end() recognises its own closing tags. */
  sentClose?: { closedBy: string; status: TerminalStatus };

  constructor(private readonly init: RunLeaseInit) {
    this.lastRenewedAt = Date.now();
    // heartbeatMs 0: no heartbeat, the lease lives only as long as callers keep touching the run
    // (runs started for MCP clients, so a client that goes away lets its run expire).
    if (init.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => {
        this.beat().catch((err) => init.client.logger?.warn({ err, runId: init.runId }, 'heartbeat failed'));
      }, init.heartbeatMs);
      this.heartbeat.unref();
    }
  }

  private leaseTags(now = Date.now()): KeyValue[] {
    return [
      { key: RW_TAGS.leaseExpiresAt, value: String(now + this.init.leaseMs) },
      { key: RW_TAGS.heartbeatAt, value: String(now) },
    ];
  }

  /** Lease tags when a renewal is due, else none (renew-on-touch, throttled). */
  touchTags(): KeyValue[] {
    const now = Date.now();
    if (now - this.lastRenewedAt < RENEW_THROTTLE_MS) return [];
    this.lastRenewedAt = now;
    return this.leaseTags(now);
  }

  /** Extend the lease now (while the handle holds the run). */
  async renew(): Promise<void> {
    if (!this.init.holding()) return;
    const now = Date.now();
    this.lastRenewedAt = now;
    await this.init.send(this.leaseTags(now));
  }

  /** Read the run: why it is no longer the handle's, and whether that is the handle's own close. */
  async read(): Promise<RunRead> {
    const res = await ok(
      this.init.client.api.GET('/api/2.0/mlflow/runs/get', {
        params: { query: { run_id: this.init.runId } },
      }),
    );
    const loss = runLoss(res.run, this.init.owner);
    return loss && { loss, ownClose: this.isOwnClose(loss) };
  }

  /** Stop the heartbeat. */
  stop(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
  }

  /** One heartbeat: read the run; if it is no longer ours, say so; otherwise renew the lease. */
  private async beat(): Promise<void> {
    if (!this.init.holding()) return;
    const read = await this.read();
    if (read && !read.ownClose) {
      this.init.onLost(read.loss);
      return;
    }
    await this.renew();
  }

  /** A read that shows the closing tags the handle itself sent (a retried end()). */
  private isOwnClose(loss: RunLoss): boolean {
    const sent = this.sentClose;
    return (
      !!sent && loss.closedBy === sent.closedBy && (loss.status === 'RUNNING' || loss.status === sent.status)
    );
  }
}
