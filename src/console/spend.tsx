/** Spend: cost or tokens over time stacked by a dimension, totals, budget burn-down, CSV. All from GET /admin/spend. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type SpendAnswer } from './api.js';
import { ChartView, type Series } from './chart.js';
import { fmtBucket, fmtInt, fmtUsd, isoDay, timeZone } from './format.js';
import { Choice } from './choice.js';
import { Table } from './table.js';

const dayStart = (day: string): string => new Date(`${day}T00:00:00`).toISOString();

export function SpendPage() {
  const [by, setBy] = useState('model');
  const [bucket, setBucket] = useState<'day' | 'hour'>('day');
  const [metric, setMetric] = useState<'cost' | 'tokens'>('cost');
  const [since, setSince] = useState(isoDay(new Date(Date.now() - 6 * 86_400_000)));
  const [until, setUntil] = useState(isoDay(new Date()));
  const [data, setData] = useState<SpendAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const end = new Date(`${until}T00:00:00`);
    end.setDate(end.getDate() + 1);
    const q = new URLSearchParams({ by, bucket, tz: timeZone, since: dayStart(since), until: end.toISOString() });
    api<SpendAnswer>(`/admin/spend?${q}`)
      .then((d) => (setData(d), setError(null)))
      .catch((e: Error) => setError(e.message));
  }, [by, bucket, since, until]);

  const chart = useMemo(() => {
    if (!data) return { labels: [], series: [] as Series[] };
    const labels = [...new Set(data.series.map((r) => r.bucket))].sort();
    const groups = [...new Set(data.series.map((r) => String(r[by])))];
    const series = groups.map((g) => ({
      label: g,
      data: labels.map((b) => {
        const row = data.series.find((r) => r.bucket === b && String(r[by]) === g);
        return row ? (metric === 'cost' ? Number(row.cost) : row.prompt_tokens + row.completion_tokens) : 0;
      }),
    }));
    return { labels: labels.map(fmtBucket), series };
  }, [data, metric]);

  const burn = useMemo(() => {
    if (!data || data.budgets.length === 0) return null;
    const labels = [...new Set(data.budgets.flatMap((b) => b.points.map((p) => p.bucket)))].sort();
    const series = data.budgets.map((b) => {
      let last: number | null = null;
      return {
        label: `${b.scope} ${b.name} (limit ${fmtUsd(b.limit, 2)} per ${b.period})`,
        data: labels.map((l) => {
          const p = b.points.find((x) => x.bucket === l);
          if (p) last = Number(p.remaining);
          return last;
        }),
      };
    });
    return { labels: labels.map(fmtBucket), series };
  }, [data]);

  const csv = () => {
    if (!data) return;
    const lines = [['bucket', by, 'requests', 'prompt_tokens', 'completion_tokens', 'cost'].join(',')];
    for (const r of data.series) lines.push([r.bucket, JSON.stringify(String(r[by])), r.requests, r.prompt_tokens, r.completion_tokens, r.cost].join(','));
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([`${lines.join('\n')}\n`], { type: 'text/csv' }));
    a.download = `spend-by-${by}-${since}-${until}.csv`;
    a.click();
  };

  return (
    <section aria-label="Spend">
      <div class="toolbar">
        <Choice label="Group by" value={by} options={['model', 'provider', 'key', 'team']} onChange={setBy} />
        <Choice label="Per" value={bucket} options={['day', 'hour'] as const} onChange={setBucket} />
        <Choice label="Show" value={metric} options={['cost', 'tokens'] as const} onChange={setMetric} />
        <label>
          From <input type="date" value={since} onChange={(e) => setSince(e.currentTarget.value)} />
        </label>
        <label>
          To <input type="date" value={until} onChange={(e) => setUntil(e.currentTarget.value)} />
        </label>
        <button type="button" onClick={csv}>
          Download CSV
        </button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {data && (
        <>
          <h2>{metric === 'cost' ? 'Cost' : 'Tokens'} by {by}</h2>
          <ChartView kind="bar" stacked title={`${metric} by ${by}`} labels={chart.labels} series={chart.series} yFormat={metric === 'cost' ? (v) => fmtUsd(v, 4) : fmtInt} />
          <Table
            class="totals"
            caption={`Totals (${data.time_zone})`}
            columns={[by, 'requests', 'prompt tokens', 'completion tokens', 'cost']}
            foot={
              <tr class="total">
                <th scope="row">total</th>
                <td>{fmtInt(data.total.requests)}</td>
                <td>{fmtInt(data.total.prompt_tokens)}</td>
                <td>{fmtInt(data.total.completion_tokens)}</td>
                <td data-cost={data.total.cost}>{fmtUsd(data.total.cost)}</td>
              </tr>
            }
          >
            {data.data.map((r) => (
              <tr>
                <th scope="row">{String(r[by])}</th>
                <td>{fmtInt(r.requests)}</td>
                <td>{fmtInt(r.prompt_tokens)}</td>
                <td>{fmtInt(r.completion_tokens)}</td>
                <td data-cost={r.cost}>{fmtUsd(r.cost)}</td>
              </tr>
            ))}
          </Table>
          {burn && (
            <>
              <h2>Budget left this period</h2>
              <ChartView kind="line" title="budget burn-down" labels={burn.labels} series={burn.series} yFormat={(v) => fmtUsd(v, 2)} />
            </>
          )}
        </>
      )}
    </section>
  );
}
