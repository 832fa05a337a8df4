// Review: the pre-publish report, the diff against published, release
// notes and Publish of exactly the reviewed draft revision.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, Diagnostic, enc, errorText } from './api';
import { can, Ctx, Link, Status } from './main';
import { Diff, DiffView, SummaryList } from './diff';

type Report = {
  draftRevision: string;
  basedOn: string | null;
  nextVersion: string;
  publishable: boolean;
  blockers: string[];
  compile: { ok: boolean; errors: Diagnostic[]; warnings: Diagnostic[] };
  compiledDigest: string | null;
  tests?: { total: number; passed: number; failed: number; runId?: string };
  changes: { stats: { files: number; additions: number; deletions: number }; summary: any };
};

const blockerWords: Record<string, string> = {
  compile_failed: 'The draft does not compile.',
  draft_unchanged: 'The draft is identical to the latest version.',
  tests_failed: 'Some tests fail.',
};

export function ReviewPage({ session, agent, reloadAgent }: Ctx) {
  const id = enc(agent.id);
  const [report, setReport] = useState<Report | null>(null);
  const [diff, setDiff] = useState<Diff | null>(null);
  const [notes, setNotes] = useState('');
  const [msg, setMsg] = useState<{ text: string; error?: boolean } | null>(null);
  const [problemList, setProblemList] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [published, setPublished] = useState<string | null>(null);
  const load = async () => {
    setProblemList([]);
    try {
      const r = await api<Report>('GET', `/agents/${id}/prepublish-report`);
      setReport(r);
      setDiff(await api<Diff>('GET', `/agents/${id}/versions/draft/diff`));
    } catch (e) {
      setMsg({ text: errorText(e), error: true });
    }
  };
  useEffect(() => {
    load();
  }, [agent.id]);

  const publish = async (e: Event) => {
    e.preventDefault();
    if (!report) return;
    setBusy(true);
    setProblemList([]);
    try {
      const v = await api<{ id: string }>('POST', `/agents/${id}/publish`, { notes, expectedDraftRevision: report.draftRevision });
      setPublished(v.id);
      setMsg({ text: `Published ${v.id}.` });
      setNotes('');
      await reloadAgent();
      await load();
    } catch (err) {
      setMsg({ text: errorText(err), error: true });
      if (err instanceof ApiError) {
        const p = err.problem;
        setProblemList([
          ...(p.errors ?? []).map((d) => `${d.file ?? d.pointer ?? ''}${d.line ? ` line ${d.line}` : ''}: ${d.message}`),
          ...(p.failures ?? []).map((f) => `${f.test}, turn ${f.turn}: ${f.expect} wanted ${JSON.stringify(f.want)}, got ${JSON.stringify(f.got)}`),
        ]);
      }
    } finally {
      setBusy(false);
    }
  };

  if (!report) return <Status msg={msg ?? { text: 'Loading…' }} />;
  return (
    <>
      <section aria-labelledby="report-h" class="card">
        <h2 id="report-h">Pre-publish report</h2>
        <dl class="facts">
          <div><dt>Next version</dt><dd>{report.nextVersion}</dd></div>
          <div><dt>Based on</dt><dd>{report.basedOn ?? 'nothing published yet'}</dd></div>
          <div><dt>Draft revision</dt><dd><code>{report.draftRevision.slice(0, 12)}</code></dd></div>
          <div><dt>Publishable</dt><dd>{report.publishable ? 'Yes' : 'No'}</dd></div>
          <div><dt>Compile</dt><dd>{report.compile.ok ? 'OK' : `${report.compile.errors.length} errors`}{report.compile.warnings.length ? `, ${report.compile.warnings.length} warnings` : ''}</dd></div>
          {report.tests && (
            <div><dt>Tests</dt><dd>{report.tests.passed} of {report.tests.total} passed</dd></div>
          )}
        </dl>
        {report.blockers.length > 0 && (
          <>
            <h3>Blockers</h3>
            <ul class="diags">
              {report.blockers.map((b) => (
                <li key={b} class="error">{blockerWords[b] ?? b}</li>
              ))}
            </ul>
          </>
        )}
        {report.compile.errors.length + report.compile.warnings.length > 0 && (
          <ul class="diags">
            {[...report.compile.errors.map((d) => ({ ...d, sev: 'error' })), ...report.compile.warnings.map((d) => ({ ...d, sev: 'warning' }))].map((d, i) => (
              <li key={i} class={d.sev}>
                {d.file}{d.line ? `, line ${d.line}` : ''}: {d.message}
              </li>
            ))}
          </ul>
        )}
        <h3>What changes</h3>
        <SummaryList summary={report.changes.summary} />
      </section>
      {can(session, 'agents:write') && (
        <form onSubmit={publish} class="card" aria-label="Publish">
          <label for="notes">Release notes</label>
          <textarea id="notes" rows={3} value={notes} onInput={(e) => setNotes((e.target as HTMLTextAreaElement).value)} />
          <div class="buttons">
            <button type="submit" disabled={busy || !report.publishable}>
              Publish
            </button>
            <span class="muted">publishes draft revision {report.draftRevision.slice(0, 8)} as {report.nextVersion}</span>
          </div>
        </form>
      )}
      <Status msg={msg} />
      {problemList.length > 0 && (
        <ul class="diags">
          {problemList.map((p, i) => (
            <li key={i} class="error">{p}</li>
          ))}
        </ul>
      )}
      {published && (
        <p>
          <Link href={`/ui/agents/${agent.id}/versions`}>See {published} in Versions</Link>
        </p>
      )}
      <section aria-labelledby="diff-h">
        <h2 id="diff-h">Draft vs {agent.published ? 'published' : 'nothing published'}</h2>
        {diff ? <DiffView diff={diff} title="Draft diff" /> : <p>Loading…</p>}
      </section>
    </>
  );
}
