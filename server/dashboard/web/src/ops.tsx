// Traffic (channels and outcomes, §12) and Webhooks (§9). Routes a daemon
// does not have yet are hidden with a note instead of failing.
import { useEffect, useState } from 'preact/hooks';
import { api, enc, errorText, missing } from './api';
import { can, Ctx, Status, when } from './main';

type Channel = { channel: string; serves: string | null; mode?: string; split?: { version: string; weight: number }[] | null };
type Outcome = { version: string; sessions: number; messages: number; fallbackRate: number; guardrailBlocks: number; playbooksCompleted: number; handoffs: number };

export function TrafficPage({ session, agent, reloadAgent }: Ctx) {
  const id = enc(agent.id);
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [outcomes, setOutcomes] = useState<Outcome[] | null | 'missing'>(null);
  const [versions, setVersions] = useState<string[]>([]);
  const [msg, setMsg] = useState<{ text: string; error?: boolean } | null>(null);
  const load = async () => {
    try {
      setChannels(await api<Channel[]>('GET', `/agents/${id}/channels`));
      const v = await api<{ data: { id: string }[] }>('GET', `/agents/${id}/versions?limit=100`);
      setVersions(v.data.map((x) => x.id));
    } catch (e) {
      setMsg({ text: errorText(e), error: true });
    }
    api<{ data: Outcome[] }>('GET', `/agents/${id}/outcomes`)
      .then((r) => setOutcomes(r.data))
      .catch((e) => setOutcomes(missing(e) ? 'missing' : []));
  };
  useEffect(() => {
    load();
  }, [agent.id]);
  const editable = can(session, 'agents:write') && !!channels?.some((c) => c.mode);
  return (
    <>
      <Status msg={msg} />
      <section aria-labelledby="ch-h">
        <h2 id="ch-h">Channels</h2>
        {!channels ? (
          <p>Loading…</p>
        ) : (
          <ul class="channels">
            {channels.map((c) => (
              <ChannelRow key={c.channel} agentId={agent.id} c={c} versions={versions} editable={editable} onSaved={async (t) => { setMsg({ text: t }); await reloadAgent(); await load(); }} onError={(t) => setMsg({ text: t, error: true })} />
            ))}
          </ul>
        )}
        {channels && !channels.some((c) => c.mode) && <p class="muted">Every channel follows the published version (pins and splits are not available on this daemon yet).</p>}
      </section>
      <section aria-labelledby="out-h">
        <h2 id="out-h">Outcomes per version</h2>
        {outcomes === 'missing' ? (
          <p class="muted">Outcomes are not available on this daemon yet.</p>
        ) : !outcomes ? (
          <p>Loading…</p>
        ) : outcomes.length === 0 ? (
          <p>No conversations yet.</p>
        ) : (
          <div class="scroll">
            <table class="list">
              <thead>
                <tr>
                  <th scope="col">Version</th><th scope="col">Sessions</th><th scope="col">Messages</th><th scope="col">Fallback rate</th>
                  <th scope="col">Guardrail blocks</th><th scope="col">Playbooks completed</th><th scope="col">Handoffs</th>
                </tr>
              </thead>
              <tbody>
                {outcomes.map((o) => (
                  <tr key={o.version}>
                    <th scope="row">{o.version}</th><td>{o.sessions}</td><td>{o.messages}</td><td>{Math.round(o.fallbackRate * 100)}%</td>
                    <td>{o.guardrailBlocks}</td><td>{o.playbooksCompleted}</td><td>{o.handoffs}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}

function ChannelRow({ agentId, c, versions, editable, onSaved, onError }: { agentId: string; c: Channel; versions: string[]; editable: boolean; onSaved: (t: string) => void; onError: (t: string) => void }) {
  const [mode, setMode] = useState(c.mode ?? 'follow');
  const [pin, setPin] = useState(c.serves ?? versions[0] ?? '');
  const [split, setSplit] = useState(c.split ?? versions.slice(0, 2).map((v, i) => ({ version: v, weight: i ? 10 : 90 })));
  const save = async (e: Event) => {
    e.preventDefault();
    const body = mode === 'pin' ? { mode, version: pin } : mode === 'split' ? { mode, split } : { mode };
    try {
      await api('PUT', `/agents/${enc(agentId)}/channels/${enc(c.channel)}`, body);
      onSaved(`Channel ${c.channel} saved.`);
    } catch (err) {
      onError(missing(err) ? 'Changing channels is not available on this daemon yet.' : errorText(err));
    }
  };
  const desc = c.mode === 'split' && c.split ? c.split.map((s) => `${s.version} ${s.weight}%`).join(', ') : c.mode === 'pin' ? `pinned to ${c.serves}` : `follows published (${c.serves ?? 'nothing'})`;
  return (
    <li class="card">
      <h3>{c.channel}</h3>
      <p>
        Serves <strong>{c.serves ?? 'nothing'}</strong> — {desc}
      </p>
      {editable && (
        <form onSubmit={save} aria-label={`Channel ${c.channel}`} class="inline-form">
          <label for={`mode-${c.channel}`}>Mode</label>
          <select id={`mode-${c.channel}`} value={mode} onChange={(e) => setMode((e.target as HTMLSelectElement).value)}>
            <option value="follow">follow</option>
            <option value="pin">pin</option>
            <option value="split">split</option>
          </select>
          {mode === 'pin' && (
            <>
              <label for={`pin-${c.channel}`}>Version</label>
              <select id={`pin-${c.channel}`} value={pin} onChange={(e) => setPin((e.target as HTMLSelectElement).value)}>
                {versions.map((v) => <option key={v}>{v}</option>)}
              </select>
            </>
          )}
          {mode === 'split' &&
            split.map((s, i) => (
              <span key={i} class="split-row">
                <label for={`sv-${c.channel}-${i}`}>Version {i + 1}</label>
                <select id={`sv-${c.channel}-${i}`} value={s.version} onChange={(e) => setSplit(split.map((x, j) => (j === i ? { ...x, version: (e.target as HTMLSelectElement).value } : x)))}>
                  {versions.map((v) => <option key={v}>{v}</option>)}
                </select>
                <label for={`sw-${c.channel}-${i}`}>Weight {i + 1}</label>
                <input id={`sw-${c.channel}-${i}`} type="number" min={0} max={100} value={s.weight} onInput={(e) => setSplit(split.map((x, j) => (j === i ? { ...x, weight: +(e.target as HTMLInputElement).value } : x)))} />
              </span>
            ))}
          <button type="submit">Save channel</button>
        </form>
      )}
    </li>
  );
}

type Webhook = { id: string; url: string; events: string[]; agentId: string | null; description: string; createdAt: string; secret?: string };
type Delivery = { id: string; eventId: string; type: string; attempt: number; status: string; responseCode: number | null; error: string; at: string; durationMs: number };

const eventTypes = ['version.published', 'version.rolled_back', 'draft.updated'];

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
