/**
 * The playground: one column per model, the same prompt to each, replies streamed side by
 * side. Each column keeps its own history (switching its model keeps it, as `replaceModel`
 * does in the library); a failed turn leaves the column's history as it was.
 */
import { useRef, useState } from 'preact/hooks';
import { api, streamChat, type ChatMessage, type Content, type ModelInfo, type StreamResult } from './api.js';
import { fmtInt, fmtMs, fmtNum, fmtPrice, fmtUsd } from './format.js';
import { renderMarkdown } from './markdown.js';

interface Turn {
  user: string;
  model: string;
  text: string;
  state: 'streaming' | 'done' | 'stopped' | 'error';
  error?: string;
  result?: StreamResult;
}
interface Column {
  id: number;
  model: string;
  history: ChatMessage[];
  turns: Turn[];
  abort?: AbortController;
}

let nextId = 1;
const newColumn = (model: string): Column => ({ id: nextId++, model, history: [], turns: [] });

function ModelPicker(props: { value: string; onPick: (model: string) => void; label: string }) {
  const [q, setQ] = useState(props.value);
  const [found, setFound] = useState<ModelInfo[]>([]);
  const search = async (text: string) => {
    setQ(text);
    setFound((await api<{ data: ModelInfo[] }>(`/admin/models?q=${encodeURIComponent(text)}`)).data.slice(0, 12));
  };
  const pick = (id: string) => {
    setQ(id);
    setFound([]);
    props.onPick(id);
  };
  return (
    <div class="picker">
      <input
        aria-label={props.label}
        value={q}
        onInput={(e) => void search(e.currentTarget.value)}
        onFocus={(e) => void search(e.currentTarget.value === props.value ? '' : e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') pick(q.trim());
          if (e.key === 'Escape') setFound([]);
        }}
      />
      {found.length > 0 && (
        <ul class="results" role="listbox">
          {found.map((m) => (
            <li key={m.id}>
              <button type="button" onClick={() => pick(m.id)}>
                <b>{m.id}</b> {fmtPrice(m.input_price)} in · {fmtPrice(m.output_price)} out · {m.context_length ? `${fmtInt(m.context_length)} ctx` : 'ctx ?'} · {m.input_modalities.join(', ')}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Stats({ r }: { r: StreamResult }) {
  return (
    <p class="stats">
      {r.provider ?? '?'} · {fmtInt(r.promptTokens)} in / {fmtInt(r.completionTokens)} out · {fmtUsd(r.cost)} · TTFT {fmtMs(r.ttftMs)} · {fmtNum(r.tokensPerSecond)} tok/s
    </p>
  );
}

export function Playground() {
  const [columns, setColumns] = useState<Column[]>([newColumn('sim/llama'), newColumn('sim/mini')]);
  const [system, setSystem] = useState('');
  const [temperature, setTemperature] = useState('');
  const [maxTokens, setMaxTokens] = useState('');
  const [prompt, setPrompt] = useState('');
  const [files, setFiles] = useState<{ name: string; type: string; url: string }[]>([]);
  const live = useRef(columns);
  live.current = columns;

  const update = (id: number, change: (c: Column) => Column) => {
    live.current = live.current.map((c) => (c.id === id ? change(c) : c));
    setColumns(live.current);
  };

  const run = async (col: Column, user: ChatMessage, replace: boolean) => {
    const abort = new AbortController();
    const base = replace ? col.history.slice(0, -2) : col.history;
    const turn: Turn = { user: typeof user.content === 'string' ? user.content : (user.content.find((p) => p.type === 'text') as { text: string } | undefined)?.text ?? '', model: col.model, text: '', state: 'streaming' };
    update(col.id, (c) => ({ ...c, abort, turns: [...(replace ? c.turns.slice(0, -1) : c.turns), turn] }));
    const setTurn = (t: Partial<Turn>) => update(col.id, (c) => ({ ...c, turns: [...c.turns.slice(0, -1), { ...(c.turns[c.turns.length - 1] as Turn), ...t }] }));
    const messages = [...(system ? [{ role: 'system', content: system }] : []), ...base, user];
    const params: Record<string, unknown> = {};
    if (temperature !== '') params.temperature = Number(temperature);
    if (maxTokens !== '') params.max_tokens = Number(maxTokens);
    let text = '';
    try {
      const result = await streamChat({ model: col.model, messages, ...params }, (t) => ((text = t), setTurn({ text: t })), abort.signal);
      setTurn({ text: result.text, state: 'done', result });
      update(col.id, (c) => ({ ...c, abort: undefined, history: [...base, user, { role: 'assistant', content: result.text }] }));
    } catch (err) {
      if (abort.signal.aborted) {
        // A stopped reply stays in the history as far as it got.
        setTurn({ state: 'stopped' });
        update(col.id, (c) => ({ ...c, abort: undefined, history: [...base, user, { role: 'assistant', content: text }] }));
      } else {
        setTurn({ state: 'error', error: (err as Error).message });
        update(col.id, (c) => ({ ...c, abort: undefined }));
      }
    }
  };

  const send = (e: Event) => {
    e.preventDefault();
    if (prompt.trim() === '' && files.length === 0) return;
    const content: Content =
      files.length === 0
        ? prompt
        : [
            { type: 'text', text: prompt },
            ...files.map((f) => (f.type.startsWith('image/') ? { type: 'image_url' as const, image_url: { url: f.url } } : { type: 'file' as const, file: { filename: f.name, file_data: f.url } })),
          ];
    const user: ChatMessage = { role: 'user', content };
    for (const c of live.current) void run(c, user, false);
    setPrompt('');
    setFiles([]);
  };

  const addFiles = (list: FileList | null | undefined) => {
    for (const f of Array.from(list ?? [])) {
      if (!f.type.startsWith('image/') && f.type !== 'application/pdf') continue;
      const reader = new FileReader();
      reader.onload = () => setFiles((fs) => [...fs, { name: f.name, type: f.type, url: String(reader.result) }]);
      reader.readAsDataURL(f);
    }
  };

  const exportJSON = () => {
    const cols = live.current;
    const json = {
      version: 1,
      models: cols.map((c) => c.model),
      keyed: true,
      system: system || null,
      params: { ...(temperature ? { temperature: Number(temperature) } : {}), ...(maxTokens ? { maxTokens: Number(maxTokens) } : {}) },
      history: Object.fromEntries(cols.map((c) => [c.model, [...(system ? [{ role: 'system', content: system }] : []), ...c.history]])),
      usage: Object.fromEntries(
        cols.map((c) => {
          const done = c.turns.filter((t) => t.result);
          const p = done.reduce((n, t) => n + (t.result?.promptTokens ?? 0), 0);
          const o = done.reduce((n, t) => n + (t.result?.completionTokens ?? 0), 0);
          return [c.model, { promptTokens: p, completionTokens: o, totalTokens: p + o, cost: done.reduce((n, t) => n + (t.result?.cost ?? 0), 0) }];
        }),
      ),
      turns: Object.fromEntries(cols.map((c) => [c.model, []])),
    };
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([JSON.stringify(json, null, 2)], { type: 'application/json' }));
    a.download = 'chat.json';
    a.click();
  };

  const streaming = columns.some((c) => c.abort);
  return (
    <section aria-label="Playground">
      <div class="toolbar">
        <label>
          System prompt <input value={system} onInput={(e) => setSystem(e.currentTarget.value)} />
        </label>
        <label>
          Temperature <input type="number" step="0.1" min="0" max="2" value={temperature} onInput={(e) => setTemperature(e.currentTarget.value)} />
        </label>
        <label>
          Max tokens <input type="number" min="1" value={maxTokens} onInput={(e) => setMaxTokens(e.currentTarget.value)} />
        </label>
        <button type="button" onClick={() => setColumns((live.current = [...live.current, newColumn('sim/llama')]))}>
          Add model
        </button>
        <button type="button" onClick={exportJSON}>
          Export JSON
        </button>
      </div>
      <div class="columns">
        {columns.map((c, i) => (
          <article class="column" key={c.id} data-column={i} aria-label={`Column ${i + 1}: ${c.model}`}>
            <div class="column-head">
              <ModelPicker label={`Model for column ${i + 1}`} value={c.model} onPick={(m) => update(c.id, (x) => ({ ...x, model: m }))} />
              {c.abort && (
                <button type="button" onClick={() => c.abort?.abort()}>
                  Stop
                </button>
              )}
              {!c.abort && c.turns.length > 0 && (
                <button type="button" onClick={() => void run(c, c.history[c.history.length - 2] ?? { role: 'user', content: c.turns[c.turns.length - 1]?.user ?? '' }, c.history.length >= 2)}>
                  Retry
                </button>
              )}
              {columns.length > 1 && (
                <button type="button" aria-label={`Remove column ${i + 1}`} onClick={() => setColumns((live.current = live.current.filter((x) => x.id !== c.id)))}>
                  ×
                </button>
              )}
            </div>
            <p class="history-size" data-history={c.history.length}>
              {c.history.length} messages in history
            </p>
            {c.turns.map((t) => (
              <div class={`turn ${t.state}`} data-state={t.state}>
                <p class="user">{t.user}</p>
                <p class="answered-by">{t.model}</p>
                {t.state === 'error' ? (
                  <p class="error" role="alert">
                    {t.error}
                  </p>
                ) : (
                  <div class="reply" dangerouslySetInnerHTML={{ __html: renderMarkdown(t.text) }} />
                )}
                {t.state === 'stopped' && <p class="stats">stopped</p>}
                {t.result && <Stats r={t.result} />}
              </div>
            ))}
          </article>
        ))}
      </div>
      <form
        class="composer"
        onSubmit={send}
        onDragOver={(e) => e.preventDefault()}
        onDrop={(e) => {
          e.preventDefault();
          addFiles(e.dataTransfer?.files);
        }}
      >
        <label for="prompt">Message (drop images or PDFs here)</label>
        <textarea
          id="prompt"
          value={prompt}
          rows={3}
          onInput={(e) => setPrompt(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send(e);
          }}
        />
        <input type="file" accept="image/*,application/pdf" multiple aria-label="Attach images or PDFs" onChange={(e) => addFiles(e.currentTarget.files)} />
        {files.map((f) => (
          <span class="chip">{f.name}</span>
        ))}
        <button type="submit">Send</button>
        {streaming && (
          <button type="button" onClick={() => live.current.forEach((c) => c.abort?.abort())}>
            Stop all
          </button>
        )}
      </form>
    </section>
  );
}
