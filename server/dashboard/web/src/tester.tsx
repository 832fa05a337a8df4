// The Tester: a draftMode conversation, optionally side by side with the
// published version, every reply with its trace; test suites when the
// daemon has them.
import { useEffect, useState } from 'preact/hooks';
import { api, enc, errorText, missing } from './api';
import { can, Ctx, Status } from './main';

type Trace = { guardrail?: unknown; playbook?: unknown; knowledge?: unknown; skillCalls?: unknown[]; [k: string]: unknown };
type Turn = { user: string; reply?: string; trace?: Trace; servedBy?: string; error?: string };
type Side = { label: string; draftMode: boolean; sid: string | null; turns: Turn[]; error?: string };

function show(v: unknown): string {
  if (v == null) return '';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(show).join(', ');
  return JSON.stringify(v);
}

function TraceView({ t }: { t: Trace }) {
  const rows: [string, string][] = [];
  if (t.guardrail) rows.push(['Guardrail', show(t.guardrail)]);
  if (t.playbook) rows.push(['Playbook', show(t.playbook)]);
  if (t.knowledge) rows.push(['Knowledge', show(t.knowledge)]);
  for (const c of t.skillCalls ?? []) rows.push(['Skill call', JSON.stringify(c, null, 1)]);
  for (const [k, v] of Object.entries(t)) if (!['guardrail', 'playbook', 'knowledge', 'skillCalls'].includes(k) && v != null) rows.push([k, show(v)]);
  if (!rows.length) return <p class="trace muted">Trace: fallback (nothing matched)</p>;
  return (
    <dl class="trace" aria-label="Trace">
      {rows.map(([k, v], i) => (
        <div key={i}>
          <dt>{k}</dt>
          <dd>
            <code>{v}</code>
          </dd>
        </div>
      ))}
    </dl>
  );
}

