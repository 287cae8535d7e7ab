// Open-run registries (msw-backed MLflow): one per runtime, never shared; closing ends only the runs
// a registry owns and that are still RUNNING under its owner; a run started without a registry
// removes its signal handlers when it ends.
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMlflowClient } from '../../src/mlflow/client.js';
import { OpenRunRegistry, uniqueOwnerId } from '../../src/tracking/open-runs.js';
import { startRun } from '../../src/tracking/start-run.js';
import { BASE, FakeMlflow } from './mcp/harness.js';

const server = setupServer();
let fake: FakeMlflow;
const client = () => createMlflowClient({ trackingUri: BASE, retry: { maxRetries: 0 } });

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  fake = new FakeMlflow();
  server.use(...fake.handlers());
});
afterEach(() => server.resetHandlers());

describe('OpenRunRegistry', () => {
  it('uniqueOwnerId: two runtimes with the same configured owner get different ids that keep it', () => {
    const a = uniqueOwnerId('mcp', 'me@host:1');
    const b = uniqueOwnerId('mcp', 'me@host:1');
    expect(a).toMatch(/^mcp:me@host:1:[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
  });

  it("closeAll: two registries in one process end only their own runs, never the other's", async () => {
    const experimentId = fake.addExperiment('e').experiment_id;
    const mine = new OpenRunRegistry();
    const theirs = new OpenRunRegistry();
    const a = await startRun(client(), { experimentId, owner: uniqueOwnerId('x', 'o'), registry: mine });
    const b = await startRun(client(), { experimentId, owner: uniqueOwnerId('x', 'o'), registry: theirs });
    expect(await mine.closeAll({ reason: 'stopping' })).toEqual({ closed: 1, released: 0, failed: 0 });
    expect(fake.runs.get(a.runId)!.info.status).toBe('KILLED');
    expect(fake.runs.get(b.runId)!.info.status).toBe('RUNNING');
    expect(mine.list()).toEqual([]);
    expect(theirs.list()).toEqual([b]);
    await b.end();
  });

  it('closeAll: a run someone else ended FINISHED is released without a write, and keeps its status', async () => {
    const experimentId = fake.addExperiment('e').experiment_id;
    const registry = new OpenRunRegistry();
    const h = await startRun(client(), { experimentId, registry });
    fake.runs.get(h.runId)!.info.status = 'FINISHED';
    const updates = fake.bodies('runs/update').length;
    expect(await registry.closeAll()).toEqual({ closed: 0, released: 1, failed: 0 });
    expect(fake.bodies('runs/update').length).toBe(updates);
    expect(fake.runs.get(h.runId)!.info.status).toBe('FINISHED');
  });

  it('startRun without a registry: its SIGINT/SIGTERM handlers are installed while the run is open and removed when it ends', async () => {
    const experimentId = fake.addExperiment('e').experiment_id;
    const before = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
    const h = await startRun(client(), { experimentId });
    expect([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]).toEqual([
      before[0]! + 1,
      before[1]! + 1,
    ]);
    await h.end();
    expect([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]).toEqual(before);
  });

  it('startRun with a registry installs no handlers of its own: the registry owner decides', async () => {
    const experimentId = fake.addExperiment('e').experiment_id;
    const before = process.listenerCount('SIGTERM');
    const registry = new OpenRunRegistry();
    const h = await startRun(client(), { experimentId, registry });
    expect(process.listenerCount('SIGTERM')).toBe(before);
    const uninstall = registry.installSignalHandlers();
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    uninstall();
    expect(process.listenerCount('SIGTERM')).toBe(before);
    await h.end();
  });
});
