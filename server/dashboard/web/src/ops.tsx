// Traffic (channels and outcomes, §12) and Webhooks (§9). Routes a daemon
// does not have yet are hidden with a note instead of failing.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, enc, errorText, missing } from './api';
import { can, Ctx, Status, when } from './main';

type Share = { version: string; weight: number };
type Channel = { channel: string; serves: string | null; mode: string; split: Share[] | null };
type Outcome = { version: string; sessions: number; messages: number; fallbackRate: number; guardrailBlocks: number; playbooksCompleted: number; handoffs: number };

const metrics: [keyof Outcome, string, (o: Outcome) => string][] = [
  ['sessions', 'Sessions', (o) => String(o.sessions)],
  ['messages', 'Messages', (o) => String(o.messages)],
  ['fallbackRate', 'Fallback rate', (o) => `${Math.round(o.fallbackRate * 1000) / 10}%`],
  ['guardrailBlocks', 'Guardrail blocks', (o) => String(o.guardrailBlocks)],
  ['playbooksCompleted', 'Playbooks completed', (o) => String(o.playbooksCompleted)],
  ['handoffs', 'Handoffs', (o) => String(o.handoffs)],
];

// fieldWords names a request member the way the Traffic form labels it.
function fieldWords(pointer: string | undefined): string {
  const m = /^\/split\/(\d+)\/(version|weight)$/.exec(pointer ?? '');
  if (m) return `${m[2] === 'version' ? 'Version' : 'Weight'} ${+m[1] + 1}`;
  if (pointer === '/split') return 'The split';
  if (pointer === '/version') return 'Version';
  return pointer ? pointer.replace(/^\//, '') : '';
}

function problemLines(e: unknown): string[] {
  if (!(e instanceof ApiError)) return [];
  return (e.problem.errors ?? []).map((d) => {
    const f = fieldWords(d.pointer);
    return f ? `${f}: ${d.message}` : d.message;
  });
}

const describe = (c: Channel) =>
  c.mode === 'split' && c.split
    ? `split: ${c.split.map((s) => `${s.version} ${s.weight}%`).join(', ')}`
    : c.mode === 'pin'
      ? `pinned to ${c.serves}`
      : `follows the published version (${c.serves ?? 'nothing published'})`;

const sorted = (vs: string[]) => [...vs].sort((a, b) => +a.slice(1) - +b.slice(1));

export function TrafficPage({ session, agent }: Ctx) {
  const id = enc(agent.id);
  const [channels, setChannels] = useState<Channel[] | null | 'missing'>(null);
  const [versions, setVersions] = useState<string[]>([]);
  const [picked, setPicked] = useState<string[] | null>(null);
  const [outcomes, setOutcomes] = useState<Outcome[] | null | 'missing'>(null);
  const [period, setPeriod] = useState({ from: '', to: '' });
  const [msg, setMsg] = useState<{ text: string; error?: boolean } | null>(null);
  const load = async () => {
    try {
      const [ch, v] = await Promise.all([
        api<Channel[]>('GET', `/agents/${id}/channels`),
        api<{ data: { id: string }[] }>('GET', `/agents/${id}/versions?limit=100`),
      ]);
      setChannels(ch);
      setVersions(v.data.map((x) => x.id));
      // Compare what the channels serve now, or else the two newest.
      setPicked((p) => {
        if (p) return p;
        const served = [...new Set(ch.flatMap((c) => (c.split ? c.split.map((s) => s.version) : c.serves ? [c.serves] : [])))];
        return sorted(served.length > 1 ? served : v.data.slice(0, 2).map((x) => x.id));
      });
    } catch (e) {
      if (missing(e)) setChannels('missing');
      else setMsg({ text: errorText(e), error: true });
    }
  };
  const loadOutcomes = async (vs: string[]) => {
    if (!vs.length) return setOutcomes([]);
    // Whole UTC days: from the start of From to the end of To.
    let q = `versions=${vs.map(enc).join(',')}`;
    if (period.from) q += `&from=${enc(period.from + 'T00:00:00Z')}`;
    if (period.to) q += `&to=${enc(new Date(Date.parse(period.to + 'T00:00:00Z') + 86400000).toISOString().replace('.000', ''))}`;
    try {
      const r = await api<{ data: Outcome[] }>('GET', `/agents/${id}/outcomes?${q}`);
      setOutcomes(r.data);
    } catch (e) {
      setOutcomes(missing(e) ? 'missing' : []);
      if (!missing(e)) setMsg({ text: errorText(e), error: true });
    }
  };
  useEffect(() => {
    setPicked(null);
    load();
  }, [agent.id]);
  useEffect(() => {
    if (picked) loadOutcomes(picked);
  }, [picked, period]);
  const editable = can(session, 'agents:write');
  return (
    <>
      <Status msg={msg} />
      <section aria-labelledby="ch-h">
        <h2 id="ch-h">Channels</h2>
        {channels === 'missing' ? (
          <p class="muted">Every channel follows the published version (pins and splits are not available on this daemon).</p>
        ) : !channels ? (
          <p>Loading…</p>
        ) : (
          <ul class="channels">
            {channels.map((c) => (
              <ChannelCard
                key={`${c.channel}:${c.mode}:${JSON.stringify(c.split)}:${c.serves}`}
                agentId={agent.id}
                c={c}
                versions={versions}
                editable={editable}
                onSaved={async (t) => {
                  setMsg({ text: t });
                  await load();
                  if (picked) await loadOutcomes(picked);
                }}
              />
            ))}
          </ul>
        )}
        {!agent.published && <p class="muted">Nothing is published yet: publish a version from Review before routing traffic.</p>}
      </section>
      <section aria-labelledby="out-h">
        <h2 id="out-h">Outcomes per version</h2>
        {outcomes === 'missing' ? (
          <p class="muted">Outcomes are not available on this daemon.</p>
        ) : (
          <>
            {versions.length > 0 && (
              <fieldset class="picker">
                <legend>Versions to compare</legend>
                {sorted(versions).map((v) => (
                  <label key={v} class="check">
                    <input
                      type="checkbox"
                      checked={!!picked?.includes(v)}
                      onChange={(e) => {
                        const on = (e.target as HTMLInputElement).checked;
                        setPicked(sorted(on ? [...(picked ?? []), v] : (picked ?? []).filter((x) => x !== v)));
                      }}
                    />
                    {v}
                  </label>
                ))}
              </fieldset>
            )}
            <div class="field-row">
              <label for="out-from">From (UTC day)</label>
              <input id="out-from" type="date" value={period.from} onChange={(e) => setPeriod({ ...period, from: (e.target as HTMLInputElement).value })} />
              <label for="out-to">To (UTC day)</label>
              <input id="out-to" type="date" value={period.to} onChange={(e) => setPeriod({ ...period, to: (e.target as HTMLInputElement).value })} />
            </div>
            {!outcomes ? (
              <p>Loading…</p>
            ) : outcomes.length === 0 ? (
              <p>Pick one or more versions to compare.</p>
            ) : (
              <div class="scroll">
                <table class="list outcomes">
                  <caption class="sr-only">Outcomes per version, side by side</caption>
                  <thead>
                    <tr>
                      <th scope="col">Outcome</th>
                      {outcomes.map((o) => (
                        <th scope="col" key={o.version}>{o.version}</th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {metrics.map(([k, label, fmt]) => (
                      <tr key={k}>
                        <th scope="row">{label}</th>
                        {outcomes.map((o) => (
                          <td key={o.version} data-version={o.version} data-metric={k}>{fmt(o)}</td>
                        ))}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            <p class="muted small">Draft conversations from the Tester are never counted.</p>
          </>
        )}
      </section>
    </>
  );
}

function ChannelCard({ agentId, c, versions, editable, onSaved }: { agentId: string; c: Channel; versions: string[]; editable: boolean; onSaved: (t: string) => void }) {
  const ch = c.channel;
  const [mode, setMode] = useState(c.mode === 'follow' ? 'pin' : c.mode);
  const [pin, setPin] = useState(c.serves ?? versions[0] ?? '');
  const [split, setSplit] = useState<Share[]>(
    c.split ?? (versions.length >= 2 ? [{ version: versions[1], weight: 90 }, { version: versions[0], weight: 10 }] : versions.map((v) => ({ version: v, weight: 100 }))),
  );
  const [err, setErr] = useState<{ text: string; lines: string[] } | null>(null);
  const [busy, setBusy] = useState(false);
  const put = async (body: unknown, done: string) => {
    setBusy(true);
    setErr(null);
    try {
      await api('PUT', `/agents/${enc(agentId)}/channels/${enc(ch)}`, body);
      onSaved(done);
    } catch (e) {
      setErr({ text: missing(e) ? 'Changing channels is not available on this daemon.' : errorText(e), lines: problemLines(e) });
    } finally {
      setBusy(false);
    }
  };
  const save = (e: Event) => {
    e.preventDefault();
    if (mode === 'pin') put({ mode, version: pin }, `Channel ${ch} is pinned to ${pin}.`);
    else put({ mode, split }, `Channel ${ch} is split: ${split.map((s) => `${s.version} ${s.weight}%`).join(', ')}.`);
  };
  const total = split.reduce((n, s) => n + (Number.isFinite(s.weight) ? s.weight : 0), 0);
  const setRow = (i: number, patch: Partial<Share>) => setSplit(split.map((x, j) => (j === i ? { ...x, ...patch } : x)));
  return (
    <li class="card channel" aria-labelledby={`ch-${ch}-h`}>
      <h3 id={`ch-${ch}-h`}>{ch}</h3>
      <p>
        <span class={`badge mode-${c.mode}`}>{c.mode}</span> Serves <strong>{c.serves ?? 'nothing'}</strong>: {describe(c)}
      </p>
      {editable && versions.length > 0 && (
        <>
          {c.mode !== 'follow' && (
            <div class="buttons">
              <button type="button" class="secondary" disabled={busy} onClick={() => put({ mode: 'follow' }, `Channel ${ch} follows the published version again.`)}>
                Return {ch} to follow
              </button>
            </div>
          )}
          <form onSubmit={save} aria-label={`Route channel ${ch}`} class="channel-form">
            <fieldset class="modes">
              <legend>Route {ch} to</legend>
              <label class="check">
                <input type="radio" name={`mode-${ch}`} value="pin" checked={mode === 'pin'} onChange={() => setMode('pin')} />
                One version (pin)
              </label>
              <label class="check">
                <input type="radio" name={`mode-${ch}`} value="split" checked={mode === 'split'} onChange={() => setMode('split')} />
                Several versions by weight (split)
              </label>
            </fieldset>
            {mode === 'pin' && (
              <div class="field-row">
                <label for={`pin-${ch}`}>Version to pin</label>
                <select id={`pin-${ch}`} value={pin} onChange={(e) => setPin((e.target as HTMLSelectElement).value)}>
                  {versions.map((v) => (
                    <option key={v} value={v}>{v}</option>
                  ))}
                </select>
              </div>
            )}
            {mode === 'split' && (
              <>
                <ol class="split-rows">
                  {split.map((s, i) => (
                    <li key={i} class="split-row">
                      <label for={`sv-${ch}-${i}`}>Version {i + 1}</label>
                      <select id={`sv-${ch}-${i}`} value={s.version} onChange={(e) => setRow(i, { version: (e.target as HTMLSelectElement).value })}>
                        {versions.map((v) => (
                          <option key={v} value={v}>{v}</option>
                        ))}
                      </select>
                      <label for={`sw-${ch}-${i}`}>Weight {i + 1} (%)</label>
                      <input
                        id={`sw-${ch}-${i}`}
                        type="number"
                        inputMode="numeric"
                        min={1}
                        max={100}
                        step={1}
                        value={Number.isFinite(s.weight) ? s.weight : ''}
                        onInput={(e) => setRow(i, { weight: parseFloat((e.target as HTMLInputElement).value) })}
                      />
                      {split.length > 2 && (
                        <button type="button" class="secondary" aria-label={`Remove version ${i + 1} from the ${ch} split`} onClick={() => setSplit(split.filter((_, j) => j !== i))}>
                          Remove
                        </button>
                      )}
                    </li>
                  ))}
                </ol>
                <p class={total === 100 ? 'muted' : 'warn'} aria-live="polite">
                  Weights total {total}%{total === 100 ? '' : ' (they must total 100%)'}
                </p>
                {split.length < 5 && (
                  <button
                    type="button"
                    class="secondary"
                    onClick={() => setSplit([...split, { version: versions.find((v) => !split.some((s) => s.version === v)) ?? versions[0], weight: 0 }])}
                  >
                    Add a version to the {ch} split
                  </button>
                )}
              </>
            )}
            <div class="buttons">
              <button type="submit" disabled={busy}>
                {mode === 'pin' ? `Pin ${ch}` : `Save ${ch} split`}
              </button>
            </div>
            {err && (
              <div role="alert" class="msg error">
                <p>{err.text}</p>
                {err.lines.length > 0 && (
                  <ul>
                    {err.lines.map((l, i) => (
                      <li key={i}>{l}</li>
                    ))}
                  </ul>
                )}
              </div>
            )}
          </form>
        </>
      )}
    </li>
  );
}

type Webhook = { id: string; url: string; events: string[]; agentId: string | null; description: string; createdAt: string; secret?: string };
type Delivery = { id: string; eventId: string; type: string; attempt: number; status: string; responseCode: number | null; error: string; at: string; durationMs: number };

const eventTypes = ['version.published', 'version.rolled_back', 'draft.updated', 'channel.updated'];

export function WebhooksPage({ session, agent }: Ctx) {
  const [hooks, setHooks] = useState<Webhook[] | null>(null);
  const [msg, setMsg] = useState<{ text: string; error?: boolean } | null>(null);
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<string[]>(['version.published', 'version.rolled_back']);
  const [secret, setSecret] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const allowed = can(session, 'webhooks:write');
  const load = async () => {
    try {
      const r = await api<{ data: Webhook[] }>('GET', '/webhooks');
      setHooks(r.data.filter((h) => !h.agentId || h.agentId === agent.id));
    } catch (e) {
      setMsg({ text: errorText(e), error: true });
    }
  };
  useEffect(() => {
    if (allowed) load();
  }, [agent.id]);
  if (!allowed) return <p class="msg">Your API key cannot manage webhooks (it needs the webhooks:write scope).</p>;
  const add = async (e: Event) => {
    e.preventDefault();
    try {
      const h = await api<Webhook>('POST', '/webhooks', { url, events, agentId: agent.id });
      setSecret(h.secret ?? '');
      setUrl('');
      setMsg({ text: `Webhook ${h.id} added.` });
      await load();
    } catch (err) {
      setMsg({ text: errorText(err), error: true });
    }
  };
  const del = async (h: Webhook) => {
    if (!confirm(`Delete the webhook to ${h.url}?`)) return;
    try {
      await api('DELETE', `/webhooks/${enc(h.id)}`);
      setMsg({ text: `Webhook ${h.id} deleted.` });
      await load();
    } catch (err) {
      setMsg({ text: errorText(err), error: true });
    }
  };
  return (
    <>
      <Status msg={msg} />
      {secret && (
        <p class="card">
          Signing secret (shown once): <code>{secret}</code>
        </p>
      )}
      <section aria-labelledby="wh-h">
        <h2 id="wh-h">Endpoints</h2>
        {!hooks ? (
          <p>Loading…</p>
        ) : hooks.length === 0 ? (
          <p>No webhooks for this agent.</p>
        ) : (
          <ul class="hooks">
            {hooks.map((h) => (
              <li key={h.id} class="card">
                <p>
                  <code>{h.url}</code> <span class="muted">{h.agentId ? 'this agent' : 'every agent'}: {h.events.join(', ')}</span>
                </p>
                <div class="buttons">
                  <button type="button" class="secondary" aria-expanded={open === h.id} onClick={() => setOpen(open === h.id ? null : h.id)}>
                    Delivery log
                  </button>
                  <button type="button" class="danger" aria-label={`Delete webhook ${h.url}`} onClick={() => del(h)}>
                    Delete
                  </button>
                </div>
                {open === h.id && <Deliveries hook={h} />}
              </li>
            ))}
          </ul>
        )}
      </section>
      <form onSubmit={add} class="card" aria-label="Add webhook">
        <h2 class="h3">Add webhook</h2>
        <label for="wh-url">Endpoint URL</label>
        <input id="wh-url" type="url" required value={url} onInput={(e) => setUrl((e.target as HTMLInputElement).value)} />
        <fieldset>
          <legend>Events</legend>
          {eventTypes.map((t) => (
            <label key={t} class="check">
              <input type="checkbox" checked={events.includes(t)} onChange={(e) => setEvents((e.target as HTMLInputElement).checked ? [...events, t] : events.filter((x) => x !== t))} />
              {t}
            </label>
          ))}
        </fieldset>
        <button type="submit">Add webhook</button>
      </form>
    </>
  );
}

function Deliveries({ hook }: { hook: Webhook }) {
  const [rows, setRows] = useState<Delivery[] | null>(null);
  const [msg, setMsg] = useState<{ text: string; error?: boolean } | null>(null);
  const load = () =>
    api<{ data: Delivery[] }>('GET', `/webhooks/${enc(hook.id)}/deliveries?limit=50`)
      .then((r) => setRows(r.data))
      .catch((e) => setMsg({ text: errorText(e), error: true }));
  useEffect(() => {
    load();
  }, [hook.id]);
  const redeliver = async (eventId: string) => {
    try {
      await api('POST', `/webhooks/${enc(hook.id)}/deliveries/${enc(eventId)}/redeliver`);
      setMsg({ text: `Redelivery of ${eventId} queued.` });
      setTimeout(load, 1000);
    } catch (e) {
      setMsg({ text: errorText(e), error: true });
    }
  };
  return (
    <div>
      <Status msg={msg} />
      {!rows ? (
        <p>Loading…</p>
      ) : rows.length === 0 ? (
        <p>No deliveries yet.</p>
      ) : (
        <div class="scroll">
          <table class="list">
            <caption class="sr-only">Delivery attempts to {hook.url}</caption>
            <thead>
              <tr>
                <th scope="col">Event</th><th scope="col">Type</th><th scope="col">Attempt</th><th scope="col">Status</th>
                <th scope="col">Response</th><th scope="col">Time</th><th scope="col"><span class="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <tr key={d.id}>
                  <td><code>{d.eventId}</code></td><td>{d.type}</td><td>{d.attempt}</td><td>{d.status}</td>
                  <td>{d.responseCode ?? d.error ?? ''} <span class="muted">{d.durationMs} ms</span></td><td>{when(d.at)}</td>
                  <td>
                    <button type="button" class="secondary" aria-label={`Redeliver ${d.eventId}`} onClick={() => redeliver(d.eventId)}>
                      Redeliver
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
