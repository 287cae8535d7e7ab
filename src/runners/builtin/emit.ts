/**
 * The runwarden stdout line protocol (src/runners/protocol.ts) as the built-in trainers speak it:
 * one `@@runwarden {json}` line per metric, param, tag, progress or artifact. Non-finite metric
 * values travel as "NaN", "Infinity", "-Infinity". Artifact paths are relative to the working
 * directory (the workspace), as the protocol asks.
 */
import path from 'node:path';
import { PROTOCOL_PREFIX } from '../protocol.js';

export type Write = (line: string) => void;

export interface Emitter {
  metric(key: string, value: number, step?: number): void;
  param(key: string, value: string | number | boolean): void;
  tag(key: string, value: string): void;
  progress(fraction: number, message?: string): void;
  artifact(file: string, dest?: string): void;
}

const num = (v: number): number | string =>
  Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v;

export function createEmitter(write: Write = (l) => process.stdout.write(l)): Emitter {
  const emit = (m: object) => write(`${PROTOCOL_PREFIX}${JSON.stringify(m)}\n`);
  return {
    metric: (key, value, step = 0) => emit({ metric: key, value: num(value), step: Math.trunc(step) }),
    param: (key, value) => emit({ param: key, value }),
    tag: (key, value) => emit({ tag: key, value }),
    progress: (fraction, message) =>
      emit({ progress: Math.min(1, Math.max(0, fraction)), ...(message ? { message } : {}) }),
    artifact: (file, dest) =>
      emit({ artifact: path.relative(process.cwd(), path.resolve(file)), ...(dest ? { dest } : {}) }),
  };
}
