/**
 * The sweep's comparison table: one row per child (index, status, its metric, its swept params,
 * run id, reason), written as a CSV artifact on the parent run and as a Markdown table in the
 * parent run's description, so the UI shows every child at a glance.
 */
export interface ChildRow {
  index: number;
  taskId: string;
  status: 'completed' | 'failed' | 'cancelled';
  runId?: string;
  value?: number;
  params: Record<string, string | number | boolean>;
  reason?: string;
}

const csvCell = (v: unknown) => {
  const s = v === undefined || v === null ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function comparisonCsv(rows: ChildRow[], metric: string): string {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.params)))].sort();
  const head = ['index', 'task_id', 'status', metric, ...keys.map((k) => `param.${k}`), 'run_id', 'reason'];
  const lines = rows.map((r) =>
    [r.index, r.taskId, r.status, r.value, ...keys.map((k) => r.params[k]), r.runId, r.reason?.split('\n')[0]]
      .map(csvCell)
      .join(','),
  );
  return `${[head.map(csvCell).join(','), ...lines].join('\n')}\n`;
}

const mdCell = (v: unknown) =>
  (v === undefined ? '' : String(v)).replace(/\|/g, '\\|').replace(/\n/g, ' ').slice(0, 80);

/** A Markdown table of the children (best first is marked), capped at `maxChars`. */
export function comparisonMarkdown(
  rows: ChildRow[],
  metric: string,
  bestIndex: number | undefined,
  maxChars: number,
): string {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.params)))].sort();
  const head = `| # | status | ${metric} | ${keys.join(' | ')} | run |\n|---|---|---|${keys.map(() => '---|').join('')}---|`;
  let out = head;
  for (const r of rows) {
    const line = `\n| ${r.index}${r.index === bestIndex ? ' ★' : ''} | ${r.status} | ${mdCell(r.value)} | ${keys
      .map((k) => mdCell(r.params[k]))
      .join(' | ')} | ${mdCell(r.runId)} |`;
    if (out.length + line.length > maxChars - 40)
      return `${out}\n\n(… ${rows.length - r.index} more rows in sweep_comparison.csv)`;
    out += line;
  }
  return out;
}
