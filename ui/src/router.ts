import { useEffect, useState } from "preact/hooks";

// History-API routing: the webserver answers any unknown path with index.html.

const listeners = new Set<() => void>();

export function navigate(path: string): void {
  if (path === location.pathname + location.search) return;
  history.pushState(null, "", path);
  listeners.forEach((l) => l());
}

window.addEventListener("popstate", () => listeners.forEach((l) => l()));

export function usePath(): string {
  const [path, setPath] = useState(location.pathname + location.search);
  useEffect(() => {
    const update = () => setPath(location.pathname + location.search);
    listeners.add(update);
    return () => void listeners.delete(update);
  }, []);
  return path;
}

/** Links that route inside the page; a modified click opens a tab as usual. */
export function onLink(event: MouseEvent): void {
  const anchor = (event.target as HTMLElement).closest("a");
  if (!anchor || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || anchor.target) return;
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/graphql")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

/** Set (or, when empty, drop) one query parameter of the current address in place: no new
 * history entry and no re-render of the page, so a page keeps its state in its URL. */
export function replaceParam(name: string, value: string): void {
  const url = new URL(location.href);
  if (value) url.searchParams.set(name, value);
  else url.searchParams.delete(name);
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
}

/** One query parameter of the current address ("" when absent). */
export function param(name: string): string {
  return new URLSearchParams(location.search).get(name) ?? "";
}
