/**
 * The feature spec (`features.json`) a forecaster writes next to its `model.onnx`: which table
 * columns feed the model, in which order, how many rows of history (`lookback`), the ONNX input and
 * output names, and the target's scale (errors are measured in units of `target_scale.std`).
 * Contract §1 of issue 10; every window forecaster (builtin, Python, Node) follows it.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { capForEcho, RunwardenError, ValidationError } from '../errors/index.js';

const name = z.string().min(1).max(200);

export const FeatureSpecSchema = z
  .object({
    kind: z.literal('window'),
    time_column: name.optional(),
    columns: z.array(name).min(1).max(1000),
    target: name,
    lookback: z.number().int().min(1).max(10_000),
    input: name,
    output: name,
    target_scale: z.object({ mean: z.number().finite(), std: z.number().finite().positive() }),
    test_rows: z.number().int().min(1).max(10_000_000).optional(),
  })
  .passthrough()
  .superRefine((s, ctx) => {
    if (new Set(s.columns).size !== s.columns.length)
      ctx.addIssue({ code: 'custom', path: ['columns'], message: 'columns must be unique' });
  });

export interface FeatureSpec {
  kind: 'window';
  time_column?: string;
  columns: string[];
  target: string;
  lookback: number;
  input: string;
  output: string;
  target_scale: { mean: number; std: number };
  /** The model's test split: the last `test_rows` rows of its training series (the judge's claim check). */
  test_rows?: number;
}

/** Parses and checks a features.json value; ValidationError names the field and what it needs. */
export function parseFeatureSpec(json: unknown): FeatureSpec {
  const r = FeatureSpecSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.length > 0 ? `features.json ${issue.path.join('.')}` : 'features.json';
    const hint =
      issue.path[0] === 'kind'
        ? "only kind 'window' is supported"
        : issue.path[0] === 'target_scale'
          ? 'target_scale needs {mean, std} with std > 0'
          : issue.message;
    throw new ValidationError(
      path,
      `${hint} (a features.json looks like {"kind":"window","columns":[...],"target":"y","lookback":8,"input":"window","output":"forecast","target_scale":{"mean":0,"std":1}}).`,
    );
  }
  const s = r.data;
  const spec: FeatureSpec = {
    kind: 'window',
    columns: s.columns,
    target: s.target,
    lookback: s.lookback,
    input: s.input,
    output: s.output,
    target_scale: { mean: s.target_scale.mean, std: s.target_scale.std },
  };
  if (s.time_column !== undefined) spec.time_column = s.time_column;
  if (s.test_rows !== undefined) spec.test_rows = s.test_rows;
  return spec;
}

/** Where a forecaster's spec sits in its model folder. */
export const FEATURES_FILE = 'features.json';

/**
 * The feature spec of the model folder `dir`: `features.json`, else the MLmodel's
 * `metadata.runwarden_features`; undefined when the folder has neither (not a window forecaster).
 * The one reader for the writer of MLmodel, the re-scorer and prediction. A spec that is not JSON or
 * breaks the contract is `MODEL_INVALID` naming features.json and the fix.
 */
export async function readFeatureSpec(dir: string): Promise<FeatureSpec | undefined> {
  const file = path.join(dir, FEATURES_FILE);
  const mlmodel = path.join(dir, 'MLmodel');
  try {
    if (existsSync(file)) return parseFeatureSpec(JSON.parse(await readFile(file, 'utf8')));
    if (!existsSync(mlmodel)) return undefined;
    const doc = parseYaml(await readFile(mlmodel, 'utf8')) as {
      metadata?: { runwarden_features?: unknown };
    } | null;
    const meta = doc?.metadata?.runwarden_features;
    return meta === undefined ? undefined : parseFeatureSpec(meta);
  } catch (err) {
    throw new RunwardenError(
      'MODEL_INVALID',
      `${FEATURES_FILE}: ${capForEcho((err as Error).message, 300)}. Write it as docs/models.md describes ` +
        '(kind, columns, target, lookback, input, output, target_scale) or leave it out.',
    );
  }
}
