/**
 * A fresh workspace per attempt: the template folder copied without VCS folders, dependency
 * folders and caches, the template's shared folders beside it, the inputs materialised under
 * `inputs/`, `config.yml` with the resolved parameters, and empty `output/` and `logs/` folders.
 */
import { cp, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { ParamValue, Template } from '../model/template.js';

const SKIP = new Set([
  '.git',
  'node_modules',
  '.venv',
  'venv',
  '__pycache__',
  '.mypy_cache',
  '.pytest_cache',
  '.ruff_cache',
  '.ipynb_checkpoints',
]);

export function copyFilter(src: string): boolean {
  const base = path.basename(src);
  return !SKIP.has(base) && !base.endsWith('.pyc');
}

export interface Workspace {
  dir: string;
  outputDir: string;
  inputsDir: string;
  logsDir: string;
  configFile: string;
}

export async function createWorkspace(t: Template, baseDir: string, label: string): Promise<Workspace> {
  await mkdir(baseDir, { recursive: true });
  const dir = await mkdtemp(path.join(baseDir, `${label}-`));
  await cp(t.dir, dir, { recursive: true, filter: copyFilter });
  for (const shared of t.shared) {
    const src = path.resolve(t.dir, shared);
    await cp(src, path.join(dir, path.basename(src)), { recursive: true, filter: copyFilter });
  }
  const ws: Workspace = {
    dir,
    outputDir: path.join(dir, t.outputs_dir),
    inputsDir: path.join(dir, 'inputs'),
    logsDir: path.join(dir, 'logs'),
    configFile: path.join(dir, 'config.yml'),
  };
  await mkdir(ws.outputDir, { recursive: true });
  await mkdir(ws.logsDir, { recursive: true });
  return ws;
}

export async function writeConfig(
  ws: Workspace,
  params: Record<string, ParamValue>,
  inputs: Record<string, string>,
) {
  await writeFile(ws.configFile, stringify({ params, inputs, output_dir: ws.outputDir }));
}

/** Fill `{python}`, `{node}`, `{workspace}`, `{output_dir}`, `{inputs.x}`, `{params.x}` in the command. */
export function renderCommand(
  command: string[],
  vars: {
    python: string;
    node: string;
    workspace: string;
    outputDir: string;
    inputs: Record<string, string>;
    params: Record<string, ParamValue>;
  },
): string[] {
  return command.map((part) =>
    part.replace(/\{([a-z_]+)(?:\.([A-Za-z0-9_-]+))?\}/g, (whole, a: string, b?: string) => {
      if (a === 'python' && !b) return vars.python;
      if (a === 'node' && !b) return vars.node;
      if (a === 'workspace' && !b) return vars.workspace;
      if (a === 'output_dir' && !b) return vars.outputDir;
      if (a === 'inputs' && b && b in vars.inputs) return vars.inputs[b]!;
      if (a === 'params' && b && b in vars.params) return String(vars.params[b]);
      return whole;
    }),
  );
}
