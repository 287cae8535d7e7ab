// Idempotent creates against the real MLflow with the fault between them: a runs/create (or a
// model-versions/create) held back by the fault proxy longer than the client's timeout still
// lands, after the caller has its run (version). The final sweep (past the create's deadline) must
// leave exactly one live run with the request id, the late duplicate closed KILLED with the reason
// and deleted, and no late version (its alias put back), as MLflow's Python client sees.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMlflowClient, getOrCreateExperiment, registerModel, startRun } from '../../src/index.js';
import { ok } from '../../src/mlflow/client.js';
import { settleAlias } from '../../src/tracking/models.js';
import type { CreateSweepOutcome } from '../../src/tracking/run-create.js';
import type { VersionSweepOutcome } from '../../src/tracking/version-create.js';
import { testClient, uniqueName } from '../support/clients.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { pyGetRun, runPythonMlflow } from '../support/python.js';
import { waitFor } from '../support/tasks.js';

const mlflowUrl = inject('mlflowUrl');
const direct = testClient(mlflowUrl);
const REQUEST_ID_TAG = 'runwarden.request_id';

let proxy: FaultProxy;
beforeAll(async () => {
  proxy = await startFaultProxy(mlflowUrl);
});
afterAll(async () => {
  await proxy?.close();
});

interface PyRequestRuns {
  active: { run_id: string; status: string }[];
  all: { run_id: string; status: string; lifecycle_stage: string; tags: Record<string, string> }[];
}

/** Runs carrying `requestId`, read with MLflow's Python client (active only, and all). */
function pyRunsWithRequestId(experimentId: string, requestId: string): Promise<PyRequestRuns> {
  return runPythonMlflow<PyRequestRuns>(
    `import json, sys
from mlflow import MlflowClient
from mlflow.entities import ViewType
c = MlflowClient()
f = "tags.\`${REQUEST_ID_TAG}\` = '" + sys.argv[2] + "'"
def rows(view):
    return [{"run_id": r.info.run_id, "status": r.info.status, "lifecycle_stage": r.info.lifecycle_stage,
             "tags": {k: v for k, v in r.data.tags.items() if k.startswith("runwarden.")}}
            for r in c.search_runs([sys.argv[1]], filter_string=f, run_view_type=view)]
print(json.dumps({"active": rows(ViewType.ACTIVE_ONLY), "all": rows(ViewType.ALL)}))`,
    { trackingUri: mlflowUrl, args: [experimentId, requestId] },
  );
}

/** How many runs (live or deleted) carry `requestId`, read straight from MLflow (for polling). */
async function allWithRequestId(experimentId: string, requestId: string): Promise<number> {
  const res = await ok(
    direct.api.POST('/api/2.0/mlflow/runs/search', {
      body: {
        experiment_ids: [experimentId],
        filter: `tags.\`${REQUEST_ID_TAG}\` = '${requestId}'`,
        run_view_type: 'ALL',
      },
    }),
  );
  return res.runs?.length ?? 0;
}

/** `promise`, or an error naming `what` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** A client through the proxy whose creates time out after `timeoutMs`. */
const proxiedClient = (timeoutMs: number, maxRetries = 5) =>
  createMlflowClient({ trackingUri: proxy.url, timeoutMs, retry: { baseDelayMs: 50, maxRetries } });

/**
 * Hold the next connection (the create) until `started` has settled, then let it land; everything
 * after it passes untouched. So the held create lands after the call returned, however long it took.
 */
async function holdFirstConnectionUntilSettled<T>(started: () => Promise<T>): Promise<T> {
  let settled: () => void = () => undefined;
  const until = new Promise<void>((resolve) => {
    settled = resolve;
  });
  const before = proxy.stats().accepted;
  await proxy.setMode('delay', { until, outliveClient: true });
  const pending = started();
  pending.then(settled, settled);
  await waitFor('the create to reach the proxy', () => proxy.stats().accepted > before, { intervalMs: 20 });
  await proxy.setMode('pass');
  return pending;
}

