/** Logs: GET /admin/logs with filters; an entry opens into its turns (GET /admin/logs/{id}). */
import { useEffect, useState } from 'preact/hooks';
// What GET /admin/logs and /admin/logs/{id} answer: the request log's own rows (types only, erased from the bundle).
import type { LogEntry, LogTurn } from '../store/request-log-query.js';
import { api, type WhoAmI } from './api.js';
import { fmtInt, fmtMs, fmtNum, fmtTime, fmtUsd } from './format.js';
import { Choice } from './choice.js';
import { Table } from './table.js';

export function LogsPage({ who }: { who: WhoAmI }) {
  const [filter, setFilter] = useState({ q: '', model: '', provider: '', key: '', status: '' });
  const [rows, setRows] = useState<LogEntry[]>([]);
  const [open, setOpen] = useState<{ id: string; turns: LogTurn[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => {
    const q = new URLSearchParams(Object.entries(filter).filter(([, v]) => v !== ''));
    api<{ data: LogEntry[] }>(`/admin/logs?${q}`)
      .then((d) => (setRows(d.data), setError(null)))
      .catch((e: Error) => setError(e.message));
  };
  useEffect(load, []);
  const field = (name: keyof typeof filter, label: string) => (
    <label>
      {label} <input value={filter[name]} onInput={(e) => setFilter({ ...filter, [name]: e.currentTarget.value })} />
    </label>
  );
  return (
    <section aria-label="Logs">
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          load();
        }}
      >
        {field('q', 'Search')}
        {field('model', 'Model')}
        {field('provider', 'Provider')}
        {who.admin && field('key', 'Key')}
        <Choice label="Status" value={filter.status} options={[['', 'any'], 'ok', 'error']} onChange={(status) => setFilter({ ...filter, status })} />
        <button type="submit">Search</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      <Table class="logs" columns={['time', 'model', 'provider', 'key', 'status', 'tokens', 'cost', 'message']}>
        {rows.map((r) => (
          <>
            <tr class="entry">
              <td>
                <button
                  type="button"
                  class="link"
                  aria-expanded={open?.id === r.id}
                  onClick={() =>
                    open?.id === r.id ? setOpen(null) : void api<{ turns: LogTurn[] }>(`/admin/logs/${encodeURIComponent(r.id)}`).then((d) => setOpen({ id: r.id, turns: d.turns }))
                  }
                >
                  {fmtTime(r.at)}
                </button>
              </td>
              <td>{r.models.join(', ')}</td>
              <td>{r.provider ?? '–'}</td>
              <td>{r.key_id ?? '–'}</td>
              <td class={r.status}>{r.status}</td>
              <td>{fmtInt(r.prompt_tokens + r.completion_tokens)}</td>
              <td>{fmtUsd(r.cost)}</td>
              <td>{r.error ?? r.first_message}</td>
            </tr>
            {open?.id === r.id && (
              <tr class="detail">
                <td colSpan={8}>
                  {open.turns.map((t) => (
                    <div class="turn">
                      <p class="user">{t.user}</p>
                      {t.error ? <p class="error">{t.error}</p> : <p class="reply">{t.reply ?? '(content not logged)'}</p>}
                      <p class="stats">
                        {t.model} · {t.provider ?? '?'} · {fmtInt(t.prompt_tokens)} in / {fmtInt(t.completion_tokens)} out · {fmtUsd(t.cost)} · TTFT {fmtMs(t.ttft_ms)} · total {fmtMs(t.latency_ms)} · {fmtNum(t.tokens_per_second)} tok/s
                      </p>
                    </div>
                  ))}
                </td>
              </tr>
            )}
          </>
        ))}
      </Table>
    </section>
  );
}
