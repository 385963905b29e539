/** Routing (admin): GET /admin/routing, refreshed every 5 s: each deployment's measurements, breaker and each mode's pick. */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ChartView } from './chart.js';
import { fmtMs, fmtNum, fmtPrice, fmtTime } from './format.js';
import { Table } from './table.js';

interface Deployment {
  deployment: string;
  provider: string;
  input_price: number | null;
  output_price: number | null;
  breaker: string;
  retry_in_ms: number;
  attempts: number;
  error_rate: number | null;
  ttft_p50_ms: number | null;
  tokens_per_second_p50: number | null;
  samples: { at: number; ok: boolean; ttft_ms: number | null; tokens_per_second: number | null; error_rate: number | null }[];
}
interface RoutingAnswer {
  models: { model: string; deployments: Deployment[]; picks: { mode: string; deployment: string | null; why: string }[] }[];
}

function OverTime({ d, field, title }: { d: Deployment[]; field: 'ttft_ms' | 'tokens_per_second' | 'error_rate'; title: string }) {
  const times = [...new Set(d.flatMap((x) => x.samples.map((s) => s.at)))].sort((a, b) => a - b);
  if (times.length === 0) return null;
  const series = d.filter((x) => x.samples.length > 0).map((x) => ({ label: x.provider, data: times.map((t) => x.samples.find((s) => s.at === t)?.[field] ?? null) }));
  return <ChartView kind="line" title={title} labels={times.map((t) => fmtTime(t))} series={series} />;
}

export function RoutingPage() {
  const [data, setData] = useState<RoutingAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const load = () => void api<RoutingAnswer>('/admin/routing').then(setData, (e: Error) => setError(e.message));
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  return (
    <section aria-label="Routing">
      {error && <p class="error" role="alert">{error}</p>}
      {data?.models.map((m) => (
        <article class="route">
          <h2>{m.model}</h2>
          <Table columns={['deployment', 'price in / out', 'breaker', 'attempts', 'error rate', 'TTFT p50', 'tokens/s p50']}>
            {m.deployments.map((d) => (
              <tr>
                <th scope="row">{d.deployment}</th>
                <td>
                  {fmtPrice(d.input_price)} / {fmtPrice(d.output_price)}
                </td>
                <td class={d.breaker}>{d.breaker === 'closed' ? 'closed' : `${d.breaker} (${fmtMs(d.retry_in_ms)})`}</td>
                <td>{d.attempts}</td>
                <td>{d.error_rate === null ? '–' : `${fmtNum(d.error_rate * 100)} %`}</td>
                <td>{fmtMs(d.ttft_p50_ms)}</td>
                <td>{fmtNum(d.tokens_per_second_p50)}</td>
              </tr>
            ))}
          </Table>
          <Table caption="What each mode would pick now">
            {m.picks.map((p) => (
              <tr>
                <th scope="row">@{p.mode}</th>
                <td>{p.deployment ?? '–'}</td>
                <td>{p.why}</td>
              </tr>
            ))}
          </Table>
          <div class="charts3">
            <OverTime d={m.deployments} field="ttft_ms" title="TTFT (ms) per attempt" />
            <OverTime d={m.deployments} field="tokens_per_second" title="tokens/s per attempt" />
            <OverTime d={m.deployments} field="error_rate" title="error rate" />
          </div>
        </article>
      ))}
    </section>
  );
}
