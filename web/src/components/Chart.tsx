// A time-series chart on uPlot (canvas: cheap for thousands of points).
// The plot is rebuilt when the data changes and resized with its box.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  values: Array<number | null>;
  color: string;
  dash?: number[];
  bars?: boolean; // overrides the chart's setting for this series
}

export interface ChartProps {
  title: string;
  times: number[]; // seconds since the epoch
  series: ChartSeries[];
  format: (v: number | null) => string;
  bars?: boolean;
  height?: number;
}

export const COLORS = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16"];

export function Chart({ title, times, series, format, bars, height = 180 }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    // Canvas cannot read CSS variables: resolve the theme's colours here.
    const css = getComputedStyle(document.documentElement);
    const muted = css.getPropertyValue("--muted").trim() || "#666";
    const grid = css.getPropertyValue("--grid").trim() || "#eee";
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { x: { time: true } },
      axes: [
        { stroke: muted, grid: { stroke: grid }, ticks: { stroke: grid } },
        {
          stroke: muted,
          grid: { stroke: grid },
          ticks: { stroke: grid },
          size: 64,
          values: (_u, vals) => vals.map((v) => format(v)),
        },
      ],
      series: [
        { label: "time" },
        ...series.map((s) => {
          const asBars = s.bars ?? bars;
          return {
          label: s.label,
          stroke: s.color,
          fill: asBars ? s.color + "99" : undefined,
          width: asBars ? 0 : 1.5,
          dash: s.dash,
          paths: asBars ? uPlot.paths.bars!({ size: [0.7, 40] }) : undefined,
          // Sparse series (a few buckets with data) would draw no line.
          points: { show: s.values.filter((v) => v !== null).length < 40, size: 4 },
          value: (_u: uPlot, v: number | null) => format(v),
          };
        }),
      ],
    };
    const plot = new uPlot(opts, [times, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [times, series, bars, height]);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} class="chart-box" role="img" aria-label={`${title} chart`} />
    </figure>
  );
}
