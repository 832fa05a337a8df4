// Renders the API's per-file unified patches, unified or side by side,
// paginated so a 200-file diff never builds more than one page of rows.
import { useState } from 'preact/hooks';

export type DiffFile = {
  path: string;
  oldPath?: string;
  status: string;
  additions: number;
  deletions: number;
  binary: boolean;
  patch: string;
};

export type Diff = {
  base: string;
  target: string;
  stats: { files: number; additions: number; deletions: number };
  files: DiffFile[];
  summary?: Summary;
};

export type Summary = {
  settings: boolean;
  [kind: string]: boolean | { added: string[]; removed: string[]; modified: string[] };
};

type Line = { kind: 'ctx' | 'add' | 'del' | 'hunk'; text: string; old?: number; new?: number };

export function parsePatch(patch: string): Line[] {
  const out: Line[] = [];
  let o = 0;
  let n = 0;
  let inHunk = false;
  for (const l of patch.split('\n')) {
    const m = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$/.exec(l);
    if (m) {
      o = +m[1];
      n = +m[2];
      inHunk = true;
      out.push({ kind: 'hunk', text: l });
      continue;
    }
    if (!inHunk || l.startsWith('\\')) continue;
    if (l.startsWith('+')) out.push({ kind: 'add', text: l.slice(1), new: n++ });
    else if (l.startsWith('-')) out.push({ kind: 'del', text: l.slice(1), old: o++ });
    else if (l.startsWith(' ')) out.push({ kind: 'ctx', text: l.slice(1), old: o++, new: n++ });
  }
  return out;
}

type Row = { left?: Line; right?: Line; hunk?: string };

// sideBySide pairs deletions with the additions that follow them.
export function sideBySide(lines: Line[]): Row[] {
  const rows: Row[] = [];
  let dels: Line[] = [];
  let adds: Line[] = [];
  const flush = () => {
    for (let i = 0; i < Math.max(dels.length, adds.length); i++) rows.push({ left: dels[i], right: adds[i] });
    dels = [];
    adds = [];
  };
  for (const l of lines) {
    if (l.kind === 'del') {
      if (adds.length) flush();
      dels.push(l);
    } else if (l.kind === 'add') adds.push(l);
    else {
      flush();
      if (l.kind === 'hunk') rows.push({ hunk: l.text });
      else rows.push({ left: l, right: l });
    }
  }
  flush();
  return rows;
}

const sign = { add: '+', del: '-', ctx: ' ', hunk: '' };

function Unified({ lines }: { lines: Line[] }) {
  return (
    <table class="diff unified">
      <tbody>
        {lines.map((l, i) =>
          l.kind === 'hunk' ? (
            <tr key={i} class="hunk">
              <td colSpan={3}>{l.text}</td>
            </tr>
          ) : (
            <tr key={i} class={l.kind}>
              <td class="ln">{l.old ?? ''}</td>
              <td class="ln">{l.new ?? ''}</td>
              <td class="code">
                <span class="sr-only">{l.kind === 'add' ? 'added: ' : l.kind === 'del' ? 'removed: ' : ''}</span>
                {sign[l.kind]}
                {l.text}
              </td>
            </tr>
          ),
        )}
      </tbody>
    </table>
  );
}

function Split({ lines, base, target }: { lines: Line[]; base: string; target: string }) {
  const rows = sideBySide(lines);
  const cell = (l: Line | undefined, side: 'old' | 'new') =>
    l
      ? [
          <td class={`ln ${l.kind}`}>{side === 'old' ? l.old : l.new}</td>,
          <td class={`code ${l.kind}`}>
            <span class="sr-only">{l.kind === 'add' ? 'added: ' : l.kind === 'del' ? 'removed: ' : ''}</span>
            {l.text}
          </td>,
        ]
      : [<td class="ln empty" />, <td class="code empty" />];
  return (
    <table class="diff split">
      <thead>
        <tr>
          <th colSpan={2} scope="col">
            {base}
          </th>
          <th colSpan={2} scope="col">
            {target}
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r, i) =>
          r.hunk ? (
            <tr key={i} class="hunk">
              <td colSpan={4}>{r.hunk}</td>
            </tr>
          ) : (
            <tr key={i}>
              {cell(r.left, 'old')}
              {cell(r.right, 'new')}
            </tr>
          ),
        )}
      </tbody>
    </table>
  );
}

