// Pure helpers for partition status: each key's state, runs of one state (what a bar draws),
// and the keys between two picked ends.

export type PartitionState = "materialized" | "failed" | "in_progress" | "missing";

export type Statuses = {
  materializedPartitions: string[];
  failedPartitions: string[];
  unmaterializedPartitions: string[];
  materializingPartitions: string[];
};

export type Segment = { state: PartitionState; first: number; last: number };

/** The state of each of `keys` (in order) by the statuses GraphQL gives. */
export function statesOf(keys: string[], s: Statuses): PartitionState[] {
  const by = new Map<string, PartitionState>();
  for (const k of s.materializedPartitions) by.set(k, "materialized");
  for (const k of s.failedPartitions) by.set(k, "failed");
  for (const k of s.materializingPartitions) by.set(k, "in_progress");
  return keys.map((k) => by.get(k) ?? "missing");
}

/** Consecutive keys in one state, as index ranges. */
export function segments(states: PartitionState[]): Segment[] {
  const out: Segment[] = [];
  states.forEach((state, i) => {
    const last = out[out.length - 1];
    if (last && last.state === state) last.last = i;
    else out.push({ state, first: i, last: i });
  });
  return out;
}

export function counts(states: PartitionState[]): Record<PartitionState, number> {
  const c: Record<PartitionState, number> = { materialized: 0, failed: 0, in_progress: 0, missing: 0 };
  for (const s of states) c[s] += 1;
  return c;
}

/** The keys from `a` to `b` (either order); an error naming a key that is not one of `keys`. */
export function keysBetween(keys: string[], a: string, b: string): string[] | string {
  const i = keys.indexOf(a.trim());
  const j = keys.indexOf(b.trim());
  if (i < 0) return `no partition ${JSON.stringify(a)}`;
  if (j < 0) return `no partition ${JSON.stringify(b)}`;
  return keys.slice(Math.min(i, j), Math.max(i, j) + 1);
}
