// vitest globalSetup of the `integration` project: starts one real MLflow tracking server and
// one redis-server for the whole run, provides their addresses to tests (`inject('mlflowUrl')`,
// `inject('redisUrl')`, `inject('mlflowDir')`; types in provided.d.ts), and stops both at the end.

import type { TestProject } from 'vitest/node';
import { startMlflowServer, startRedisServer } from './services.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [mlflow, redis] = await Promise.allSettled([startMlflowServer(), startRedisServer()]);
  const started = [mlflow, redis].flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stopAll = async () => {
    await Promise.allSettled(started.map((s) => s.stop()));
  };
  if (mlflow.status === 'rejected' || redis.status === 'rejected') {
    await stopAll();
    const reasons = [mlflow, redis].flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    throw new Error(`integration services did not start:\n${reasons.join('\n')}`);
  }
  project.provide('mlflowUrl', mlflow.value.url);
  project.provide('mlflowDir', mlflow.value.dir);
  project.provide('redisUrl', redis.value.url);
  return stopAll;
}