function FileDiff({ f, layout, base, target }: { f: DiffFile; layout: string; base: string; target: string }) {
  const [open, setOpen] = useState(true);
  const lines = open && !f.binary ? parsePatch(f.patch) : [];
  return (
    <section class="file-diff" aria-label={`Changes in ${f.path}`}>
      <h4>
        <button type="button" class="link" aria-expanded={open} onClick={() => setOpen(!open)}>
          {f.oldPath ? `${f.oldPath} → ${f.path}` : f.path}
        </button>{' '}
        <span class={`badge ${f.status}`}>{f.status}</span>{' '}
        <span class="stat">
          <span class="plus">+{f.additions}</span> <span class="minus">−{f.deletions}</span>
        </span>
      </h4>
      {open &&
        (f.binary ? (
          <p>Binary file.</p>
        ) : layout === 'split' ? (
          <div class="scroll">
            <Split lines={lines} base={base} target={target} />
          </div>
        ) : (
          <div class="scroll">
            <Unified lines={lines} />
          </div>
        ))}
    </section>
  );
}

const pageSize = 20;

export function SummaryList({ summary }: { summary?: Summary }) {
  if (!summary) return null;
  const items: string[] = [];
  if (summary.settings) items.push('Settings (agent.yaml) changed');
  for (const [kind, v] of Object.entries(summary)) {
    if (typeof v !== 'object' || !v) continue;
    for (const [what, names] of Object.entries(v))
      if (names.length) items.push(`${kind}: ${what} ${names.join(', ')}`);
  }
  if (!items.length) return <p>No semantic changes.</p>;
  return (
    <ul class="summary">
      {items.map((s) => (
        <li key={s}>{s}</li>
      ))}
    </ul>
  );
}

export function DiffView({ diff, title = 'Diff' }: { diff: Diff; title?: string }) {
  // Side by side by default; unified on narrow screens, where two columns of code do not fit.
  const [layout, setLayout] = useState(() => (matchMedia('(max-width: 720px)').matches ? 'unified' : 'split'));
  const [page, setPage] = useState(0);
  const pages = Math.max(1, Math.ceil(diff.files.length / pageSize));
  const files = diff.files.slice(page * pageSize, (page + 1) * pageSize);
  return (
    <section class="diff-view" aria-label={title}>
      <div class="toolbar">
        <p>
          {diff.base} → {diff.target}: {diff.stats.files} files, <span class="plus">+{diff.stats.additions}</span>{' '}
          <span class="minus">−{diff.stats.deletions}</span>
        </p>
        <fieldset class="inline">
          <legend>Diff layout</legend>
          <label>
            <input type="radio" name={`layout-${title}`} checked={layout === 'split'} onChange={() => setLayout('split')} />
            Side by side
          </label>
          <label>
            <input type="radio" name={`layout-${title}`} checked={layout === 'unified'} onChange={() => setLayout('unified')} />
            Unified
          </label>
        </fieldset>
      </div>
      {diff.files.length === 0 && <p>No differences.</p>}
      {files.map((f) => (
        <FileDiff key={f.path} f={f} layout={layout} base={diff.base} target={diff.target} />
      ))}
      {pages > 1 && (
        <nav class="pager" aria-label="Diff pages">
          <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
            Previous files
          </button>
          <span>
            Files {page * pageSize + 1}–{Math.min(diff.files.length, (page + 1) * pageSize)} of {diff.files.length}
          </span>
          <button type="button" disabled={page >= pages - 1} onClick={() => setPage(page + 1)}>
            Next files
          </button>
        </nav>
      )}
    </section>
  );
}
