// CodeMirror 6 with YAML: its own chunk, loaded by the launchpad only.
import { yaml } from "@codemirror/lang-yaml";
import { basicSetup, EditorView } from "codemirror";

export function createEditor(parent: HTMLElement, doc: string, onChange: (doc: string) => void): EditorView {
  parent.textContent = "";
  return new EditorView({
    doc,
    parent,
    extensions: [
      basicSetup,
      yaml(),
      EditorView.updateListener.of((u) => {
        if (u.docChanged) onChange(u.state.doc.toString());
      }),
    ],
  });
}
