// log_params: write-once conflicts, no-op repeats, and which runs may be written to.
import { describe, expect, it } from 'vitest';
import {
  failed,
  fake,
  logBatchesFor,
  ok,
  s,
  seedRun,
  startRun,
  useToolSessions,
  writes,
} from '../tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it('log_params: a changed value for a param this session logged is PARAM_CONFLICT naming both values, and nothing is written', async () => {
    const runId = await startRun({ params: { lr: 0.1 } });
    const before = writes();
    const text = failed(await s.call('log_params', { run_id: runId, params: { lr: 0.2 } }));
    expect(text).toContain(`param 'lr' on run ${runId} already has value '0.1'; refusing new value '0.2'`);
    expect(text).toContain('log the new value under another key, or start a new run');
    expect(writes()).toBe(before);
  });

  it('log_params: a param another writer set on the server is PARAM_CONFLICT naming the server value', async () => {
    const runId = await startRun();
    fake.runs.get(runId)!.params.set('lr', '0.5');
    const text = failed(await s.call('log_params', { run_id: runId, params: { lr: 0.2 } }));
    expect(text).toContain(`param 'lr' on run ${runId} already has value '0.5'; refusing new value '0.2'`);
  });

  it('log_params: the same value again succeeds without writing anything', async () => {
    const runId = await startRun({ params: { lr: 0.1 } });
    const before = writes();
    ok(await s.call('log_params', { run_id: runId, params: { lr: '0.1' } }), 'log_params');
    expect(writes()).toBe(before);
  });
});

describe('leases and run tags', () => {
  it("log_params: an adopted run (a script's, or another MCP server's) may be written to, but the server never ends it on shutdown", async () => {
    const run = seedRun();
    ok(await s.call('log_params', { run_id: run.info.run_id, params: { lr: 0.1 } }), 'log_params');
    expect(run.params.get('lr')).toBe('0.1');
    const mcpRun = seedRun({ tags: { 'runwarden.owner': 'mcp:restarted@h:1:0a1b2c3d' } });
    ok(await s.call('log_params', { run_id: mcpRun.info.run_id, params: { lr: 0.2 } }), 'log_params');
    expect(s.runs.openRuns.list().map((h) => h.runId)).toEqual(
      expect.arrayContaining([run.info.run_id, mcpRun.info.run_id]),
    );
    expect(await s.runs.shutdown('server stopping', 5_000)).toMatchObject({ closed: 0, released: 2 });
    expect(run.info.status).toBe('RUNNING');
    expect(mcpRun.info.status).toBe('RUNNING');
  });

  it('log_params: a run this server process does not hold (server restarted) is adopted and written to', async () => {
    const run = seedRun();
    run.params.set('lr', '0.1');
    ok(await s.call('log_params', { run_id: run.info.run_id, params: { lr: 0.1, epochs: 5 } }), 'log_params');
    expect(Object.fromEntries(run.params)).toEqual({ lr: '0.1', epochs: '5' });
    expect(logBatchesFor(run.info.run_id).map((b) => b.params)).toEqual([[{ key: 'epochs', value: '5' }]]);
  });
});
