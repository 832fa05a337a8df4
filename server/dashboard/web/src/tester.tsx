// The Tester: a draftMode conversation, optionally side by side with the
// published version, every reply with its trace; test suites when the
// daemon has them.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, enc, errorText, missing } from './api';
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

type TestRun = {
  id: string;
  status: string;
  total: number;
  passed: number;
  failed: number;
  durationMs: number;
  cases?: { test: string; status: string; turns: { user: string; reply: string; failures: { expect: string; want: unknown; got: unknown }[] }[] }[];
};

function TestSuites({ session, agent }: Pick<Ctx, 'session' | 'agent'>) {
  const [available, setAvailable] = useState<boolean | null>(null);
  const [run, setRun] = useState<TestRun | null>(null);
  const [msg, setMsg] = useState<{ text: string; error?: boolean } | null>(null);
  useEffect(() => {
    api('GET', `/agents/${enc(agent.id)}/test-runs?limit=1`)
      .then(() => setAvailable(true))
      .catch((e) => setAvailable(!missing(e)));
  }, [agent.id]);
  if (!available) return null;
  const start = async () => {
    setMsg({ text: 'Running tests…' });
    try {
      const r = await api<TestRun>('POST', `/agents/${enc(agent.id)}/test-runs`, { target: 'draft' });
      setRun(r);
      setMsg({ text: `Tests ${r.status}: ${r.passed} of ${r.total} passed.` });
    } catch (e) {
      if (missing(e)) setAvailable(false);
      setMsg({ text: e instanceof ApiError ? e.message : errorText(e), error: true });
    }
  };
  return (
    <section aria-labelledby="tests-h">
      <h2 id="tests-h">Test suites</h2>
      {can(session, 'agents:write') && (
        <button type="button" onClick={start}>
          Run tests
        </button>
      )}
      <Status msg={msg} />
      {run?.cases && (
        <ul class="cases">
          {run.cases.map((c) => (
            <li key={c.test} class={c.status}>
              <strong>{c.test}</strong>: {c.status}
              {c.turns
                .flatMap((t) => t.failures.map((f) => ({ t, f })))
                .map(({ t, f }, i) => (
                  <p key={i} class="muted">
                    “{t.user}” → {f.expect}: wanted {JSON.stringify(f.want)}, got {JSON.stringify(f.got)}
                  </p>
                ))}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
