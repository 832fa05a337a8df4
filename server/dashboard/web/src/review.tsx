// Review: the pre-publish report, the diff against published, release
// notes and Publish of exactly the reviewed draft revision.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, Diagnostic, enc, errorText } from './api';
import { can, Ctx, Link, Status } from './main';
import { Diff, DiffView, SummaryList } from './diff';
import { val } from './tester';

type GateFailure = { test: string; turn: number; expect: string; want: unknown; got: unknown };
type RunCase = { test: string; status: string; turns: { user: string; failures: { expect: string; want: unknown; got: unknown }[] | null }[] };

// failureText says one failure; turn counts from 0 in the API, from 1 here.
function failureText(f: GateFailure) {
  return `${f.test}, turn ${f.turn + 1}: ${f.expect} wanted ${val(f.want)}, got ${val(f.got)}`;
}

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
  tests_failed: 'Some tests fail on this draft: Publish will be refused unless you publish anyway.',
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
  const [gate, setGate] = useState<GateFailure[] | null>(null);
  const [reportFailures, setReportFailures] = useState<GateFailure[]>([]);
  const load = async () => {
    setProblemList([]);
    setGate(null);
    try {
      const r = await api<Report>('GET', `/agents/${id}/prepublish-report`);
      setReport(r);
      setReportFailures([]);
      if (r.tests?.failed && r.tests.runId) {
        api<{ cases?: RunCase[] }>('GET', `/agents/${id}/test-runs/${enc(r.tests.runId)}`)
          .then((run) =>
            setReportFailures(
              (run.cases ?? []).flatMap((c) =>
                c.turns.flatMap((t, i) => (t.failures ?? []).map((f) => ({ test: c.test, turn: i, ...f }))),
              ),
            ),
          )
          .catch(() => {});
      }
      setDiff(await api<Diff>('GET', `/agents/${id}/versions/draft/diff`));
    } catch (e) {
      setMsg({ text: errorText(e), error: true });
    }
  };
  useEffect(() => {
    load();
  }, [agent.id]);

  const publish = async (e: Event, force = false) => {
    e.preventDefault();
    if (!report) return;
    setBusy(true);
    setProblemList([]);
    setGate(null);
    try {
      const body: Record<string, unknown> = { notes, expectedDraftRevision: report.draftRevision };
      if (force) body.force = true;
      const v = await api<{ id: string }>('POST', `/agents/${id}/publish`, body);
      setPublished(v.id);
      setMsg({ text: force ? `Published ${v.id} with failing tests (forced).` : `Published ${v.id}.` });
      setNotes('');
      await reloadAgent();
      await load();
    } catch (err) {
      setMsg({ text: errorText(err), error: true });
      if (err instanceof ApiError) {
        const p = err.problem;
        setProblemList((p.errors ?? []).map((d) => `${d.file ?? d.pointer ?? ''}${d.line ? ` line ${d.line}` : ''}: ${d.message}`));
        if (p.detail === 'tests_failed') setGate(p.failures ?? []);
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
          <div>
            <dt>Tests</dt>
            <dd>
              {!report.tests || report.tests.total === 0
                ? 'This agent has no tests.'
                : `${report.tests.passed} of ${report.tests.total} passed${report.tests.failed ? `, ${report.tests.failed} failed` : ''}`}
            </dd>
          </div>
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
        {reportFailures.length > 0 && (
          <>
            <h3>Failing tests</h3>
            <ul class="diags" aria-label="Failing tests">
              {reportFailures.map((f, i) => (
                <li key={i} class="error">{failureText(f)}</li>
              ))}
            </ul>
            <p class="muted">
              Fix the draft (or the tests) and <Link href={`/ui/agents/${agent.id}/tester`}>run the tests in the Tester</Link>.
            </p>
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
            <button type="submit" disabled={busy || report.blockers.some((b) => b !== 'tests_failed')}>
              Publish
            </button>
            <span class="muted">publishes draft revision {report.draftRevision.slice(0, 8)} as {report.nextVersion}</span>
          </div>
        </form>
      )}
      <Status msg={msg} />
      {gate && (
        <section class="card gate" aria-labelledby="gate-h">
          <h2 id="gate-h" class="h3">Tests failed on the draft being published</h2>
          <ul class="diags" aria-label="Test failures">
            {gate.map((f, i) => (
              <li key={i} class="error">{failureText(f)}</li>
            ))}
          </ul>
          {can(session, 'agents:write') && (
            <div class="buttons">
              <button type="button" class="danger" disabled={busy} onClick={(e) => publish(e, true)}>
                Publish anyway
              </button>
              <span class="muted">the release records that its tests were forced</span>
            </div>
          )}
        </section>
      )}
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
