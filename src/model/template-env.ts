/**
 * The rule for one `env:` entry of a template's task.yaml: `NAME` (pass the worker's variable
 * through) or `NAME=value` (a fixed value). The names runwarden sets itself (RUNWARDEN_*,
 * MLFLOW_TRACKING_*, the run and experiment ids, REDIS_URL) are reserved: a template may neither
 * pass nor set them. How the command's environment is built from these entries is
 * src/runners/task-env.ts.
 */
import { z } from 'zod';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Variables runwarden owns or sets itself: a template may neither pass nor set them. */
export function reservedEnvName(name: string): boolean {
  return (
    name.startsWith('RUNWARDEN_') ||
    name.startsWith('MLFLOW_TRACKING_') ||
    ['REDIS_URL', 'MLFLOW_RUN_ID', 'MLFLOW_EXPERIMENT_ID'].includes(name)
  );
}

/** One `env:` entry of task.yaml: `NAME` (pass through) or `NAME=value` (fixed). */
export const TemplateEnvEntry = z
  .string()
  .refine((e) => NAME.test(e.split('=')[0] ?? ''), {
    message: 'expected NAME (pass the worker’s variable through) or NAME=value (letters, digits, _)',
  })
  .refine((e) => !reservedEnvName(e.split('=')[0] ?? ''), {
    message:
      'RUNWARDEN_*, MLFLOW_TRACKING_*, MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID and REDIS_URL are set by runwarden',
  });
