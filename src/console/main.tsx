/**
 * The console: a single page served by the gateway at `/`. It logs in with a key (the master
 * key, or a virtual key), asks the gateway who that is, and shows the pages the key may use.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, storedKey, storeKey, type WhoAmI } from './api.js';
import { KeysPage } from './keys.js';
import { LogsPage } from './logs.js';
import { Playground } from './playground.js';
import { RoutingPage } from './routing.js';
import { SpendPage } from './spend.js';

const PAGES = [
  { path: '/playground', title: 'Playground', admin: false },
  { path: '/spend', title: 'Spend', admin: false },
  { path: '/logs', title: 'Logs', admin: false },
  { path: '/routing', title: 'Routing', admin: true },
  { path: '/keys', title: 'Keys', admin: true },
] as const;

function currentPath(): string {
  const p = location.pathname.replace(/\/+$/, '');
  return PAGES.some((x) => x.path === p) ? p : '/playground';
}

function Login(props: { onLogin: (who: WhoAmI) => void; error?: string | undefined }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(props.error);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const who = await api<WhoAmI>('/admin/whoami', { key });
      storeKey(key);
      props.onLogin(who);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <main class="login">
      <h1>switchboard console</h1>
      <form onSubmit={submit}>
        <label for="login-key">Key (the master key or a virtual key)</label>
        <input id="login-key" type="password" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} autofocus />
        <button type="submit">Log in</button>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
    </main>
  );
}

function App() {
  const [who, setWho] = useState<WhoAmI | null>(null);
  const [checking, setChecking] = useState(true);
  const [path, setPath] = useState(currentPath());

  useEffect(() => {
    // `#key=...` (what `switchboard console` prints) logs in and is wiped from the address bar.
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('key');
    if (fromHash) {
      storeKey(fromHash);
      history.replaceState(null, '', location.pathname);
    }
    if (!storedKey()) return setChecking(false);
    api<WhoAmI>('/admin/whoami')
      .then(setWho)
      .catch(() => storeKey(null))
      .finally(() => setChecking(false));
    const onPop = () => setPath(currentPath());
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);

  if (checking) return <p class="loading">Loading…</p>;
  if (!who) return <Login onLogin={setWho} />;

  const go = (e: MouseEvent, to: string) => {
    e.preventDefault();
    history.pushState(null, '', to);
    setPath(to);
  };
  const page = PAGES.find((p) => p.path === path) ?? PAGES[0];
  return (
    <>
      <header>
        <nav aria-label="Pages">
          <strong class="brand">switchboard</strong>
          {PAGES.filter((p) => !p.admin || who.admin).map((p) => (
            <a href={p.path} aria-current={p.path === page.path ? 'page' : undefined} onClick={(e) => go(e, p.path)}>
              {p.title}
            </a>
          ))}
        </nav>
        <span class="who">
          {who.kind === 'master' ? 'master key' : who.key_id}
          {who.admin ? ' (admin)' : ''}
          <button
            type="button"
            class="link"
            onClick={() => {
              storeKey(null);
              setWho(null);
            }}
          >
            Log out
          </button>
        </span>
      </header>
      <main id="page" data-page={page.path.slice(1)}>
        {page.admin && !who.admin ? (
          <p class="error" role="alert">
            The {page.title} page needs the master key or a key with the admin role.
          </p>
        ) : page.path === '/playground' ? (
          <Playground />
        ) : page.path === '/spend' ? (
          <SpendPage />
        ) : page.path === '/logs' ? (
          <LogsPage who={who} />
        ) : page.path === '/routing' ? (
          <RoutingPage />
        ) : (
          <KeysPage />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
