// The raw file editor: CodeMirror 6 with YAML or Markdown highlighting.
import { EditorState } from '@codemirror/state';
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { syntaxHighlighting, defaultHighlightStyle, bracketMatching } from '@codemirror/language';
import { yaml } from '@codemirror/lang-yaml';
import { markdown } from '@codemirror/lang-markdown';

export type Editor = { view: EditorView; text(): string; goToLine(n: number): void; destroy(): void };

export function createEditor(parent: HTMLElement, path: string, doc: string, onChange: () => void): Editor {
  const lang = path.endsWith('.md') ? [markdown()] : path.endsWith('.yaml') || path.endsWith('.yml') ? [yaml()] : [];
  const view = new EditorView({
    parent,
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
