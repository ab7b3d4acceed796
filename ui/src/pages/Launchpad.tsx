import { useEffect, useRef, useState } from "preact/hooks";
import { gql } from "../gql";
import { PartitionPicker } from "../partitions/PartitionPicker";
import { navigate } from "../router";
import { scaffoldYaml } from "../scaffold";
import { selectorFor } from "./Jobs";

type Problem = { message: string; path: string[]; reason: string };
type Validation = { __typename: string; errors?: Problem[]; message?: string };

const SCAFFOLD_QUERY = `query($p: PipelineSelector!) { pipelineOrError(params: $p) { __typename
  ... on Pipeline { runConfigJsonSchema } ... on Error { message } } }`;

function parseTags(text: string): { key: string; value: string }[] | string {
  const tags = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    const m = /^\s*([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (!m) return `tag line ${i + 1}: expected key=value`;
    tags.push({ key: m[1], value: m[2].trim() });
  }
  return tags;
}

export function LaunchpadPage({ location, job }: { location: string; job: string }) {
  const host = useRef<HTMLDivElement>(null);
  const [text, setText] = useState<string | null>(null);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [fatal, setFatal] = useState<string | null>(null);
  const [valid, setValid] = useState(false);
  const [tags, setTags] = useState("");
  const [launching, setLaunching] = useState(false);
  const [editorReady, setEditorReady] = useState(false);
  const editor = useRef<import("codemirror").EditorView | null>(null);
  const [selector, setSelector] = useState<{ repositoryLocationName: string; repositoryName: string } | null>(null);

  // The editor (CodeMirror with YAML) is loaded only when a launchpad opens.
  useEffect(() => {
    let view: { destroy(): void } | null = null;
    let live = true;
    (async () => {
      const params = await selectorFor(location, job);
      setSelector({ repositoryLocationName: params.repositoryLocationName, repositoryName: params.repositoryName });
      const d = await gql<{ pipelineOrError: { runConfigJsonSchema?: object; message?: string } }>(SCAFFOLD_QUERY, { p: params });
      if (!d.pipelineOrError.runConfigJsonSchema) throw new Error(d.pipelineOrError.message ?? "no such job");
      const initial = scaffoldYaml(d.pipelineOrError.runConfigJsonSchema);
      const { createEditor } = await import("../editor");
      if (!live || !host.current) return;
      const created = createEditor(host.current, initial, (doc) => setText(doc));
      view = editor.current = created;
      setText(initial);
      setEditorReady(true);
    })().catch((e: Error) => setFatal(e.message));
    return () => {
      live = false;
      view?.destroy();
    };
  }, [location, job]);

  useEffect(() => {
    if (text === null) return;
    let live = true;
    setValid(false);
    const timer = setTimeout(async () => {
      try {
        const params = await selectorFor(location, job);
        const d = await gql<{ isPipelineConfigValid: Validation }>(
          `query($p: PipelineSelector!, $c: RunConfigData) { isPipelineConfigValid(pipeline: $p, runConfigData: $c) {
            __typename ... on RunConfigValidationInvalid { errors { message path reason } } ... on Error { message } } }`,
          { p: params, c: text },
        );
        if (!live) return;
        const v = d.isPipelineConfigValid;
        setFatal(v.message ?? null);
        setProblems(v.errors ?? []);
        setValid(v.__typename === "PipelineConfigValidationValid");
      } catch (e) {
        if (live) (setProblems([]), setFatal((e as Error).message));
      }
    }, 250);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [text]);

  const launch = async () => {
    const parsed = parseTags(tags);
    if (typeof parsed === "string") return setFatal(parsed);
    setLaunching(true);
    try {
      const { pipelineName, ...sel } = await selectorFor(location, job);
      const d = await gql<{ launchRun: { __typename: string; run?: { runId: string }; message?: string; errors?: Problem[] } }>(
        `mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename ... on LaunchRunSuccess { run { runId } }
          ... on RunConfigValidationInvalid { errors { message path reason } } ... on Error { message } } }`,
        { p: { selector: { ...sel, jobName: pipelineName }, runConfigData: text, executionMetadata: { tags: parsed } } },
      );
      const r = d.launchRun;
      if (r.run) navigate(`/runs/${r.run.runId}`);
      else if (r.errors) setProblems(r.errors);
      else setFatal(`${r.__typename}: ${r.message ?? ""}`);
    } finally {
      setLaunching(false);
    }
  };

  return (
    <div class="page">
      <div class="toolbar">
        <h1>
          <a href="/jobs">Jobs</a> / <a href={`/jobs/${location}/${job}`}>{job}</a> / Launchpad
        </h1>
        <span class="spacer" />
        <span class={`validity ${valid ? "ok" : "bad"}`} data-valid={String(valid)}>
          {text === null ? "" : valid ? "Config is valid" : problems.length ? `${problems.length} problem(s)` : fatal ? "Invalid" : "Checking…"}
        </span>
        <button class="primary" disabled={!valid || launching} onClick={() => void launch()}>Launch run</button>
      </div>
      <div class="launchpad">
        <div class="editor" ref={host} data-ready={String(editorReady)}>
          {!editorReady && <span class="muted">Loading editor…</span>}
        </div>
        <div class="side">
          <h2>Problems</h2>
          {fatal && <div class="error problem">{fatal}</div>}
          {problems.length === 0 && !fatal && <p class="muted">None.</p>}
          <ul class="problems">
            {problems.map((p) => (
              <li class="problem" data-path={p.path.join(".")}>
                <code>{p.path.length ? p.path.join(".") : "(root)"}</code> <span class="muted">{p.reason}</span>
                <div>{p.message}</div>
              </li>
            ))}
          </ul>
          <PartitionPicker
            selector={selector}
            job={job}
            onPick={(_key, yaml, partitionTags) => {
              // The partition's config (a partitioned config's) replaces the editor's; its
              // tags replace those of the same keys.
              const view = editor.current;
              if (yaml && view) view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: yaml } });
              const own = parseTags(tags);
              const keep = typeof own === "string" ? [] : own.filter((t) => !partitionTags.some((p) => p.key === t.key));
              setTags([...keep, ...partitionTags].map((t) => `${t.key}=${t.value}`).join("\n"));
            }}
          />
          <h2>Tags</h2>
          <textarea class="tags-input" rows={4} placeholder="key=value, one a line" value={tags} onInput={(e) => setTags((e.target as HTMLTextAreaElement).value)} />
        </div>
      </div>
    </div>
  );
}
