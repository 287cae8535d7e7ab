// start_run: refusals before anything is created, unreachable MLflow, and the ownership and lease tags it sets.
import { HttpResponse, http } from 'msw';
import { describe, expect, it, vi } from 'vitest';
import { BASE, tagsOf } from '../harness.js';
import {
  failed,
  fake,
  ok,
  open,
  s,
  seedRun,
  server,
  startRun,
  useToolSessions,
  writes,
} from '../tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it('start_run: when MLflow is unreachable the text says so and how to recover', async () => {
    server.use(http.all(`${BASE}/*`, () => HttpResponse.error()));
    const text = failed(await s.call('start_run', { experiment_name: 'e' }));
    expect(text).toContain('MLflow tracking server unreachable');
    expect(text).toContain('Retry later');
  });

  it('start_run: a tag under runwarden. is refused before anything is created', async () => {
    const before = writes();
    const text = failed(
      await s.call('start_run', {
        experiment_name: 'reserved-tags',
        tags: { 'runwarden.cancel_requested': 'true' },
      }),
    );
    expect(text).toContain(
      "tags.runwarden.cancel_requested: keys starting with 'runwarden.' are managed by runwarden",
    );
    expect(writes()).toBe(before);
    expect([...fake.experiments.values()].some((e) => e.name === 'reserved-tags')).toBe(false);
  });

  it.each([
    ['both', { experiment_id: '1', experiment_name: 'e' }],
    ['neither', {}],
  ])('start_run: %s of experiment_id and experiment_name is refused before any request', async (_, args) => {
    const text = failed(await s.call('start_run', args));
    expect(text).toContain('experiment_id: give exactly one of experiment_id or experiment_name');
    expect(fake.requests).toEqual([]);
  });

  it('start_run: an unknown experiment_id is RESOURCE_DOES_NOT_EXIST with a pointer to search_experiments', async () => {
    const text = failed(await s.call('start_run', { experiment_id: '42' }));
    expect(text).toContain('No Experiment with id=42 exists (MLflow RESOURCE_DOES_NOT_EXIST');
    expect(text).toContain('search_experiments');
  });
});

describe('leases and run tags', () => {
  it('start_run: tags the run with owner mcp:test, lease expiry KILLED, the expiry note, the MCP session and the lease from lease_seconds', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.UTC(2030, 0, 1);
    vi.setSystemTime(t0);
    const session = await open({}, 'session-abc');
    const res = await session.call('start_run', {
      experiment_name: 'e',
      run_name: 'r1',
      description: 'trying GRU',
      tags: { dataset: 'v3' },
      lease_seconds: 120,
    });
    const out = ok(res, 'start_run', session);
    expect(out).toMatchObject({ lease_seconds: 120, lease_expires_at: new Date(t0 + 120_000).toISOString() });
    const [create] = fake.bodies<{
      tags: { key: string; value: string }[];
      run_name: string;
      start_time: number;
    }>('runs/create');
    expect(create!.run_name).toBe('r1');
    expect(create!.start_time).toBe(t0);
    expect(tagsOf(create!)).toMatchObject({
      dataset: 'v3',
      'mlflow.runName': 'r1',
      'mlflow.note.content': 'trying GRU',
      'mlflow.source.name': 'runwarden-mcp',
      'mlflow.source.type': 'LOCAL',
      'runwarden.owner': 'mcp:test',
      'runwarden.lease_expiry_status': 'KILLED',
      'runwarden.expiry_note': 'the MCP client never called end_run',
      'runwarden.mcp_session': 'session-abc',
      'runwarden.lease_expires_at': String(t0 + 120_000),
      'runwarden.heartbeat_at': String(t0),
    });
    expect(tagsOf(create!)['runwarden.request_id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('start_run: without lease_seconds the lease is the server setting', async () => {
    const session = await open({ leaseSeconds: 300 });
    const out = ok(await session.call('start_run', { experiment_name: 'e' }), 'start_run', session);
    expect(out.lease_seconds).toBe(300);
    const [create] = fake.bodies<{ tags: { key: string; value: string }[]; start_time: number }>(
      'runs/create',
    );
    expect(Number(tagsOf(create!)['runwarden.lease_expires_at']) - create!.start_time).toBe(300_000);
  });

  it('start_run: parent_run_id nests the run under its parent', async () => {
    const parent = seedRun({}, 'e');
    await startRun({ experiment_name: 'e', parent_run_id: parent.info.run_id });
    const [create] = fake.bodies<{ tags: { key: string; value: string }[] }>('runs/create');
    expect(tagsOf(create!)['mlflow.parentRunId']).toBe(parent.info.run_id);
  });

  it('start_run: a tag key under runwarden. cannot override the ownership tags: it is refused and no run is created', async () => {
    const text = failed(
      await s.call('start_run', {
        experiment_name: 'weekly-cases/gru',
        tags: { 'runwarden.owner': 'someone-else' },
      }),
    );
    expect(text).toContain('tags.runwarden.owner');
    expect(fake.bodies('runs/create')).toHaveLength(0);
  });
});
