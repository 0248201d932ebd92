// A collapsible JSON view built on <details>, so it is keyboard operable
// without extra code. Big arrays/objects and long strings are cut in view.
import { useState } from "preact/hooks";

const CHILD_LIMIT = 100;
const STRING_LIMIT = 300;

function Str({ s }: { s: string }) {
  const [all, setAll] = useState(false);
  if (all || s.length <= STRING_LIMIT) return <span class="j-str">"{s}"</span>;
  return (
    <span class="j-str">
      "{s.slice(0, STRING_LIMIT)}…"{" "}
      <button type="button" class="link" onClick={() => setAll(true)}>
        show all ({s.length.toLocaleString()})
      </button>
    </span>
  );
}

function Leaf({ v }: { v: unknown }) {
  if (v === null) return <span class="j-null">null</span>;
  if (typeof v === "string") return <Str s={v} />;
  if (typeof v === "number") return <span class="j-num">{String(v)}</span>;
  if (typeof v === "boolean") return <span class="j-bool">{String(v)}</span>;
  return <span>{String(v)}</span>;
}

function Node({ name, value, open }: { name?: string; value: unknown; open: boolean }) {
  const [all, setAll] = useState(false);
  const label = name !== undefined ? <span class="j-key">{name}: </span> : null;
  if (value === null || typeof value !== "object") {
    return (
      <div class="j-row">
        {label}
        <Leaf v={value} />
      </div>
    );
  }
  const entries: Array<[string, unknown]> = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value as Record<string, unknown>);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  if (!entries.length) {
    return (
      <div class="j-row">
        {label}
        <span class="j-null">{Array.isArray(value) ? "[]" : "{}"}</span>
      </div>
    );
  }
  const shown = all ? entries : entries.slice(0, CHILD_LIMIT);
  return (
    <details class="j-node" open={open}>
      <summary>
        {label}
        <span class="j-count">{summary}</span>
      </summary>
      <div class="j-children">
        {shown.map(([k, v]) => (
          <Node name={k} value={v} open={false} />
        ))}
        {shown.length < entries.length && (
          <button type="button" class="link" onClick={() => setAll(true)}>
            show all {entries.length.toLocaleString()} entries
          </button>
        )}
      </div>
    </details>
  );
}

export function JsonTree({ value, label }: { value: unknown; label?: string }) {
  return (
    <div class="json-tree" aria-label={label}>
      <Node value={value} open={true} />
    </div>
  );
}