describe('startRun: a create that times out and lands late', () => {
  it('startRun: when runs/create times out but lands after the retry, the final sweep leaves exactly one live run with its request id, the late one closed KILLED and deleted', async () => {
    const { experimentId } = await getOrCreateExperiment(direct, uniqueName('late-create'));
    let sweepOutcome: (o: CreateSweepOutcome) => void = () => undefined;
    const swept = new Promise<CreateSweepOutcome>((resolve) => {
      sweepOutcome = resolve;
    });
    const t0 = Date.now();
    // Timeout 1 s, create held until startRun has returned: the retry creates the caller's run,
    // startRun returns, and only then the held create lands; the final sweep is due 1 s + 14 s
    // after the held create was sent (startRun takes 1–5 s on a loaded 2-core machine).
    const handle = await holdFirstConnectionUntilSettled(() =>
      startRun(proxiedClient(1_000), {
        experimentId,
        runName: 'late-create',
        handleSignals: false,
        lateCreateMarginMs: 14_000,
        onCreateSweep: (o) => sweepOutcome(o),
      }),
    );
    const startMs = Date.now() - t0;
    const requestId = (await pyGetRun(mlflowUrl, handle.runId)).tags[REQUEST_ID_TAG]!;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);

    // The late create really landed: two runs carry the request id (the scenario is reproduced).
    await waitFor(
      'the held create to land',
      async () => (await allWithRequestId(experimentId, requestId)) === 2,
      {
        timeoutMs: 30_000,
      },
    );
    const outcome = await within(swept, 40_000, 'the final duplicate sweep');
    const sweepMs = Date.now() - t0;
    expect(outcome.error).toBeUndefined();
    expect(outcome.keptRunId).toBe(handle.runId);
    expect(outcome.removedRunIds).toHaveLength(1);
    await handle.end();

    const seen = await pyRunsWithRequestId(experimentId, requestId);
    expect(seen.active.map((r) => [r.run_id, r.status])).toEqual([[handle.runId, 'FINISHED']]);
    const late = seen.all.find((r) => r.run_id !== handle.runId)!;
    expect(late.run_id).toBe(outcome.removedRunIds[0]);
    expect(late.status).toBe('KILLED');
    expect(late.lifecycle_stage).toBe('deleted');
    expect(late.tags['runwarden.closed_by']).toBe('runwarden:create-sweep');
    expect(late.tags['runwarden.close_reason']).toContain(`duplicate of run ${handle.runId}`);
    console.log(`late create: start took ${startMs} ms, sweep done at ${sweepMs} ms, removed ${late.run_id}`);
  });

  it('startRun: when every create times out and the start fails, the late-landing runs are closed KILLED and deleted, none left RUNNING', async () => {
    const { experimentId } = await getOrCreateExperiment(direct, uniqueName('late-create-fail'));
    let sweepOutcome: (o: CreateSweepOutcome) => void = () => undefined;
    const swept = new Promise<CreateSweepOutcome>((resolve) => {
      sweepOutcome = resolve;
    });
    await proxy.setMode('delay', { delayMs: 2_000, outliveClient: true });
    const failed = await startRun(proxiedClient(500, 0), {
      experimentId,
      runName: 'never-started',
      handleSignals: false,
      lateCreateMarginMs: 5_000,
      onCreateSweep: (o) => sweepOutcome(o),
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    await proxy.setMode('pass');
    expect(failed).toMatchObject({ code: 'MLFLOW_UNREACHABLE' });

    const outcome = await within(swept, 40_000, 'the final duplicate sweep');
    expect(outcome.error).toBeUndefined();
    expect(outcome.keptRunId).toBeUndefined();
    expect(outcome.removedRunIds).toHaveLength(1);
    const seen = await pyRunsWithRequestId(experimentId, outcome.requestId);
    expect(seen.active).toEqual([]);
    expect(seen.all.map((r) => [r.status, r.lifecycle_stage])).toEqual([['KILLED', 'deleted']]);
  });
});

/** Versions of `name` and its champion alias, read with MLflow's Python client. */
function pyModel(name: string): Promise<{ versions: string[]; champion: string | null }> {
  return runPythonMlflow(
    `import json, sys
from mlflow import MlflowClient
c = MlflowClient()
name = sys.argv[1]
versions = sorted(v.version for v in c.search_model_versions("name = '" + name + "'"))
print(json.dumps({"versions": versions, "champion": c.get_registered_model(name).aliases.get("champion")}))`,
    { trackingUri: mlflowUrl, args: [name] },
  );
}

/** A FINISHED run with a `model` folder (registerModel checks it exists). */
async function runWithModel(experimentId: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rw-late-model-'));
  await writeFile(join(dir, 'model.txt'), 'weights');
  const run = await startRun(direct, { experimentId, handleSignals: false });
  await run.logArtifact(dir, 'model');
  await run.end();
  return run.runId;
}

const CREATE_VERSION = /^POST \/api\/2\.0\/mlflow\/model-versions\/create /;

describe('registerModel: a version create that times out and lands late', () => {
  it('registerModel: when model-versions/create times out but lands after the call returned, the final sweep deletes the late version and puts back the alias it took', async () => {
    const { experimentId } = await getOrCreateExperiment(direct, uniqueName('late-version'));
    const runId = await runWithModel(experimentId);
    const name = uniqueName('late-version-model');
    let sweepOutcome: (o: VersionSweepOutcome) => void = () => undefined;
    const swept = new Promise<VersionSweepOutcome>((resolve) => {
      sweepOutcome = resolve;
    });
    // Hold the first version create until registerModel has returned; the retry's create passes.
    let settled: () => void = () => undefined;
    const until = new Promise<void>((resolve) => {
      settled = resolve;
    });
    await proxy.setMode('delay', { onlyRequests: CREATE_VERSION, until, outliveClient: true });
    const pending = registerModel(proxiedClient(1_000), {
      runId,
      artifactPath: 'model',
      name,
      alias: 'champion',
      lateCreateMarginMs: 14_000,
      onCreateSweep: (o) => sweepOutcome(o),
    });
    pending.then(settled, settled);
    await waitFor('the first version create to be held', () => proxy.stats().held >= 1, { intervalMs: 20 });
    await proxy.setMode('pass');
    const result = await pending;
    expect(result.version).toBe('1');

    // The held create lands as version 2; another registration's alias settling would move
    // `champion` onto it (the highest version registered for the alias), as this call does.
    await waitFor('the held create to land', async () => (await pyModel(name)).versions.length === 2, {
      timeoutMs: 30_000,
    });
    expect(await settleAlias(direct, name, 'champion')).toBe('2');

    const outcome = await within(swept, 40_000, 'the final duplicate sweep');
    expect(outcome.error).toBeUndefined();
    expect(outcome.keptVersion).toBe('1');
    expect(outcome.removedVersions).toEqual(['2']);
    expect(outcome.resettledAlias).toBe('champion');
    expect(await pyModel(name)).toEqual({ versions: ['1'], champion: '1' });
  });

  it('registerModel: when every version create times out and the call fails, the late-landing version is deleted', async () => {
    const { experimentId } = await getOrCreateExperiment(direct, uniqueName('late-version-fail'));
    const runId = await runWithModel(experimentId);
    const name = uniqueName('late-version-fail-model');
    let sweepOutcome: (o: VersionSweepOutcome) => void = () => undefined;
    const swept = new Promise<VersionSweepOutcome>((resolve) => {
      sweepOutcome = resolve;
    });
    await proxy.setMode('delay', { onlyRequests: CREATE_VERSION, delayMs: 2_000, outliveClient: true });
    const failed = await registerModel(proxiedClient(500, 0), {
      runId,
      artifactPath: 'model',
      name,
      alias: 'champion',
      lateCreateMarginMs: 5_000,
      onCreateSweep: (o) => sweepOutcome(o),
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    await proxy.setMode('pass');
    expect(failed).toMatchObject({ code: 'MLFLOW_UNREACHABLE' });

    const outcome = await within(swept, 40_000, 'the final duplicate sweep');
    expect(outcome.error).toBeUndefined();
    expect(outcome.keptVersion).toBeUndefined();
    expect(outcome.removedVersions).toEqual(['1']);
    expect(await pyModel(name)).toEqual({ versions: [], champion: null });
  });
});
