/**
 * The stdout line protocol for task scripts in any language: one JSON object per line after the
 * prefix `@@runwarden `. Kinds: metric {metric, value, step?}, param {param, value}, tag {tag,
 * value}, progress {progress: 0..1, message?}, artifact {artifact: path, dest?}. Other lines are
 * plain log. A malformed protocol line is reported, never fatal. See tasks/README.md.
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

export type ParsedLine = { kind: 'log' } | { kind: 'invalid'; error: string } | ProtocolMessage;

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
  if ('metric' in m) return { kind: 'metric', key: m.metric, value: m.value, step: m.step };
  if ('param' in m) return { kind: 'param', key: m.param, value: m.value };
  if ('tag' in m) return { kind: 'tag', key: m.tag, value: m.value };
  if ('progress' in m) return { kind: 'progress', fraction: m.progress, message: m.message };
  return { kind: 'artifact', path: m.artifact, dest: m.dest };
}
