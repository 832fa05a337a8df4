// The Draft page: files grouped by kind, a typed form (knowledge, settings)
// or the raw CodeMirror editor, Save, create and delete files, compile
// diagnostics at file and line, and the draft history.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, Diagnostic, enc, errorText, pathEnc } from './api';
import { can, Ctx, Status, when } from './main';
import type { Editor } from './editor';

type DraftFile = { path: string; size: number };
type Report = { compile: { ok: boolean; errors: Diagnostic[]; warnings: Diagnostic[] } };
type Commit = { revision: string; message: string; author: string; at: string; paths: string[] };

const kinds: [string, string][] = [
  ['settings', 'Settings'],
  ['knowledge', 'Knowledge'],
  ['skills', 'Skills'],
  ['guardrails', 'Guardrails'],
  ['playbooks', 'Playbooks'],
  ['tests', 'Tests'],
  ['other', 'Other'],
];

const kindOf = (p: string) => (p === 'agent.yaml' ? 'settings' : kinds.some(([k]) => p.startsWith(k + '/')) ? p.split('/')[0] : 'other');
const extOf = (kind: string) => (kind === 'knowledge' ? '.md' : '.yaml');

const templates: Record<string, string> = {
  knowledge: '---\ntitle: \ntags: []\n---\n\n',
  skills: 'description: \nparameters:\n  type: object\n  properties: {}\nhttp:\n  method: GET\n  url: https://example.com/\n  timeoutMs: 5000\n',
  guardrails: 'description: \napplies: input\nblock:\n  phrases: []\n  message: \n',
  playbooks: 'description: \ntriggers:\n  - \nsteps:\n  - say: \n',
  tests: 'description: \nturns:\n  - user: \n    expect:\n      replyContains: []\n',
};

