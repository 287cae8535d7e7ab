// The model registry tools: get_model_version, set_model_alias and register_model.
import { describe, expect, it } from 'vitest';
import { artifactKey, failed, fake, ok, s, seedModel, seedRun, useToolSessions } from '../tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it.each([
    ['both', { name: 'm', version: '1', alias: 'champion' }],
    ['neither', { name: 'm' }],
  ])('get_model_version: %s of version and alias is refused', async (_, args) => {
    const text = failed(await s.call('get_model_version', args));
    expect(text).toContain('version: give exactly one of version or alias');
    expect(fake.requests).toEqual([]);
  });

  it('get_model_version: an unknown alias gives the tool-specific hint', async () => {
    seedModel('m', seedRun(), 1);
    const text = failed(await s.call('get_model_version', { name: 'm', alias: 'ghost' }));
    expect(text).toContain('Registered model alias ghost not found.');
    expect(text).toContain('That alias or version does not exist on this model');
  });

  it('get_model_version: by version number returns that version', async () => {
    seedModel('m', seedRun(), 3);
    const out = ok(await s.call('get_model_version', { name: 'm', version: '3' }), 'get_model_version');
    expect(out).toMatchObject({ name: 'm', version: '3', aliases: [], tags: { stage: 'v3' } });
  });

  it.each([
    ['latest', 'is reserved by MLflow'],
    ['LATEST', 'is reserved by MLflow'],
    ['v3', 'is reserved by MLflow'],
    ['has space', "is not a valid alias: use letters, digits, '_' and '-'"],
  ])("set_model_alias: alias '%s' is refused before any request, in register_model's words", async (alias, why) => {
    const text = failed(await s.call('set_model_alias', { name: 'm', alias, version: '1' }));
    expect(text).toContain(`alias: '${alias}' ${why}`);
    expect(fake.requests).toEqual([]);
  });

  it('set_model_alias: a new alias reports no previous version', async () => {
    seedModel('m', seedRun(), 1);
    const out = ok(
      await s.call('set_model_alias', { name: 'm', alias: 'champion', version: '1' }),
      'set_model_alias',
    );
    expect(out).toEqual({ name: 'm', alias: 'champion', version: '1' });
  });

  it('register_model: the reserved alias latest is refused', async () => {
    const run = seedRun();
    const text = failed(
      await s.call('register_model', {
        run_id: run.info.run_id,
        artifact_path: 'model',
        name: 'm',
        alias: 'latest',
      }),
    );
    expect(text).toContain("alias: 'latest' is reserved by MLflow");
  });

  it('register_model: the same idempotency_key returns the first version with created false', async () => {
    const run = seedRun();
    fake.artifacts.set(artifactKey(run, 'model/model.onnx'), Buffer.from('onnx')); // register_model checks the folder
    const args = { run_id: run.info.run_id, artifact_path: 'model', name: 'm', idempotency_key: 'job-7' };
    expect(ok(await s.call('register_model', args), 'register_model')).toMatchObject({
      version: '1',
      created: true,
    });
    expect(ok(await s.call('register_model', args), 'register_model')).toMatchObject({
      version: '1',
      created: false,
    });
    expect(fake.versions).toHaveLength(1);
  });
});
