// Versions: history with the published one marked, a diff between any two,
// Roll back with a confirmation, and the deployments timeline.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, enc, errorText } from './api';
import { can, Ctx, Status, when } from './main';
import { Diff, DiffView } from './diff';

type Version = {
  id: string;
  number: number;
  compiledDigest: string;
  notes: string;
  publishedBy: string;
  createdAt: string;
  published: boolean;
  tests?: { total: number; passed: number; failed: number } | null;
};
type Deployment = {
  at: string;
  by: string;
  kind: string;
  from: string | null;
  to: string | null;
  channel?: string | null;
  split?: { version: string; weight: number }[] | null;
};

const kindWords: Record<string, string> = {
  publish: 'Published',
  rollback: 'Rolled back',
  pin: 'Pinned',
  split: 'Split',
  follow: 'Follows published',
};

function deploymentText(d: Deployment) {
  const move = `${d.from ?? 'nothing'} → ${d.to ?? 'nothing'}`;
  if (!d.channel) return move;
  if (d.kind === 'split' && d.split) return `${d.split.map((s) => `${s.version} ${s.weight}%`).join(', ')} (was ${d.from ?? 'nothing'})`;
  return move;
}

export function VersionsPage({ session, agent, reloadAgent }: Ctx) {
  const id = enc(agent.id);
  const [versions, setVersions] = useState<Version[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [published, setPublished] = useState<string | null>(null);
  const [deployments, setDeployments] = useState<Deployment[]>([]);
  const [msg, setMsg] = useState<{ text: string; error?: boolean } | null>(null);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [diff, setDiff] = useState<Diff | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const dialog = useRef<HTMLDialogElement>(null);
  const opener = useRef<HTMLElement | null>(null);

  const load = async (after?: string) => {
    try {
      const r = await api<{ data: Version[]; nextCursor: string | null; published: string | null }>(
        'GET',
        `/agents/${id}/versions?limit=50${after ? '&cursor=' + enc(after) : ''}`,
      );
      setVersions((prev) => (after ? [...prev, ...r.data] : r.data));
      setCursor(r.nextCursor);
      setPublished(r.published);
      if (!after && r.data.length) {
        setTo((t) => t || r.data[0].id);
        setFrom((f) => f || (r.data[1]?.id ?? r.data[0].id));
      }
      const d = await api<{ data: Deployment[] }>('GET', `/agents/${id}/deployments?limit=50`);
      setDeployments(d.data);
    } catch (e) {
      setMsg({ text: errorText(e), error: true });
    }
  };
  useEffect(() => {
    load();
  }, [agent.id]);
  useEffect(() => {
    if (confirming) dialog.current?.showModal?.();
    else dialog.current?.close?.();
  }, [confirming]);

  const showDiff = async (e: Event) => {
    e.preventDefault();
    try {
      setDiff(await api<Diff>('GET', `/agents/${id}/versions/${enc(to)}/diff?base=${enc(from)}`));
    } catch (err) {
      setMsg({ text: errorText(err), error: true });
    }
  };
  const rollback = async () => {
    const v = confirming!;
    setConfirming(null);
    try {
      await api('POST', `/agents/${id}/rollback`, { version: v, expectedPublishedVersion: published ?? undefined });
      setMsg({ text: `Rolled back: ${v} is published.` });
      await reloadAgent();
      await load();
    } catch (err) {
      setMsg({ text: errorText(err), error: true });
    }
    opener.current?.focus();
  };
  const write = can(session, 'agents:write');
  const choices = ['draft', ...versions.map((v) => v.id)];
  return (
    <>
      <Status msg={msg} />
      {versions.length === 0 ? (
        <p>No versions yet: publish the draft from Review.</p>
      ) : (
        <div class="scroll">
          <table class="list versions">
            <caption class="sr-only">Versions, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Notes</th>
                <th scope="col">Publisher</th>
                <th scope="col">Time</th>
                <th scope="col">Digest</th>
                <th scope="col">Tests</th>
                {write && <th scope="col"><span class="sr-only">Actions</span></th>}
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={v.id} class={v.id === published ? 'live' : ''}>
                  <th scope="row">
                    {v.id} {v.id === published && <span class="badge live">Published</span>}
                  </th>
                  <td>{v.notes || <span class="muted">—</span>}</td>
                  <td>{v.publishedBy}</td>
                  <td>{when(v.createdAt)}</td>
                  <td><code title={v.compiledDigest}>{v.compiledDigest.slice(7, 19)}</code></td>
                  <td>
                    {!v.tests || v.tests.total === 0 ? (
                      <span class="muted">no tests</span>
                    ) : (
                      <span class={v.tests.failed ? 'bad' : 'ok'}>
                        {v.tests.passed}/{v.tests.total} passed{v.tests.failed ? `, ${v.tests.failed} failed` : ''}
                      </span>
                    )}
                  </td>
                  {write && (
                    <td>
                      {v.id !== published && (
                        <button type="button" class="secondary" aria-label={`Roll back to ${v.id}`} onClick={(e) => { opener.current = e.currentTarget as HTMLElement; setConfirming(v.id); }}>
                          Roll back
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {cursor && (
        <button type="button" class="secondary" onClick={() => load(cursor)}>
          Load more versions
        </button>
      )}
      <dialog ref={dialog} aria-labelledby="rb-h" onClose={() => setConfirming(null)}>
        <h2 id="rb-h">Roll back to {confirming}?</h2>
        <p>
          The published pointer moves from {published ?? 'nothing'} to {confirming}. New conversations get {confirming} at once;
          running ones keep the version they started on.
        </p>
        <div class="buttons">
          <button type="button" class="danger" onClick={rollback}>
            Confirm roll back
          </button>
          <button type="button" class="secondary" autoFocus onClick={() => setConfirming(null)}>
            Cancel
          </button>
        </div>
      </dialog>
      {versions.length > 0 && (
        <section aria-labelledby="cmp-h">
          <h2 id="cmp-h">Compare versions</h2>
          <form onSubmit={showDiff} class="inline-form" aria-label="Compare versions">
            <label for="from">From</label>
            <select id="from" value={from} onChange={(e) => setFrom((e.target as HTMLSelectElement).value)}>
              {choices.map((c) => <option key={c} value={c}>{c}</option>)}
            </select>
            <label for="to">To</label>
            <select id="to" value={to} onChange={(e) => setTo((e.target as HTMLSelectElement).value)}>
              {choices.map((c) => <option key={c} value={c}>{c}</option>)}
            </select>
            <button type="submit">Show diff</button>
          </form>
          {diff && <DiffView diff={diff} title="Version diff" />}
        </section>
      )}
      <section aria-labelledby="dep-h">
        <h2 id="dep-h">Deployments</h2>
        <ol class="timeline">
          {deployments.map((d, i) => (
            <li key={i}>
              <strong>{kindWords[d.kind] ?? d.kind}</strong>
              {d.channel ? <> channel <strong>{d.channel}</strong></> : ''}: {deploymentText(d)} <span class="muted">by {d.by}, {when(d.at)}</span>
            </li>
          ))}
        </ol>
      </section>
    </>
  );
}
