// One successful call per tool, with the fields that matter checked; used by all-tools.test.ts, which also
// checks that these cover every listed tool.
import { expect } from 'vitest';
import { BASE, type Session } from '../harness.js';
import { artifactKey, fake, type Json, seedModel, seedRun, startRun } from '../tool-session.js';

export interface SuccessCase {
  args: (session: Session) => Promise<Json>;
  check: (structured: Json, text: string) => void;
}

/** One successful call per tool, with the fields that matter checked. */
export const successCases: Record<string, SuccessCase> = {
  get_or_create_experiment: {
    args: async () => ({ name: 'weekly-cases/gru', tags: { team: 'forecast' } }),
    check: (out, text) => {
      expect(out).toMatchObject({
        experiment_id: '1',
        created: true,
        experiment: {
          experiment_id: '1',
          name: 'weekly-cases/gru',
          tags: { team: 'forecast' },
          url: `${BASE}/#/experiments/1`,
        },
      });
      expect(text).toContain("Created experiment 'weekly-cases/gru' (id 1)");
    },
  },
  search_experiments: {
    args: async () => {
      for (const name of ['a', 'b', 'c']) fake.addExperiment(name);
      return { max_results: 2 };
    },
    check: (out, text) => {
      expect((out.experiments as Json[]).map((e) => e.name)).toEqual(['a', 'b']);
      expect(out.next_page_token).toBe('2');
      expect(text).toContain('pass next_page_token');
    },
  },
  start_run: {
    args: async () => ({ experiment_name: 'weekly-cases/gru', run_name: 'gru-1', params: { lr: 0.001 } }),
    check: (out, text) => {
      const runId = out.run_id as string;
      expect(out).toMatchObject({
        experiment_id: '1',
        experiment_created: true,
        run_name: 'gru-1',
        artifact_uri: `mlflow-artifacts:/1/${runId}/artifacts`,
        lease_seconds: 900,
        url: `${BASE}/#/experiments/1/runs/${runId}`,
      });
      const expires = Date.parse(out.lease_expires_at as string);
      expect(Math.abs(expires - (Date.now() + 900_000))).toBeLessThan(60_000);
      expect(fake.runs.get(runId)?.params.get('lr')).toBe('0.001');
      expect(text).toContain(`Started run ${runId}`);
      expect(text).toContain('end_run');
    },
  },
  log_params: {
    args: async (session) => ({
      run_id: await startRun({}, session),
      params: { lr: 0.01, optimizer: 'adam' },
    }),
    check: (out) => {
      expect(out.logged).toBe(2);
      const run = fake.runs.get(out.run_id as string)!;
      expect(Object.fromEntries(run.params)).toEqual({ lr: '0.01', optimizer: 'adam' });
    },
  },
  log_metrics: {
    args: async (session) => ({
      run_id: await startRun({}, session),
      metrics: [
        { key: 'loss', value: 0.5, step: 1 },
        { key: 'acc', value: 0.9, step: 1 },
        { key: 'loss', value: 0.4, step: 2 },
      ],
    }),
    check: (out) => {
      expect(out).toMatchObject({ logged: 3, keys: ['loss', 'acc'] });
      expect(fake.runs.get(out.run_id as string)!.history.map((m) => [m.key, m.value, m.step])).toEqual([
        ['loss', 0.5, 1],
        ['acc', 0.9, 1],
        ['loss', 0.4, 2],
      ]);
    },
  },
  set_tags: {
    args: async (session) => ({ run_id: await startRun({}, session), tags: { dataset: 'cases-v3' } }),
    check: (out) => {
      expect(out.set).toBe(1);
      expect(fake.runs.get(out.run_id as string)!.tags.get('dataset')).toBe('cases-v3');
    },
  },
  log_artifact: {
    args: async (session) => ({
      run_id: await startRun({}, session),
      content: '# summary\n',
      artifact_path: 'notes/summary.md',
    }),
    check: (out, text) => {
      expect(out).toMatchObject({ files: 1, bytes: 10, artifact_path: 'notes/summary.md' });
      const run = fake.runs.get(out.run_id as string)!;
      expect(fake.artifacts.get(artifactKey(run, 'notes/summary.md'))?.toString()).toBe('# summary\n');
      expect(text).toContain('Stored 10 bytes at notes/summary.md');
    },
  },
  end_run: {
    args: async (session) => ({
      run_id: await startRun({}, session),
      status: 'FAILED',
      note: 'diverged at epoch 3',
    }),
    check: (out, text) => {
      expect(out).toMatchObject({ status: 'FAILED', already_closed: false, closed_by: 'owner' });
      expect(out.close_reason).toBe('diverged at epoch 3');
      const run = fake.runs.get(out.run_id as string)!;
      expect(run.info.status).toBe('FAILED');
      expect(run.tags.get('runwarden.error')).toContain('diverged at epoch 3');
      expect(text).toContain('ended FAILED');
    },
  },
  get_run: {
    args: async () => {
      const run = seedRun({ run_name: 'gru-7', status: 'FINISHED', end_time: 1_900_000_000_000 });
      run.params.set('lr', '0.01');
      run.history.push(
        { key: 'rmse', value: 0.8, step: 0, timestamp: 1 },
        { key: 'rmse', value: 0.3, step: 5, timestamp: 2 },
      );
      return { run_id: run.info.run_id };
    },
    check: (out, text) => {
      expect(out).toMatchObject({
        run_name: 'gru-7',
        experiment_id: '1',
        status: 'FINISHED',
        end_time: 1_900_000_000_000,
        params: { lr: '0.01' },
        metrics: { rmse: 0.3 },
        url: `${BASE}/#/experiments/1/runs/${out.run_id}`,
      });
      expect(text).toContain('rmse=0.3');
    },
  },
  search_runs: {
    args: async () => {
      seedRun({ run_name: 'a', tags: { team: 'x' } }, 'exp-a');
      seedRun({ run_name: 'b' }, 'exp-a');
      seedRun({ run_name: 'other' }, 'exp-b');
      return {
        experiment_names: ['exp-a'],
        filter: "attributes.status = 'RUNNING'",
        order_by: ['start_time DESC'],
      };
    },
    check: (out, text) => {
      const runs = out.runs as Json[];
      expect(runs.map((r) => r.run_name)).toEqual(['a', 'b']);
      // include_tags defaults to false: only the run name tag is kept
      expect(runs[0]!.tags).toEqual({ 'mlflow.runName': 'a' });
      expect(fake.bodies<Json>('runs/search')[0]).toMatchObject({
        experiment_ids: ['1'],
        filter: "attributes.status = 'RUNNING'",
        max_results: 25,
      });
      expect(text).toContain('2 run(s)');
    },
  },
  get_metric_history: {
    args: async () => {
      const run = seedRun();
      run.history.push(
        { key: 'loss', value: 0.5, step: 2, timestamp: 3 },
        { key: 'loss', value: 0.9, step: 0, timestamp: 1 },
        { key: 'loss', value: 0.7, step: 1, timestamp: 2 },
      );
      return { run_id: run.info.run_id, key: 'loss' };
    },
    check: (out) => {
      expect(out).toMatchObject({
        key: 'loss',
        total_points: 3,
        returned_points: 3,
        downsampled: false,
        min: 0.5,
        max: 0.9,
        last: 0.5,
      });
      expect((out.points as { step: number }[]).map((p) => p.step)).toEqual([0, 1, 2]);
    },
  },
  compare_runs: {
    args: async () => {
      const a = seedRun({ run_name: 'a' });
      const b = seedRun({ run_name: 'b' });
      a.params.set('lr', '0.1').set('opt', 'adam');
      b.params.set('lr', '0.01').set('opt', 'adam');
      a.history.push({ key: 'rmse', value: 0.5, step: 0, timestamp: 1 });
      b.history.push({ key: 'rmse', value: 0.4, step: 0, timestamp: 1 });
      return { run_ids: [a.info.run_id, b.info.run_id] };
    },
    check: (out, text) => {
      const [a, b] = (out.runs as { run_id: string }[]).map((r) => r.run_id);
      expect(out.differing_params).toEqual(['lr']);
      expect(out.params).toEqual({ lr: { [a!]: '0.1', [b!]: '0.01' }, opt: { [a!]: 'adam', [b!]: 'adam' } });
      expect(out.metrics).toEqual({ rmse: { [a!]: 0.5, [b!]: 0.4 } });
      expect(text).toContain('rmse: a=0.5, b=0.4');
    },
  },
  list_artifacts: {
    args: async () => {
      const run = seedRun();
      fake.artifacts.set(artifactKey(run, 'model/MLmodel'), Buffer.from('flavors: {}'));
      fake.artifacts.set(artifactKey(run, 'model/model.pkl'), Buffer.alloc(300));
      fake.artifacts.set(artifactKey(run, 'notes.md'), Buffer.from('hi'));
      return { run_id: run.info.run_id, recursive: true };
    },
    check: (out) => {
      expect(out.truncated).toBe(false);
      expect(out.files).toEqual([
        { path: 'model', is_dir: true },
        { path: 'model/MLmodel', is_dir: false, file_size: 11 },
        { path: 'model/model.pkl', is_dir: false, file_size: 300 },
        { path: 'notes.md', is_dir: false, file_size: 2 },
      ]);
    },
  },
  read_artifact: {
    args: async () => {
      const run = seedRun();
      fake.artifacts.set(artifactKey(run, 'reports/r.json'), Buffer.from('{"rmse":0.3}'));
      return { run_id: run.info.run_id, path: 'reports/r.json' };
    },
    check: (out, text) => {
      expect(out).toMatchObject({
        path: 'reports/r.json',
        content: '{"rmse":0.3}',
        bytes_returned: 12,
        truncated: false,
        cap_bytes: 64,
      });
      expect(text).toContain('{"rmse":0.3}');
    },
  },
  register_model: {
    args: async () => {
      const run = seedRun({ status: 'FINISHED' });
      fake.artifacts.set(artifactKey(run, 'model/model.onnx'), Buffer.from('onnx')); // register_model checks the folder
      return { run_id: run.info.run_id, artifact_path: 'model', name: 'cases-gru', alias: 'champion' };
    },
    check: (out, text) => {
      const run = [...fake.runs.values()][0]!;
      expect(out).toMatchObject({
        name: 'cases-gru',
        version: '1',
        source: `${run.info.artifact_uri}/model`,
        alias: 'champion',
        created: true,
        status: 'READY',
        url: `${BASE}/#/models/cases-gru/versions/1`,
      });
      expect(fake.models.get('cases-gru')?.aliases.get('champion')).toBe('1');
      expect(text).toContain('Registered cases-gru version 1 (alias champion)');
    },
  },
  set_model_alias: {
    args: async () => {
      seedModel('cases-gru', seedRun(), 2, { champion: '1' });
      return { name: 'cases-gru', alias: 'champion', version: '2' };
    },
    check: (out, text) => {
      expect(out).toEqual({ name: 'cases-gru', alias: 'champion', version: '2', previous_version: '1' });
      expect(fake.models.get('cases-gru')?.aliases.get('champion')).toBe('2');
      expect(text).toBe('cases-gru@champion → version 2 (was 1).');
    },
  },
  get_model_version: {
    args: async () => {
      seedModel('cases-gru', seedRun(), 2, { champion: '2' });
      return { name: 'cases-gru', alias: 'champion' };
    },
    check: (out) => {
      expect(out).toMatchObject({
        name: 'cases-gru',
        version: '2',
        status: 'READY',
        run_id: 'run0001',
        aliases: ['champion'],
        tags: { stage: 'v2' },
        created_at: '2030-01-02T00:00:00.000Z',
        url: `${BASE}/#/models/cases-gru/versions/2`,
      });
    },
  },
};
