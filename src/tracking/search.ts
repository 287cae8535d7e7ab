/**
 * Reading back: run search with full pagination, metric history with pagination, the best run by
 * a metric, and a side-by-side comparison of runs' params and metrics.
 */
import { ValidationError } from '../errors/index.js';
import { type Metric, type MlflowClient, ok, type Run } from '../mlflow/client.js';

export interface SearchRunsOptions {
  experimentIds: string[];
  /** MLflow filter, e.g. `metrics.rmse < 1 AND params.model = 'gru'` (AND only). */
  filter?: string;
  /** e.g. `['metrics.rmse ASC']`. */
  orderBy?: string[];
  viewType?: 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';
  /** Stop after this many runs (default: all). */
  limit?: number;
  /** Page size (default 1000, MLflow's maximum is 50,000). */
  pageSize?: number;
}

/** Every run matching, page after page. */
export async function* iterateRuns(client: MlflowClient, opts: SearchRunsOptions): AsyncGenerator<Run> {
  if (!opts.experimentIds?.length)
    throw new ValidationError('experimentIds', 'give at least one experiment id');
  let pageToken: string | undefined;
  let seen = 0;
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  do {
    const page = await ok(
      client.api.POST('/api/2.0/mlflow/runs/search', {
        body: {
          experiment_ids: opts.experimentIds,
          filter: opts.filter,
          order_by: opts.orderBy,
          run_view_type: opts.viewType ?? 'ACTIVE_ONLY',
          max_results: Math.min(opts.pageSize ?? 1000, Math.max(1, limit - seen)),
          page_token: pageToken,
        },
      }),
    );
    for (const run of page.runs ?? []) {
      if (seen++ >= limit) return;
      yield run;
    }
    pageToken = page.next_page_token;
  } while (pageToken && seen < limit);
}

export async function searchRuns(client: MlflowClient, opts: SearchRunsOptions): Promise<Run[]> {
  const out: Run[] = [];
  for await (const r of iterateRuns(client, opts)) out.push(r);
  return out;
}

/**
 * History of one metric, in step order (then timestamp), across all pages: the whole of it, or the
 * first `maxPoints` MLflow pages out. Unknown run → RESOURCE_DOES_NOT_EXIST.
 */
export async function getMetricHistory(
  client: MlflowClient,
  runId: string,
  key: string,
  opts: { pageSize?: number; maxPoints?: number } = {},
): Promise<Metric[]> {
  const out: Metric[] = [];
  const max = opts.maxPoints ?? Number.POSITIVE_INFINITY;
  let pageToken: string | undefined;
  do {
    const page = await ok(
      client.api.GET('/api/2.0/mlflow/metrics/get-history', {
        params: {
          query: {
            run_id: runId,
            metric_key: key,
            max_results: Math.min(opts.pageSize ?? 25_000, max - out.length),
            page_token: pageToken,
          },
        },
      }),
    );
    // Not push(...page): a server that ignores max_results sends the whole history in one page.
    for (const m of page.metrics ?? []) {
      if (out.length >= max) break;
      out.push(m);
    }
    pageToken = page.next_page_token;
  } while (pageToken && out.length < max);
  // MLflow answers an empty history for unknown runs too; tell the two apart.
  if (!out.length)
    await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: runId } } }));
  return out.sort((a, b) => (a.step ?? 0) - (b.step ?? 0) || (a.timestamp ?? 0) - (b.timestamp ?? 0));
}

const metricOf = (run: Run, key: string) => run.data?.metrics?.find((m) => m.key === key)?.value;

/** The run with the lowest (`min`) or highest (`max`) latest value of `metric`; undefined if none has it. */
export async function bestRun(
  client: MlflowClient,
  opts: { experimentIds: string[]; metric: string; direction: 'min' | 'max'; filter?: string },
): Promise<{ run: Run; value: number } | undefined> {
  const quoted = `metrics.\`${opts.metric}\``;
  for await (const run of iterateRuns(client, {
    experimentIds: opts.experimentIds,
    filter: opts.filter,
    orderBy: [`${quoted} ${opts.direction === 'min' ? 'ASC' : 'DESC'}`],
    pageSize: 100,
  })) {
    const v = metricOf(run, opts.metric);
    if (typeof v === 'number' && !Number.isNaN(v)) return { run, value: v };
  }
  return undefined;
}

export interface RunComparison {
  runs: { runId: string; runName: string; status: string; experimentId: string }[];
  /** key → runId → value (absent when the run lacks it). */
  params: Record<string, Record<string, string>>;
  metrics: Record<string, Record<string, number | string>>;
  /** Param keys whose values differ between runs (or are missing from some). */
  differingParams: string[];
}

/** Params and latest metrics of several runs side by side. */
export async function compareRuns(client: MlflowClient, runIds: string[]): Promise<RunComparison> {
  if (runIds.length < 1) throw new ValidationError('runIds', 'give at least one run id');
  const runs = await Promise.all(
    runIds.map(
      async (id) =>
        (await ok(client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id: id } } }))).run,
    ),
  );
  const out: RunComparison = { runs: [], params: {}, metrics: {}, differingParams: [] };
  for (const run of runs) {
    const id = run.info?.run_id ?? '';
    out.runs.push({
      runId: id,
      runName: run.info?.run_name ?? '',
      status: run.info?.status ?? '',
      experimentId: run.info?.experiment_id ?? '',
    });
    for (const p of run.data?.params ?? []) {
      const row = out.params[p.key ?? ''] ?? {};
      row[id] = p.value ?? '';
      out.params[p.key ?? ''] = row;
    }
    for (const m of run.data?.metrics ?? []) {
      const row = out.metrics[m.key ?? ''] ?? {};
      row[id] = m.value ?? Number.NaN;
      out.metrics[m.key ?? ''] = row;
    }
  }
  out.differingParams = Object.entries(out.params)
    .filter(
      ([, byRun]) => Object.keys(byRun).length !== runs.length || new Set(Object.values(byRun)).size > 1,
    )
    .map(([k]) => k)
    .sort();
  return out;
}
