// log_artifact: allowed roots and symlinks, inline caps, sources, uploads of files and folders.

import { symlinkSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../harness.js';
import { artifactKey, failed, fake, ok, s, startRun, tmp, useToolSessions } from '../tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it('log_artifact: a local_path outside the allowed roots is refused naming the allowed roots, and nothing is uploaded', async () => {
    const runId = await startRun();
    const outside = tempDir('rw-outside-');
    try {
      const file = path.join(outside.dir, 'secret.txt');
      writeFileSync(file, 'secret');
      const text = failed(await s.call('log_artifact', { run_id: runId, local_path: file }));
      expect(text).toContain(`local_path: ${file} is outside the allowed roots (${tmp.dir})`);
      expect(text).toContain('RUNWARDEN_ALLOWED_ROOTS');
      expect(fake.bodies('artifact PUT')).toEqual([]);
    } finally {
      outside.remove();
    }
  });

  it('log_artifact: a symlink inside an allowed root that points outside it is refused', async () => {
    const runId = await startRun();
    const outside = tempDir('rw-outside-');
    try {
      writeFileSync(path.join(outside.dir, 'secret.txt'), 'secret');
      const link = path.join(tmp.dir, 'innocent.txt');
      symlinkSync(path.join(outside.dir, 'secret.txt'), link);
      const text = failed(await s.call('log_artifact', { run_id: runId, local_path: link }));
      expect(text).toContain('is outside the allowed roots');
      expect(fake.bodies('artifact PUT')).toEqual([]);
    } finally {
      outside.remove();
    }
  });

  it('log_artifact: inline content over the cap is refused naming the cap and the local_path way out', async () => {
    const runId = await startRun();
    const text = failed(
      await s.call('log_artifact', { run_id: runId, content: 'x'.repeat(2000), artifact_path: 'big.txt' }),
    );
    expect(text).toContain('content: 2000 bytes exceeds the inline cap of 1024 bytes');
    expect(text).toContain('local_path');
    expect(fake.bodies('artifact PUT')).toEqual([]);
  });

  it('log_artifact: inline content without artifact_path, or two sources at once, is refused', async () => {
    const runId = await startRun();
    expect(failed(await s.call('log_artifact', { run_id: runId, content: 'hi' }))).toContain(
      'artifact_path: inline content needs a file path',
    );
    expect(
      failed(
        await s.call('log_artifact', {
          run_id: runId,
          content: 'hi',
          content_base64: 'aGk=',
          artifact_path: 'a',
        }),
      ),
    ).toContain('give exactly one of local_path, content or content_base64');
  });

  it('log_artifact: a file and a folder under an allowed root are uploaded under artifact_path', async () => {
    const runId = await startRun();
    const run = fake.runs.get(runId)!;
    await mkdir(path.join(tmp.dir, 'model', 'sub'), { recursive: true });
    writeFileSync(path.join(tmp.dir, 'model', 'MLmodel'), 'flavors: {}\n');
    writeFileSync(path.join(tmp.dir, 'model', 'sub', 'weights.bin'), Buffer.alloc(100, 1));
    writeFileSync(path.join(tmp.dir, 'loss.csv'), 'step,loss\n0,1\n');

    const file = ok(
      await s.call('log_artifact', {
        run_id: runId,
        local_path: path.join(tmp.dir, 'loss.csv'),
        artifact_path: 'plots',
      }),
      'log_artifact',
    );
    expect(file).toEqual({ run_id: runId, files: 1, bytes: 14, artifact_path: 'plots' });
    const dir = ok(
      await s.call('log_artifact', {
        run_id: runId,
        local_path: path.join(tmp.dir, 'model'),
        artifact_path: 'model',
      }),
      'log_artifact',
    );
    expect(dir).toEqual({ run_id: runId, files: 2, bytes: 112, artifact_path: 'model' });
    expect([...fake.artifacts.keys()].sort()).toEqual(
      ['model/MLmodel', 'model/sub/weights.bin', 'plots/loss.csv'].map((p) => artifactKey(run, p)),
    );
  });

  it('log_artifact: content_base64 stores the decoded bytes', async () => {
    const runId = await startRun();
    const out = ok(
      await s.call('log_artifact', {
        run_id: runId,
        content_base64: Buffer.from([0, 1, 2, 255]).toString('base64'),
        artifact_path: 'b.bin',
      }),
      'log_artifact',
    );
    expect(out.bytes).toBe(4);
    expect([...fake.artifacts.get(artifactKey(fake.runs.get(runId)!, 'b.bin'))!]).toEqual([0, 1, 2, 255]);
  });
});

describe('log_artifact: content_base64 is decoded strictly', () => {
  it.each([
    ['not base64!!', 'outside the base64 alphabet'],
    ['aGk-_w', "base64url's - and _ are not accepted"],
    ['aGk=aGk=', 'is not well-formed base64'],
    ['aGVsb', 'is not well-formed base64'],
  ])('log_artifact: content_base64 %j is refused naming content_base64, and nothing is uploaded', async (b64, why) => {
    const runId = await startRun();
    const text = failed(
      await s.call('log_artifact', { run_id: runId, content_base64: b64, artifact_path: 'b.bin' }),
    );
    expect(text).toContain('content_base64: ');
    expect(text).toContain(why);
    expect(text).toContain('send standard base64, or the text itself as content');
    expect(fake.bodies('artifact PUT')).toEqual([]);
  });

  it('log_artifact: unpadded and line-wrapped base64 is accepted and stores the decoded bytes', async () => {
    const runId = await startRun();
    const run = fake.runs.get(runId)!;
    ok(
      await s.call('log_artifact', { run_id: runId, content_base64: 'aGVsbG8', artifact_path: 'a.txt' }),
      'log_artifact',
    );
    ok(
      await s.call('log_artifact', {
        run_id: runId,
        content_base64: 'aGVs\r\nbG8g\nd29y\nbGQ=',
        artifact_path: 'b.txt',
      }),
      'log_artifact',
    );
    expect(fake.artifacts.get(artifactKey(run, 'a.txt'))?.toString()).toBe('hello');
    expect(fake.artifacts.get(artifactKey(run, 'b.txt'))?.toString()).toBe('hello world');
  });
});