export function DraftPage({ session, agent, reloadAgent }: Ctx) {
  const id = enc(agent.id);
  const write = can(session, 'agents:write');
  const [files, setFiles] = useState<DraftFile[]>([]);
  const [report, setReport] = useState<Report | null>(null);
  const [history, setHistory] = useState<Commit[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [msg, setMsg] = useState<{ text: string; error?: boolean } | null>(null);
  const [newKind, setNewKind] = useState('knowledge');
  const [newName, setNewName] = useState('');
  const [gotoLine, setGotoLine] = useState<number | null>(null);

  const refresh = async () => {
    try {
      const [d, r, h] = await Promise.all([
        api<{ files: DraftFile[] }>('GET', `/agents/${id}/draft`),
        api<Report>('GET', `/agents/${id}/prepublish-report`).catch(() => null),
        api<{ data: Commit[] }>('GET', `/agents/${id}/draft/history?limit=20`),
      ]);
      setFiles(d.files);
      setReport(r);
      setHistory(h.data);
      return d.files;
    } catch (e) {
      setMsg({ text: errorText(e), error: true });
      return [];
    }
  };
  useEffect(() => {
    refresh().then((fs) => setSelected((s) => s ?? fs.find((f) => f.path.startsWith('knowledge/'))?.path ?? fs[0]?.path ?? null));
  }, [agent.id]);

  const diags = [...(report?.compile.errors ?? []).map((d) => ({ ...d, sev: 'error' })), ...(report?.compile.warnings ?? []).map((d) => ({ ...d, sev: 'warning' }))];
  const countFor = (p: string) => diags.filter((d) => d.file === p).length;

  const create = async (e: Event) => {
    e.preventDefault();
    const path = `${newKind}/${newName.trim()}${extOf(newKind)}`;
    try {
      await api('PUT', `/agents/${id}/draft/files/${pathEnc(path)}?message=${enc('Create ' + path)}`, templates[newKind] ?? '', { raw: true });
      setNewName('');
      await refresh();
      await reloadAgent();
      setSelected(path);
      setMsg({ text: `Created ${path}.` });
    } catch (e) {
      setMsg({ text: errorText(e), error: true });
    }
  };

  const onSaved = async (text: string) => {
    setMsg({ text });
    await refresh();
  };
  const onDeleted = async (path: string) => {
    setSelected(null);
    setMsg({ text: `Deleted ${path}.` });
    const fs = await refresh();
    setSelected(fs[0]?.path ?? null);
  };

  return (
    <div class="draft">
      <Status msg={msg} />
      <div class="draft-grid">
        <aside aria-label="Draft files">
          {kinds.map(([k, label]) => {
            const list = files.filter((f) => kindOf(f.path) === k);
            if (!list.length) return null;
            return (
              <section key={k}>
                <h2 class="h3">{label}</h2>
                <ul class="files">
                  {list.map((f) => (
                    <li key={f.path}>
                      <button type="button" class="file" aria-current={selected === f.path ? 'true' : undefined} onClick={() => { setGotoLine(null); setSelected(f.path); }}>
                        {f.path === 'agent.yaml' ? 'agent.yaml' : f.path.slice(f.path.indexOf('/') + 1)}
                        {countFor(f.path) > 0 && <span class="count" aria-label={`${countFor(f.path)} problems`}>{countFor(f.path)}</span>}
                      </button>
                    </li>
                  ))}
                </ul>
              </section>
            );
          })}
          {write && (
            <form onSubmit={create} class="new-file" aria-label="New file">
              <h2 class="h3">New file</h2>
              <label for="new-kind">Kind</label>
              <select id="new-kind" value={newKind} onChange={(e) => setNewKind((e.target as HTMLSelectElement).value)}>
                {kinds.slice(1, 6).map(([k, l]) => (
                  <option key={k} value={k}>{l}</option>
                ))}
              </select>
              <label for="new-name">File name</label>
              <input id="new-name" value={newName} required pattern="[a-z0-9][a-z0-9\-]{0,63}" title="lowercase letters, digits and dashes" onInput={(e) => setNewName((e.target as HTMLInputElement).value)} />
              <button type="submit">Create file</button>
            </form>
          )}
        </aside>
        <div class="editor-pane">
          {selected ? (
            <FileEditor key={selected} agentId={agent.id} path={selected} write={write} onSaved={onSaved} onDeleted={onDeleted} line={gotoLine} onError={(t) => setMsg({ text: t, error: true })} />
          ) : (
            <p>Select a file.</p>
          )}
        </div>
      </div>
      <section aria-labelledby="diag-h">
        <h2 id="diag-h">Compile errors and warnings</h2>
        {!report ? (
          <p>—</p>
        ) : diags.length === 0 ? (
          <p class="ok">The draft compiles without errors or warnings.</p>
        ) : (
          <ul class="diags">
            {diags.map((d, i) => (
              <li key={i} class={d.sev}>
                <button type="button" class="link" onClick={() => { if (d.file) { setGotoLine(d.line ?? 1); setSelected(d.file); } }}>
                  {d.sev === 'error' ? 'Error' : 'Warning'} in {d.file ?? 'draft'}
                  {d.line ? `, line ${d.line}` : ''}
                </button>
                : {d.message} <code>{d.code}</code>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="hist-h">
        <h2 id="hist-h">History</h2>
        <ol class="history">
          {history.map((c) => (
            <li key={c.revision}>
              <code>{c.revision.slice(0, 8)}</code> {c.message} <span class="muted">by {c.author}, {when(c.at)}</span>
            </li>
          ))}
        </ol>
      </section>
    </div>
  );
}

type FEProps = { agentId: string; path: string; write: boolean; line: number | null; onSaved: (t: string) => void; onDeleted: (p: string) => void; onError: (t: string) => void };

function FileEditor({ agentId, path, write, line, onSaved, onDeleted, onError }: FEProps) {
  const id = enc(agentId);
  const kind = kindOf(path);
  const typed = ['knowledge', 'settings', 'skills', 'guardrails', 'playbooks'].includes(kind);
  const [mode, setMode] = useState<'form' | 'raw'>(typed && line == null ? 'form' : 'raw');
  const [raw, setRaw] = useState<string | null>(null);
  const [form, setForm] = useState<any>(null);
  const [fieldErrors, setFieldErrors] = useState<Diagnostic[]>([]);
  const [dirty, setDirty] = useState(false);
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<Editor | null>(null);
  const slug = path.slice(path.indexOf('/') + 1).replace(/\.(md|yaml)$/, '');
  const typedURL = kind === 'settings' ? `/agents/${id}/draft/settings` : `/agents/${id}/draft/${kind}/${enc(slug)}`;
  // Structured fields (objects, lists) of the generic form are edited as JSON text.
  const [jsonText, setJsonText] = useState<Record<string, string>>({});

  useEffect(() => {
    setRaw(null);
    setForm(null);
    setDirty(false);
    setFieldErrors([]);
    (mode === 'raw' ? api<string>('GET', `/agents/${id}/draft/files/${pathEnc(path)}`, undefined, { text: true }).then(setRaw) : api('GET', typedURL).then(setForm)).catch((e) =>
      onError(errorText(e)),
    );
  }, [path, mode]);

  useEffect(() => {
    if (mode !== 'raw' || raw === null || !host.current) return;
    let alive = true;
    // CodeMirror is a separate chunk: loaded when a raw editor first opens.
    import('./editor').then(({ createEditor }) => {
      if (!alive || !host.current) return;
      editor.current = createEditor(host.current, path, raw, () => setDirty(true));
      if (line) editor.current.goToLine(line);
    });
    return () => {
      alive = false;
      editor.current?.destroy();
      editor.current = null;
    };
  }, [raw, mode]);

  useEffect(() => {
    if (line && editor.current) editor.current.goToLine(line);
  }, [line]);

  const save = async (e: Event) => {
    e.preventDefault();
    setFieldErrors([]);
    try {
      if (mode === 'raw') {
        await api('PUT', `/agents/${id}/draft/files/${pathEnc(path)}?message=${enc('Edit ' + path)}`, editor.current?.text() ?? '', { raw: true });
      } else {
        const body = { ...form };
        for (const [k, v] of Object.entries(jsonText)) {
          try {
            body[k] = JSON.parse(v);
          } catch {
            setFieldErrors([{ pointer: '/' + k, code: 'invalid_json', message: 'is not valid JSON' }]);
            onError(`The field ${k} is not valid JSON.`);
            return;
          }
        }
        await api('PUT', typedURL, body);
        setJsonText({});
      }
      setDirty(false);
      onSaved(`Saved ${path}.`);
    } catch (err) {
      if (err instanceof ApiError && err.problem.errors) setFieldErrors(err.problem.errors);
      onError(errorText(err));
    }
  };
  const del = async () => {
    if (!confirm(`Delete ${path} from the draft?`)) return;
    try {
      await api('DELETE', `/agents/${id}/draft/files/${pathEnc(path)}`);
      onDeleted(path);
    } catch (err) {
      onError(errorText(err));
    }
  };
  const set = (k: string, v: unknown) => {
    setForm({ ...form, [k]: v });
    setDirty(true);
  };
  const field = (k: string, label: string, multi = false) => (
    <>
      <label for={`f-${k}`}>{label}</label>
      {multi ? (
        <textarea id={`f-${k}`} rows={k === 'content' ? 14 : 3} value={form?.[k] ?? ''} readOnly={!write} onInput={(e) => set(k, (e.target as HTMLTextAreaElement).value)} />
      ) : (
        <input id={`f-${k}`} value={form?.[k] ?? ''} readOnly={!write} onInput={(e) => set(k, (e.target as HTMLInputElement).value)} />
      )}
    </>
  );

  return (
    <form onSubmit={save} aria-label={`Edit ${path}`}>
      <div class="title-row">
        <h2 class="path">{path}</h2>
        {typed && (
          <fieldset class="inline">
            <legend>Editor</legend>
            <label>
              <input type="radio" name="mode" checked={mode === 'form'} onChange={() => setMode('form')} /> Form
            </label>
            <label>
              <input type="radio" name="mode" checked={mode === 'raw'} onChange={() => setMode('raw')} /> Raw file
            </label>
          </fieldset>
        )}
      </div>
      {mode === 'raw' ? (
        raw === null ? <p>Loading…</p> : <div class="cm-host" ref={host} />
      ) : !form ? (
        <p>Loading…</p>
      ) : kind === 'knowledge' ? (
        <>
          {field('title', 'Title')}
          <label for="f-tags">Tags (comma-separated)</label>
          <input id="f-tags" value={(form.tags ?? []).join(', ')} readOnly={!write} onInput={(e) => set('tags', (e.target as HTMLInputElement).value.split(',').map((s) => s.trim()).filter(Boolean))} />
          {field('content', 'Article', true)}
        </>
      ) : kind !== 'settings' ? (
        <GenericForm form={form} jsonText={jsonText} write={write} set={set} setJson={(k, v) => { setJsonText({ ...jsonText, [k]: v }); setDirty(true); }} />
      ) : (
        <>
          {field('name', 'Name')}
          {field('description', 'Description')}
          {field('language', 'Language')}
          {field('persona', 'Persona', true)}
          {field('greeting', 'Greeting')}
          {field('fallback', 'Fallback', true)}
          <GenericForm form={form} exclude={settingsFields} jsonText={jsonText} write={write} set={set} setJson={(k, v) => { setJsonText({ ...jsonText, [k]: v }); setDirty(true); }} />
        </>
      )}
      {fieldErrors.length > 0 && (
        <ul class="diags" role="alert">
          {fieldErrors.map((d, i) => (
            <li key={i} class="error">
              {d.pointer ?? d.file}
              {d.line ? ` line ${d.line}` : ''}: {d.message}
            </li>
          ))}
        </ul>
      )}
      {write && (
        <div class="buttons">
          <button type="submit">Save</button>
          <button type="button" class="danger" onClick={del} disabled={path === 'agent.yaml'}>
            Delete file
          </button>
          {dirty && <span class="muted">Unsaved changes</span>}
        </div>
      )}
    </form>
  );
}

const fieldLabel = (k: string) => k.charAt(0).toUpperCase() + k.slice(1).replace(/([A-Z])/g, ' $1').toLowerCase();

// GenericForm is the typed form of skills, guardrails and playbooks: one
// field per member of the typed JSON view; text as inputs, structured
// members (parameters, http, block, steps, triggers) as JSON.
const settingsFields = ['name', 'description', 'language', 'persona', 'greeting', 'fallback'];

function GenericForm({ form, exclude = ['name', 'path'], jsonText, write, set, setJson }: { form: any; exclude?: string[]; jsonText: Record<string, string>; write: boolean; set: (k: string, v: unknown) => void; setJson: (k: string, v: string) => void }) {
  return (
    <>
      {Object.entries(form)
        .filter(([k]) => !exclude.includes(k))
        .map(([k, v]) => {
          const id = `f-${k}`;
          if (typeof v === 'string')
            return (
              <div key={k}>
                <label for={id}>{fieldLabel(k)}</label>
                {v.includes('\n') || v.length > 80 ? (
                  <textarea id={id} rows={3} value={v} readOnly={!write} onInput={(e) => set(k, (e.target as HTMLTextAreaElement).value)} />
                ) : (
                  <input id={id} value={v} readOnly={!write} onInput={(e) => set(k, (e.target as HTMLInputElement).value)} />
                )}
              </div>
            );
          if (typeof v === 'number')
            return (
              <div key={k}>
                <label for={id}>{fieldLabel(k)}</label>
                <input id={id} type="number" value={v} readOnly={!write} onInput={(e) => set(k, +(e.target as HTMLInputElement).value)} />
              </div>
            );
          if (typeof v === 'boolean')
            return (
              <label key={k} class="check">
                <input type="checkbox" checked={v} disabled={!write} onChange={(e) => set(k, (e.target as HTMLInputElement).checked)} /> {fieldLabel(k)}
              </label>
            );
          const text = jsonText[k] ?? JSON.stringify(v, null, 2);
          return (
            <div key={k}>
              <label for={id}>
                {fieldLabel(k)} <span class="muted small">(JSON)</span>
              </label>
              <textarea id={id} class="mono" rows={Math.min(14, text.split('\n').length + 1)} value={text} readOnly={!write} onInput={(e) => setJson(k, (e.target as HTMLTextAreaElement).value)} />
            </div>
          );
        })}
    </>
  );
}
