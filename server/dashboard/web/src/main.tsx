// The flowyte dashboard: sign-in, the agents list and each agent's pages.
// Client routes live under /ui/ so no API path is ever shadowed.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, errorText, Session, setCSRF, setUnauthorizedHandler, enc } from './api';
import { DraftPage } from './draft';
import { TesterPage } from './tester';
import { ReviewPage } from './review';
import { VersionsPage } from './versions';
import { TrafficPage, WebhooksPage } from './ops';
import './style.css';

export type Agent = {
  id: string;
  name: string;
  description: string;
  createdAt: string;
  draft: { revision: string; updatedAt: string };
  published: { version: string; number: number } | null;
  latestVersion: string | null;
};

export type Ctx = { session: Session; agent: Agent; reloadAgent: () => Promise<void>; navigate: (to: string) => void };

export const can = (s: Session, scope: string) =>
  s.scopes.includes(scope) || (scope === 'agents:read' && s.scopes.includes('agents:write'));

export function when(t: string | null | undefined) {
  if (!t) return '';
  const d = new Date(t);
  return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

let navigateImpl = (to: string) => {
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
};
export const navigate = (to: string) => navigateImpl(to);

export function Link({ href, children, ...rest }: { href: string; children: any; [k: string]: any }) {
  return (
    <a
      href={href}
      {...rest}
      onClick={(e: MouseEvent) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}

// Status is a polite live region for results and errors.
export function Status({ msg }: { msg: { text: string; error?: boolean } | null }) {
  return (
    <p role={msg?.error ? 'alert' : 'status'} class={msg?.error ? 'msg error' : 'msg'}>
      {msg?.text ?? ''}
    </p>
  );
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [key, setKey] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr('');
    try {
      const s = await api<Session>('POST', '/session', { apiKey: key });
      setKey('');
      onSignedIn(s);
    } catch (e) {
      setErr(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>flowyte</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <label for="apikey">API key</label>
        <input
          id="apikey"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          placeholder="flowyte_sk_…"
          required
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {err && (
          <p role="alert" class="msg error">
            {err}
          </p>
        )}
      </form>
      <p class="hint">
        The key stays on the server: the dashboard keeps only a session cookie. A new daemon writes its first key to{' '}
        <code>DATA/bootstrap.key</code>.
      </p>
    </main>
  );
}

function Agents({ session }: { session: Session }) {
  const [agents, setAgents] = useState<Agent[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [msg, setMsg] = useState<{ text: string; error?: boolean } | null>(null);
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const load = async (after?: string) => {
    try {
      const r = await api<{ data: Agent[]; nextCursor: string | null }>(
        'GET',
        '/agents?limit=100' + (after ? '&cursor=' + enc(after) : ''),
      );
      setAgents((prev) => (after && prev ? [...prev, ...r.data] : r.data));
      setCursor(r.nextCursor);
    } catch (e) {
      setMsg({ text: errorText(e), error: true });
    }
  };
  useEffect(() => {
    load();
  }, []);
  const create = async (e: Event) => {
    e.preventDefault();
    try {
      const a = await api<Agent>('POST', '/agents', { name, description: description || undefined });
      navigate(`/ui/agents/${a.id}/draft`);
    } catch (e) {
      setMsg({ text: errorText(e), error: true });
    }
  };
  const write = can(session, 'agents:write');
  return (
    <>
      <div class="title-row">
        <PageTitle>Agents</PageTitle>
        {write && !creating && (
          <button type="button" onClick={() => setCreating(true)}>
            New agent
          </button>
        )}
      </div>
      {creating && (
        <form class="card" onSubmit={create} aria-label="New agent">
          <label for="agent-name">Name</label>
          <input id="agent-name" value={name} required onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          <label for="agent-desc">Description</label>
          <input id="agent-desc" value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
          <div class="buttons">
            <button type="submit">Create agent</button>
            <button type="button" class="secondary" onClick={() => setCreating(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      <Status msg={msg} />
      {agents === null ? (
        <p>Loading…</p>
      ) : agents.length === 0 ? (
        <p>No agents yet.</p>
      ) : (
        <div class="scroll">
          <table class="list">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Published</th>
                <th scope="col">Latest</th>
                <th scope="col">Draft updated</th>
              </tr>
            </thead>
            <tbody>
              {agents.map((a) => (
                <tr key={a.id}>
                  <td>
                    <Link href={`/ui/agents/${a.id}/draft`}>{a.name}</Link>
                    {a.description && <div class="muted">{a.description}</div>}
                  </td>
                  <td>{a.published ? a.published.version : 'never'}</td>
                  <td>{a.latestVersion ?? '—'}</td>
                  <td>{when(a.draft.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {cursor && (
        <button type="button" class="secondary" onClick={() => load(cursor)}>
          Load more agents
        </button>
      )}
    </>
  );
}

// PageTitle is the page's h1; it takes focus after each navigation so
// keyboard and screen-reader users land on the new page.
export function PageTitle({ children }: { children: any }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (document.activeElement === document.body || document.activeElement?.closest('nav')) ref.current?.focus();
  }, []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

const tabs = ['Draft', 'Tester', 'Review', 'Versions', 'Traffic', 'Webhooks'];

function AgentPage({ session, id, tab }: { session: Session; id: string; tab: string }) {
  const [agent, setAgent] = useState<Agent | null>(null);
  const [err, setErr] = useState('');
  const reloadAgent = async () => {
    try {
      setAgent(await api<Agent>('GET', `/agents/${enc(id)}`));
    } catch (e) {
      setErr(errorText(e));
    }
  };
  useEffect(() => {
    setAgent(null);
    reloadAgent();
  }, [id]);
  if (err)
    return (
      <p role="alert" class="msg error">
        {err}
      </p>
    );
  if (!agent) return <p>Loading…</p>;
  const ctx: Ctx = { session, agent, reloadAgent, navigate };
  const title = tabs.find((t) => t.toLowerCase() === tab) ?? 'Draft';
  return (
    <>
      <div class="agent-head">
        <p class="crumbs">
          <Link href="/ui/agents">Agents</Link> / <span>{agent.name}</span>{' '}
          <span class="muted">
            {agent.published ? `published ${agent.published.version}` : 'never published'}
          </span>
        </p>
        <nav aria-label="Agent pages" class="tabs">
          {tabs.map((t) => (
            <Link key={t} href={`/ui/agents/${id}/${t.toLowerCase()}`} aria-current={t === title ? 'page' : undefined}>
              {t}
            </Link>
          ))}
        </nav>
      </div>
      <PageTitle key={title}>
        {title} <span class="muted small">{agent.name}</span>
      </PageTitle>
      {title === 'Draft' && <DraftPage {...ctx} />}
      {title === 'Tester' && <TesterPage {...ctx} />}
      {title === 'Review' && <ReviewPage {...ctx} />}
      {title === 'Versions' && <VersionsPage {...ctx} />}
      {title === 'Traffic' && <TrafficPage {...ctx} />}
      {title === 'Webhooks' && <WebhooksPage {...ctx} />}
    </>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    addEventListener('popstate', onPop);
    setUnauthorizedHandler(() => {
      setCSRF('');
      setSession(null);
    });
    api<Session>('GET', '/session')
      .then((s) => {
        setCSRF(s.csrfToken);
        setSession(s);
      })
      .catch((e) => setSession(e instanceof ApiError && e.status === 401 ? null : null));
    return () => removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => {
    if (path === '/' || path === '/ui' || path === '/ui/' || path === '/index.html') {
      history.replaceState(null, '', '/ui/agents');
      setPath('/ui/agents');
    }
  }, [path]);
  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null)
    return (
      <SignIn
        onSignedIn={(s) => {
          setCSRF(s.csrfToken);
          setSession(s);
        }}
      />
    );
  const signOut = async () => {
    try {
      await api('DELETE', '/session');
    } catch {
      // the session is gone either way
    }
    setCSRF('');
    setSession(null);
  };
  const m = /^\/ui\/agents\/([^/]+)(?:\/([a-z]+))?\/?$/.exec(path);
  return (
    <>
      <header class="top">
        <Link href="/ui/agents" class="brand">
          flowyte
        </Link>
        <nav aria-label="Main">
          <Link href="/ui/agents" aria-current={m ? undefined : 'page'}>
            Agents
          </Link>
        </nav>
        <span class="who" title={session.scopes.join(', ')}>
          {session.name}
        </span>
        <button type="button" class="secondary" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>
        {m ? (
          <AgentPage key={m[1]} session={session} id={decodeURIComponent(m[1])} tab={m[2] ?? 'draft'} />
        ) : (
          <Agents session={session} />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
