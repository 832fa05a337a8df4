// The raw file editor: CodeMirror 6 with YAML or Markdown highlighting.
import { EditorState } from '@codemirror/state';
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { syntaxHighlighting, defaultHighlightStyle, bracketMatching } from '@codemirror/language';
import { yaml } from '@codemirror/lang-yaml';
import { markdown } from '@codemirror/lang-markdown';

export type Editor = { view: EditorView; text(): string; goToLine(n: number): void; destroy(): void };

// The editor lives in a shadow root: CodeMirror then styles itself with
// constructable style sheets, which the dashboard's strict CSP allows
// (a <style> element would need 'unsafe-inline').
export function createEditor(host: HTMLElement, path: string, doc: string, onChange: () => void): Editor {
  const root = host.shadowRoot ?? host.attachShadow({ mode: 'open' });
  const lang = path.endsWith('.md') ? [markdown()] : path.endsWith('.yaml') || path.endsWith('.yml') ? [yaml()] : [];
  const view = new EditorView({
    root,
    parent: root,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        history(),
        drawSelection(),
        highlightActiveLine(),
        bracketMatching(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        keymap.of([...defaultKeymap, ...historyKeymap]),
        EditorView.lineWrapping,
        EditorView.theme({
          '&': { minHeight: '18rem', maxHeight: '70vh', fontSize: '14px' },
          '.cm-scroller': { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace' },
          '&.cm-focused': { outline: '3px solid #f59f00' },
        }),
        EditorView.contentAttributes.of({ 'aria-label': `Content of ${path}`, 'aria-multiline': 'true' }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) onChange();
        }),
        ...lang,
      ],
    }),
  });
  return {
    view,
    text: () => view.state.doc.toString(),
    goToLine(n: number) {
      const line = view.state.doc.line(Math.min(Math.max(1, n), view.state.doc.lines));
      view.dispatch({ selection: { anchor: line.from }, scrollIntoView: true });
      view.focus();
    },
    destroy: () => view.destroy(),
  };
}
