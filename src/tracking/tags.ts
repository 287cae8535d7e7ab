/**
 * Tag keys: MLflow's system tags (set the way the Python client sets them) and the `runwarden.*`
 * tags we own. These names are a contract: the reaper, the UI and other tools read them.
 */
export const MLFLOW_TAGS = {
  runName: 'mlflow.runName',
  user: 'mlflow.user',
  sourceName: 'mlflow.source.name',
  sourceType: 'mlflow.source.type',
  note: 'mlflow.note.content',
  parentRunId: 'mlflow.parentRunId',
} as const;

export const RW_TAGS = {
  taskId: 'runwarden.task_id',
  attempt: 'runwarden.attempt',
  /** Who holds the run (`user@host:pid`, or a server/worker id). */
  owner: 'runwarden.owner',
  /** Epoch ms after which the reaper may close the run. */
  leaseExpiresAt: 'runwarden.lease_expires_at',
  /** Epoch ms of the last renewal. */
  heartbeatAt: 'runwarden.heartbeat_at',
  /** Status the reaper gives the run when its lease expires (FAILED by default, KILLED for agent runs). */
  leaseExpiryStatus: 'runwarden.lease_expiry_status',
  /** Added to the reaper's close reason when the lease expires (e.g. "the MCP client never called end_run"). */
  expiryNote: 'runwarden.expiry_note',
  /** Set when the owner asked for cancellation: an expired lease then ends KILLED. */
  cancelRequested: 'runwarden.cancel_requested',
  configHash: 'runwarden.config_hash',
  /** Who ended the run: `owner`, `reaper`, `signal`. */
  closedBy: 'runwarden.closed_by',
  closeReason: 'runwarden.close_reason',
  /** Client-generated id of the create request, so a retried create finds the earlier attempt. */
  requestId: 'runwarden.request_id',
  /** Error class/code when the run failed. */
  error: 'runwarden.error',
  /** Comma-separated param keys whose values were too long and were truncated (full values in artifacts). */
  truncatedParams: 'runwarden.truncated_params',
  /** On a model version: the alias this version was registered for. */
  aliasIntent: 'runwarden.alias_intent',
} as const;

export type TerminalStatus = 'FINISHED' | 'FAILED' | 'KILLED';
