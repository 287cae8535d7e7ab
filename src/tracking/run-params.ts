/**
 * A run's params, write-once as MLflow keeps them: the values already on the run, checks before
 * anything is sent (same value again is a no-op, another value is a ParamConflictError), values
 * past MLflow's length limit truncated with the whole value stored as an artifact and the key
 * listed in `runwarden.truncated_params`, and requests of at most 100 params.
 */
import { isMlflowError, ParamConflictError, ValidationError } from '../errors/index.js';
import { uploadBytes } from '../mlflow/artifacts.js';
import { type MlflowClient, ok } from '../mlflow/client.js';
import { chunk, type KeyValue, truncate } from './batching.js';
import { RW_TAGS } from './tags.js';
import { LIMITS, validateKey } from './validation.js';

export type ParamValue = string | number | boolean;

export interface RunParamsInit {
  client: MlflowClient;
  runId: string;
  artifactUri: string;
  /** Params already on the run. */
  params?: Record<string, string>;
  /** Send one log-batch request with these params and tags (the first carries `extraTags()`). */
  send: (params: KeyValue[], tags: KeyValue[]) => Promise<void>;
  /** Tags that ride along with the first request (lease renewal, when due). */
  extraTags: () => KeyValue[];
}

export class RunParams {
  private readonly known = new Map<string, string>();
  private readonly truncated = new Set<string>();

  constructor(private readonly init: RunParamsInit) {
    for (const [k, v] of Object.entries(init.params ?? {})) this.known.set(k, v);
  }

  /** Log params. Same value again is a no-op; a different value throws ParamConflictError. */
  async log(record: Record<string, ParamValue>): Promise<void> {
    const { client, runId, artifactUri } = this.init;
    const fresh: KeyValue[] = [];
    const long: { key: string; full: string }[] = [];
    for (const [key, raw] of Object.entries(record)) {
      validateKey(`params.${key}`, key);
      if (!['string', 'number', 'boolean'].includes(typeof raw)) {
        throw new ValidationError(
          `params.${key}`,
          `value must be a string, number or boolean, got ${typeof raw}`,
        );
      }
      let value = String(raw);
      if (value.length > LIMITS.maxParamValueLength) {
        long.push({ key, full: value });
        value = truncate(value, LIMITS.maxParamValueLength);
      }
      const existing = this.known.get(key);
      if (existing === undefined) fresh.push({ key, value });
      else if (existing !== value) throw new ParamConflictError(runId, key, existing, value);
    }
    if (!fresh.length) return;
    for (const { key, full } of long) {
      await uploadBytes(client, artifactUri, `runwarden/params/${key}.txt`, full);
    }
    for (const { key } of long) this.truncated.add(key);
    const tags = long.length ? [{ key: RW_TAGS.truncatedParams, value: [...this.truncated].join(',') }] : [];
    const batches = chunk(fresh, LIMITS.maxParamsPerBatch);
    for (const [i, batch] of batches.entries()) {
      try {
        await this.init.send(batch, i === 0 ? [...tags, ...this.init.extraTags()] : []);
      } catch (err) {
        if (isMlflowError(err, 'INVALID_PARAMETER_VALUE')) await this.explainConflict(batch);
        throw err;
      }
      for (const p of batch) this.known.set(p.key, p.value);
    }
  }

  /** After MLflow refused a batch: if a key already holds another value, say which. */
  private async explainConflict(batch: KeyValue[]): Promise<void> {
    const { client, runId } = this.init;
    const res = await ok(
      client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }),
    );
    const onServer = new Map((res.run?.data?.params ?? []).map((p) => [p.key ?? '', p.value ?? '']));
    for (const p of batch) {
      const existing = onServer.get(p.key);
      if (existing !== undefined && existing !== p.value) {
        this.known.set(p.key, existing);
        throw new ParamConflictError(runId, p.key, existing, p.value);
      }
    }
  }
}
