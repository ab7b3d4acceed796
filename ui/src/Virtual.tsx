import type { ComponentChildren } from "preact";
import { useRef, useState } from "preact/hooks";

/** Draws only the rows in view: a 50,000-event log scrolls like a 50-event one. */
export function Virtual<T>(props: {
  items: T[];
  rowHeight: number;
  height: number;
  row: (item: T, index: number) => ComponentChildren;
  class?: string;
  follow?: boolean;
}) {
  const { items, rowHeight, height } = props;
  const [top, setTop] = useState(0);
  const box = useRef<HTMLDivElement>(null);
  const first = Math.max(0, Math.floor(top / rowHeight) - 10);
  const last = Math.min(items.length, Math.ceil((top + height) / rowHeight) + 10);
  const atEnd = box.current ? box.current.scrollTop + height >= box.current.scrollHeight - rowHeight * 2 : true;
  if (props.follow && atEnd && box.current) {
    queueMicrotask(() => box.current && (box.current.scrollTop = box.current.scrollHeight));
  }
  return (
    <div
      ref={box}
      class={`virtual ${props.class ?? ""}`}
      style={{ height: `${height}px` }}
      onScroll={(e) => setTop((e.target as HTMLDivElement).scrollTop)}
    >
      <div style={{ height: `${items.length * rowHeight}px`, position: "relative" }}>
        <div style={{ position: "absolute", top: `${first * rowHeight}px`, left: 0, right: 0 }}>
          {items.slice(first, last).map((item, i) => props.row(item, first + i))}
        </div>
      </div>
    </div>
  );
}
