// Asset selection as in the CLI: `key`, `+key` (key and its parents), `key+` (and its
// children), `++key` / `key++` (two levels), `*key` / `key*` (all ancestors / descendants),
// several clauses separated by spaces or commas. Keys are written with `/` between parts.

export type Graph = { parents: Map<string, string[]>; children: Map<string, string[]> };

export type Selection = { keys: Set<string>; unknown: string[] };

function walk(start: string, next: Map<string, string[]>, depth: number, into: Set<string>): void {
  let frontier = [start];
  for (let level = 0; level < depth && frontier.length; level++) {
    const following: string[] = [];
    for (const key of frontier) {
      for (const n of next.get(key) ?? []) {
        if (!into.has(n)) {
          into.add(n);
          following.push(n);
        }
      }
    }
    frontier = following;
  }
}

function depthOf(marks: string): number {
  if (marks === "") return 0;
  if (marks.includes("*")) return Infinity;
  return marks.length;
}

export function select(text: string, graph: Graph): Selection {
  const keys = new Set<string>();
  const unknown: string[] = [];
  for (const clause of text.split(/[\s,]+/).filter(Boolean)) {
    const m = /^([+*]*)(.*?)([+*]*)$/.exec(clause)!;
    const key = m[2];
    if (!graph.parents.has(key)) {
      unknown.push(key);
      continue;
    }
    keys.add(key);
    walk(key, graph.parents, depthOf(m[1]), keys);
    walk(key, graph.children, depthOf(m[3]), keys);
  }
  return { keys, unknown };
}
