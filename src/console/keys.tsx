/** Keys (admin): list, create, update, rotate, revoke, through /admin/keys. A new secret is shown once. */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { fmtTime, fmtUsd } from './format.js';
import { Choice } from './choice.js';
import { Table } from './table.js';

interface Key {
  id: string;
  name: string;
  team: string | null;
  admin: boolean;
  budget: { amount: string; period: string } | null;
  rpm: number | null;
  tpm: number | null;
  models: string[] | null;
  expires_at: string | null;
  revoked_at: string | null;
}

const EMPTY = { name: '', team: '', budget: '', period: 'month', rpm: '', tpm: '', models: '', admin: false };

export function KeysPage() {
  const [keys, setKeys] = useState<Key[]>([]);
  const [form, setForm] = useState(EMPTY);
  const [secret, setSecret] = useState<{ id: string; key: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => void api<{ data: Key[] }>('/admin/keys').then((d) => setKeys(d.data), (e: Error) => setError(e.message));
  useEffect(load, []);
  const act = async (p: Promise<unknown>) => {
    try {
      await p;
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
    load();
  };
  const create = (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = { name: form.name, admin: form.admin };
    if (form.team) body.team = form.team;
    if (form.budget) {
      body.budget = form.budget;
      body.period = form.period;
    }
    if (form.rpm) body.rpm = Number(form.rpm);
    if (form.tpm) body.tpm = Number(form.tpm);
    if (form.models) body.models = form.models.split(',').map((s) => s.trim());
    void act(
      api<{ id: string; key: string }>('/admin/keys', { method: 'POST', body }).then((k) => {
        setSecret({ id: k.id, key: k.key });
        setForm(EMPTY);
      }),
    );
  };
  const text = (name: keyof typeof EMPTY, label: string, type = 'text') => (
    <label>
      {label} <input inputMode={type === 'number' ? 'numeric' : 'text'} value={String(form[name])} onInput={(e) => setForm({ ...form, [name]: e.currentTarget.value })} />
    </label>
  );
  return (
    <section aria-label="Keys">
      <form class="toolbar" onSubmit={create} aria-label="Create a key">
        {text('name', 'Name')}
        {text('team', 'Team')}
        {text('budget', 'Budget ($)')}
        <Choice label="Period" value={form.period} options={['day', 'month', 'total']} onChange={(period) => setForm({ ...form, period })} />
        {text('rpm', 'RPM', 'number')}
        {text('tpm', 'TPM', 'number')}
        {text('models', 'Models (globs, comma-separated)')}
        <label>
          <input type="checkbox" checked={form.admin} onChange={(e) => setForm({ ...form, admin: e.currentTarget.checked })} /> admin
        </label>
        <button type="submit">Create key</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {secret && (
        <div class="secret" role="status">
          <p>
            New key for {secret.id}. Copy it now: it is not stored and cannot be shown again.
          </p>
          <code class="new-key">{secret.key}</code>
          <button type="button" onClick={() => void navigator.clipboard?.writeText(secret.key)}>
            Copy
          </button>
          <button type="button" onClick={() => setSecret(null)}>
            Done
          </button>
        </div>
      )}
      <Table class="keys" columns={['id', 'name', 'team', 'budget', 'rpm / tpm', 'models', 'state', 'actions']}>
        {keys.map((k) => (
          <tr data-key={k.name}>
            <td>{k.id}</td>
            <td>
              {k.name}
              {k.admin ? ' (admin)' : ''}
            </td>
            <td>{k.team ?? '–'}</td>
            <td>{k.budget ? `${fmtUsd(k.budget.amount, 2)} / ${k.budget.period}` : '–'}</td>
            <td>
              {k.rpm ?? '–'} / {k.tpm ?? '–'}
            </td>
            <td>{k.models?.join(', ') ?? 'all'}</td>
            <td class="state">{k.revoked_at ? `revoked ${fmtTime(k.revoked_at)}` : k.expires_at ? `expires ${fmtTime(k.expires_at)}` : 'active'}</td>
            <td>
              {!k.revoked_at && (
                <>
                  <button
                    type="button"
                    onClick={() => {
                      const amount = prompt(`New budget in dollars for ${k.name} (empty: none)`, k.budget?.amount ?? '');
                      if (amount !== null) void act(api(`/admin/keys/${k.id}`, { method: 'PATCH', body: amount === '' ? { budget: null } : { budget: amount, period: k.budget?.period ?? 'month' } }));
                    }}
                  >
                    Budget…
                  </button>
                  <button type="button" onClick={() => void act(api<{ id: string; key: string }>(`/admin/keys/${k.id}/rotate`, { method: 'POST', body: { grace_seconds: 0 } }).then((r) => setSecret({ id: r.id, key: r.key })))}>
                    Rotate
                  </button>
                  <button type="button" onClick={() => void act(api(`/admin/keys/${k.id}/revoke`, { method: 'POST' }))}>
                    Revoke
                  </button>
                </>
              )}
            </td>
          </tr>
        ))}
      </Table>
    </section>
  );
}
