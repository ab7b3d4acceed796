export type LayoutRequest = {
  nodes: { id: string; group?: string }[];
  edges: [string, string][];
  width: number;
  height: number;
};

export type LayoutResult = {
  nodes: Record<string, { x: number; y: number }>;
  edges: { from: string; to: string; points: [number, number][] }[];
  groups: { name: string; x: number; y: number; w: number; h: number }[];
  width: number;
  height: number;
};

/** The layout of `request`, computed in a Web Worker (one per call, ended after). */
export function layout(request: LayoutRequest): Promise<LayoutResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./layout.worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (e: MessageEvent<LayoutResult>) => {
      worker.terminate();
      resolve(e.data);
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(e.message || "layout failed"));
    };
    worker.postMessage(request);
  });
}
