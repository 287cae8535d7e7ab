/**
 * Line charts as PNG for templates and trainers written in TypeScript: a Vega-Lite spec compiled to
 * Vega, rendered headless to SVG (`renderer: 'none'`, `view.toSVG()`), rasterised by resvg. Real
 * axes, tick labels, title and legend, drawn with the system's fonts (DejaVu Sans preferred, any
 * sans-serif otherwise; on a machine without fonts the text is missing, so `fonts-dejavu-core` is
 * installed by scripts/setup.sh). `lineChartPng` is the reusable entry.
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface LineSeries {
  name: string;
  /** y values; x is 1, 2, 3... unless `x` is given. */
  values: ArrayLike<number>;
  x?: ArrayLike<number>;
}

export interface LineChartOptions {
  title: string;
  xlabel?: string;
  ylabel?: string;
  width?: number;
  height?: number;
  /** Pixel ratio of the PNG (default 2: sharp on high-density screens). */
  scale?: number;
}

const FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';

/** The Vega-Lite spec of the chart (exported for tests and for other renderers). */
export function lineChartSpec(series: LineSeries[], o: LineChartOptions): TopLevelSpec {
  const values = series.flatMap((s) =>
    Array.from(s.values, (y, i) => ({
      x: s.x ? Number(s.x[i]) : i + 1,
      y: Number.isFinite(y) ? y : null,
      series: s.name,
    })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: o.width ?? 600,
    height: o.height ?? 320,
    background: 'white',
    config: { font: FONT, view: { stroke: '#ccc' } },
    data: { values },
    mark: { type: 'line', point: { size: 16 } },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.xlabel ?? 'step', axis: { tickMinStep: 1 } },
      y: { field: 'y', type: 'quantitative', title: o.ylabel ?? 'value', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, sort: series.map((s) => s.name) },
    },
  };
}

/** Renders the chart to SVG text. */
export async function lineChartSvg(series: LineSeries[], o: LineChartOptions): Promise<string> {
  const view = new vega.View(vega.parse(compile(lineChartSpec(series, o)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders the chart to PNG bytes. */
export async function lineChartPng(series: LineSeries[], o: LineChartOptions): Promise<Buffer> {
  const svg = await lineChartSvg(series, o);
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: o.scale ?? 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
    background: 'white',
  });
  return resvg.render().asPng();
}
