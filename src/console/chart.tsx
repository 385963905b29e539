/**
 * Charts through Chart.js (only the pieces used are registered, so the bundle stays small).
 * Colours come from the page's CSS variables, so the light and dark themes both read well.
 * The canvas carries `data-points`: each series' label and how many points it drew, which is
 * what a screen reader's summary and the browser tests read.
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip, type ChartConfiguration } from 'chart.js';
import { useEffect, useRef } from 'preact/hooks';

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip);

/** Distinct hues that stay readable on both themes. */
export const PALETTE = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#ec4899', '#14b8a6', '#84cc16', '#f97316', '#64748b'];

export interface Series {
  label: string;
  data: (number | null)[];
}

export function ChartView(props: { kind: 'bar' | 'line'; labels: string[]; series: Series[]; stacked?: boolean; yFormat?: (v: number) => string; title: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart | null>(null);
  useEffect(() => {
    const el = canvas.current;
    if (!el) return;
    const css = getComputedStyle(document.documentElement);
    const text = css.getPropertyValue('--fg').trim() || '#222';
    const grid = css.getPropertyValue('--grid').trim() || '#ddd';
    const config: ChartConfiguration<'bar' | 'line'> = {
      type: props.kind,
      data: {
        labels: props.labels,
        datasets: props.series.map((s, i) => ({
          label: s.label,
          data: s.data,
          backgroundColor: PALETTE[i % PALETTE.length],
          borderColor: PALETTE[i % PALETTE.length],
          spanGaps: true,
          pointRadius: 3,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { labels: { color: text } }, tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${props.yFormat ? props.yFormat(Number(c.parsed.y)) : c.parsed.y}` } } },
        scales: {
          x: { stacked: props.stacked ?? false, ticks: { color: text }, grid: { color: grid } },
          y: { stacked: props.stacked ?? false, beginAtZero: true, ticks: { color: text, ...(props.yFormat ? { callback: (v) => props.yFormat!(Number(v)) } : {}) }, grid: { color: grid } },
        },
      },
    };
    chart.current?.destroy();
    chart.current = new Chart(el, config as ChartConfiguration);
    el.dataset.points = JSON.stringify(Object.fromEntries(props.series.map((s) => [s.label, s.data.filter((v) => v !== null && v !== 0).length])));
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
  }, [props.kind, props.labels, props.series, props.stacked]);
  const summary = props.series.map((s) => `${s.label}: ${s.data.filter((v) => v !== null).length} points`).join('; ');
  return (
    <div class="chart">
      <canvas ref={canvas} role="img" aria-label={`${props.title}. ${summary}`} />
    </div>
  );
}
