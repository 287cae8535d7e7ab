/**
 * The stdout line protocol for task scripts in any language: one JSON object per line after the
 * prefix `@@runwarden `. Kinds: metric {metric, value, step?}, param {param, value}, tag {tag,
 * value}, progress {progress: 0..1, message?}, artifact {artifact: path, dest?}. Other lines are
 * plain log. A malformed protocol line is reported, never fatal. See tasks/README.md.
 * Namespaces the worker and the judge write are refused from scripts (`refused`, never stored):
 * tags `runwarden.*` (e.g. `runwarden.eval.status`, `runwarden.model_id`) and metrics `eval.*`
 * (the judge's re-score), so a script cannot vouch for itself.
 */
import { z } from 'zod';

export const PROTOCOL_PREFIX = '@@runwarden ';

const num = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity']).transform(Number)]);

const Message = z.union([
  z.object({ metric: z.string().min(1), value: num, step: z.number().int().default(0) }).strict(),
  z.object({ param: z.string().min(1), value: z.union([z.string(), z.number(), z.boolean()]) }).strict(),
  z.object({ tag: z.string().min(1), value: z.string() }).strict(),
  z.object({ progress: z.number().min(0).max(1), message: z.string().optional() }).strict(),
  z.object({ artifact: z.string().min(1), dest: z.string().optional() }).strict(),
]);

export type ProtocolMessage =
  | { kind: 'metric'; key: string; value: number; step: number }
  | { kind: 'param'; key: string; value: string | number | boolean }
  | { kind: 'tag'; key: string; value: string }
  | { kind: 'progress'; fraction: number; message?: string }
  | { kind: 'artifact'; path: string; dest?: string };

export type ParsedLine =
  | { kind: 'log' }
  | { kind: 'invalid'; error: string }
  | { kind: 'refused'; error: string }
  | ProtocolMessage;

/** Tag prefix only runwarden writes (case-insensitive). */
export const RESERVED_TAG_PREFIX = 'runwarden.';
/** Metric prefix only the judge writes (case-insensitive). */
export const RESERVED_METRIC_PREFIX = 'eval.';

const reserved = (key: string, prefix: string) => key.toLowerCase().startsWith(prefix);

export function parseLine(line: string): ParsedLine {
  if (!line.startsWith(PROTOCOL_PREFIX)) return { kind: 'log' };
  let json: unknown;
  try {
    json = JSON.parse(line.slice(PROTOCOL_PREFIX.length));
  } catch {
    return { kind: 'invalid', error: 'not JSON after the @@runwarden prefix' };
  }
  const r = Message.safeParse(json);
  if (!r.success)
    return { kind: 'invalid', error: `not a known message: ${r.error.issues[0]?.message ?? ''}` };
  const m = r.data;
  if ('metric' in m && reserved(m.metric, RESERVED_METRIC_PREFIX))
    return {
      kind: 'refused',
      error: `refused: metric keys '${RESERVED_METRIC_PREFIX}*' are the judge's; log it under another name`,
    };
  if ('tag' in m && reserved(m.tag, RESERVED_TAG_PREFIX))
    return {
      kind: 'refused',
      error: `refused: tags '${RESERVED_TAG_PREFIX}*' are written by runwarden only; use another tag name`,
    };
  if ('metric' in m) return { kind: 'metric', key: m.metric, value: m.value, step: m.step };
  if ('param' in m) return { kind: 'param', key: m.param, value: m.value };
  if ('tag' in m) return { kind: 'tag', key: m.tag, value: m.value };
  if ('progress' in m) return { kind: 'progress', fraction: m.progress, message: m.message };
  return { kind: 'artifact', path: m.artifact, dest: m.dest };
}
