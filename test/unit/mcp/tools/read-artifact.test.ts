// read_artifact: the byte cap, base64, and paths escaping the run root.
import { describe, expect, it } from 'vitest';
import { textOf } from '../harness.js';
import { artifactKey, failed, fake, ok, s, seedRun, useToolSessions } from '../tool-session.js';

useToolSessions();

describe('read_artifact: the byte cap', () => {
  it('read_artifact: a 200-byte artifact with readArtifactMaxBytes 64 returns 64 bytes, truncated true and cap_bytes 64', async () => {
    const run = seedRun();
    const bytes = Buffer.from(Array.from({ length: 200 }, (_, i) => 'abcdefghij'[i % 10]).join(''));
    fake.artifacts.set(artifactKey(run, 'logs/train.log'), bytes);
    const res = await s.call('read_artifact', { run_id: run.info.run_id, path: 'logs/train.log' });
    const out = ok(res, 'read_artifact');
    expect(out).toEqual({
      run_id: run.info.run_id,
      path: 'logs/train.log',
      content: bytes.subarray(0, 64).toString('utf8'),
      bytes_returned: 64,
      truncated: true,
      cap_bytes: 64,
    });
    expect(textOf(res)).toContain('64 bytes, truncated at the 64-byte cap');
  });

  it('read_artifact: max_bytes above the server cap is held to the cap; below it, it is the cap', async () => {
    const run = seedRun();
    fake.artifacts.set(artifactKey(run, 'a.txt'), Buffer.alloc(200, 'a'));
    const big = ok(
      await s.call('read_artifact', { run_id: run.info.run_id, path: 'a.txt', max_bytes: 10_000 }),
      'read_artifact',
    );
    expect(big).toMatchObject({ bytes_returned: 64, cap_bytes: 64, truncated: true });
    const small = ok(
      await s.call('read_artifact', { run_id: run.info.run_id, path: 'a.txt', max_bytes: 10 }),
      'read_artifact',
    );
    expect(small).toMatchObject({
      bytes_returned: 10,
      cap_bytes: 10,
      truncated: true,
      content: 'a'.repeat(10),
    });
  });

  it('read_artifact: encoding base64 returns the bytes as base64 and keeps them out of the text', async () => {
    const run = seedRun();
    fake.artifacts.set(artifactKey(run, 'w.bin'), Buffer.from([0, 159, 255]));
    const res = await s.call('read_artifact', { run_id: run.info.run_id, path: 'w.bin', encoding: 'base64' });
    expect(ok(res, 'read_artifact')).toMatchObject({ content: 'AJ//', bytes_returned: 3, truncated: false });
    expect(textOf(res)).toContain('[base64 in structuredContent]');
  });

  it('read_artifact: a path escaping the run root is refused', async () => {
    const run = seedRun();
    const text = failed(await s.call('read_artifact', { run_id: run.info.run_id, path: '../other/secret' }));
    expect(text).toContain("contains a '..' segment");
  });
});