function Conversation({ side }: { side: Side }) {
  return (
    <section class="conversation" aria-label={`${side.label} conversation`}>
      <h2 class="h3">{side.label}</h2>
      {side.error && <p class="msg error">{side.error}</p>}
      <ol class="turns" aria-live="polite">
        {side.turns.map((t, i) => (
          <li key={i}>
            <p class="you">
              <span class="who-said">You:</span> {t.user}
            </p>
            {t.error ? (
              <p class="msg error">{t.error}</p>
            ) : t.reply === undefined ? (
              <p class="muted">…</p>
            ) : (
              <div class="bot">
                <p>
                  <span class="who-said">Agent{t.servedBy ? ` (${t.servedBy})` : ''}:</span> <span class="reply">{t.reply}</span>
                </p>
                {t.trace && <TraceView t={t.trace} />}
              </div>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}

export function TesterPage({ session, agent }: Ctx) {
  const chat = can(session, 'chat:write');
  const [text, setText] = useState('');
  const [compare, setCompare] = useState(false);
  const [sides, setSides] = useState<Side[]>([]);
  const [busy, setBusy] = useState(false);
  const reset = () =>
    setSides([
      { label: 'Draft', draftMode: true, sid: null, turns: [] },
      { label: `Published${agent.published ? ' ' + agent.published.version : ''}`, draftMode: false, sid: null, turns: [] },
    ]);
  useEffect(reset, [agent.id]);

  const ask = async (side: Side, msg: string): Promise<Side> => {
    let sid = side.sid;
    const turns = [...side.turns];
    try {
      if (!sid) sid = (await api<{ id: string }>('POST', '/chat/sessions', { agentId: agent.id, draftMode: side.draftMode })).id;
      const r = await api<any>('POST', `/chat/sessions/${enc(sid!)}/messages`, { text: msg });
      const by = r.servedBy?.version ?? (r.servedBy?.draftRevision ? 'draft ' + String(r.servedBy.draftRevision).slice(0, 8) : '');
      turns.push({ user: msg, reply: r.reply?.text ?? '', trace: r.trace ?? {}, servedBy: by });
    } catch (e) {
      turns.push({ user: msg, error: errorText(e) });
    }
    return { ...side, sid, turns };
  };

  const send = async (e: Event) => {
    e.preventDefault();
    const msg = text.trim();
    if (!msg) return;
    setBusy(true);
    setText('');
    const active = compare ? sides : sides.slice(0, 1);
    const next = await Promise.all(active.map((s) => ask(s, msg)));
    setSides((prev) => prev.map((s, i) => next[i] ?? s));
    setBusy(false);
  };

  if (!chat) return <p class="msg">Your API key cannot chat with agents (it needs the chat:write scope).</p>;
  return (
    <>
      <form onSubmit={send} class="chat-form" aria-label="Ask the agent">
        <label for="message">Message</label>
        <div class="send-row">
          <input id="message" value={text} autocomplete="off" onInput={(e) => setText((e.target as HTMLInputElement).value)} />
          <button type="submit" disabled={busy}>
            Send
          </button>
        </div>
        <div class="buttons">
          <label class="check">
            <input type="checkbox" checked={compare} disabled={!agent.published} onChange={(e) => setCompare((e.target as HTMLInputElement).checked)} />
            Side by side with the published version
          </label>
          <button type="button" class="secondary" onClick={reset}>
            New conversation
          </button>
        </div>
        {!agent.published && <p class="muted">This agent has never been published, so only the draft can answer.</p>}
      </form>
      <div class={compare ? 'sides two' : 'sides'}>
        {(compare ? sides : sides.slice(0, 1)).map((s) => (
          <Conversation key={s.label} side={s} />
        ))}
      </div>
      <TestSuites session={session} agent={agent} />
    </>
  );
}

export type Failure = { expect: string; want: unknown; got: unknown };
type TestRun = {
  id: string;
  target: string;
  version: string | null;
  draftRevision: string | null;
  status: string;
  total: number;
  passed: number;
  failed: number;
  durationMs: number;
  createdAt: string;
  cases?: { test: string; status: string; turns: { user: string; reply: string; failures: Failure[] | null }[] }[];
};

// val shows a want or got value the way the test file would say it.
export const val = (v: unknown) => (v === undefined ? 'nothing' : typeof v === 'string' ? `“${v}”` : JSON.stringify(v));

function RunResult({ run }: { run: TestRun }) {
  const on = run.version ?? (run.draftRevision ? `draft ${run.draftRevision.slice(0, 8)}` : run.target);
  return (
    <div class="test-run">
      <p>
        <strong class={run.status === 'passed' ? 'ok' : 'bad'}>{run.status === 'passed' ? 'Passed' : 'Failed'}</strong>: {run.passed} of{' '}
        {run.total} tests passed on {on} <span class="muted">({run.durationMs} ms)</span>
      </p>
      <ul class="cases">
        {(run.cases ?? []).map((c) => (
          <li key={c.test} class={`card ${c.status}`}>
            <h3 class="h4">
              <span class={c.status === 'passed' ? 'badge ok' : 'badge bad'}>{c.status === 'passed' ? 'Passed' : 'Failed'}</span> {c.test}
            </h3>
            <ol class="test-turns">
              {c.turns.map((t, i) => (
                <li key={i} class={t.failures?.length ? 'failed' : 'passed'}>
                  <p>
                    <span class="who-said">Turn {i + 1}, you:</span> {t.user}
                  </p>
                  <p>
                    <span class="who-said">Agent:</span> {t.reply}
                  </p>
                  {(t.failures ?? []).length > 0 && (
                    <ul class="diags" aria-label={`Failures of ${c.test}, turn ${i + 1}`}>
                      {t.failures!.map((f, j) => (
                        <li key={j} class="error">
                          <code>{f.expect}</code>: wanted {val(f.want)}, got {val(f.got)}
                        </li>
                      ))}
                    </ul>
                  )}
                </li>
              ))}
            </ol>
          </li>
        ))}
      </ul>
    </div>
  );
}

function TestSuites({ session, agent }: Pick<Ctx, 'session' | 'agent'>) {
  const id = enc(agent.id);
  const [available, setAvailable] = useState<boolean | null>(null);
  const [run, setRun] = useState<TestRun | null>(null);
  const [target, setTarget] = useState('draft');
  const [versions, setVersions] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ text: string; error?: boolean } | null>(null);
  useEffect(() => {
    setRun(null);
    api<{ data: TestRun[] }>('GET', `/agents/${id}/test-runs?limit=1`)
      .then(async (r) => {
        setAvailable(true);
        if (r.data[0]) setRun(await api<TestRun>('GET', `/agents/${id}/test-runs/${enc(r.data[0].id)}`));
      })
      .catch((e) => setAvailable(!missing(e)));
    api<{ data: { id: string }[] }>('GET', `/agents/${id}/versions?limit=100`)
      .then((r) => setVersions(r.data.map((v) => v.id)))
      .catch(() => setVersions([]));
  }, [agent.id]);
  if (!available) return null;
  const start = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setMsg({ text: 'Running tests…' });
    try {
      const r = await api<TestRun>('POST', `/agents/${id}/test-runs`, { target });
      setRun(r);
      setMsg({ text: r.total === 0 ? 'This agent has no tests yet: add files under tests/.' : `Tests ${r.status}: ${r.passed} of ${r.total} passed.` });
    } catch (err) {
      if (missing(err)) setAvailable(false);
      setMsg({ text: errorText(err), error: true });
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="tests-h">
      <h2 id="tests-h">Test suites</h2>
      {can(session, 'agents:write') ? (
        <form onSubmit={start} class="inline-form" aria-label="Run tests">
          <label for="test-target">Run against</label>
          <select id="test-target" value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
            <option value="draft">draft</option>
            {agent.published && <option value="published">published ({agent.published.version})</option>}
            {versions.map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
          <button type="submit" disabled={busy}>
            Run tests
          </button>
        </form>
      ) : (
        <p class="muted">Running tests needs the agents:write scope; the latest run is shown.</p>
      )}
      <Status msg={msg} />
      {run && <RunResult run={run} />}
    </section>
  );
}
