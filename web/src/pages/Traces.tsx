// Trace list: filters live in the URL (every view is a link), sorting by
// start/duration/cost, cursor pages ("Load more"), and a live tail that
// polls the first page. Rows are keyboard navigable (arrows, j/k, Enter).
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { request } from "../api";
import type { Page, TraceRow } from "../api";
import { Empty, ErrorBox, Loading, RangePicker, Status, Tags } from "../components/common";
import { ago, compact, DASH, ms, rangeFrom, shortId, time, usd } from "../format";
import { useInterval, useLoad } from "../hooks";
import { navigate, setParams } from "../router";

const PAGE = 100;
const LIVE_MS = 2000;
const TEXT_FILTERS: Array<[string, string, string]> = [
  ["name", "Name", "root span name"],
  ["model", "Model", "e.g. gpt-4o-mini"],
  ["user", "User", "user id"],
  ["session", "Session", "session id"],
  ["tag", "Tag", "tag"],
  ["min_duration_ms", "Min latency (ms)", "0"],
  ["q", "Search", "text in inputs and outputs"],
  ["score_name", "Score name", "e.g. faithfulness"],
  ["score_min", "Score min", ""],
  ["score_max", "Score max", ""],
];
const SELECT_FILTERS = ["status", "feedback"];
const ALL_KEYS = ["range", ...TEXT_FILTERS.map(([k]) => k), ...SELECT_FILTERS, "sort", "order"];

declare global {
  interface Window {
    __lanterna?: Record<string, number>;
  }
}

function apiParams(params: URLSearchParams): Record<string, string> {
  const p: Record<string, string> = { from: rangeFrom(params.get("range")), limit: String(PAGE) };
  for (const k of ALL_KEYS) if (k !== "range" && params.get(k)) p[k] = params.get(k)!;
  return p;
}

function Filters({ params }: { params: URLSearchParams }) {
  const [form, setForm] = useState<Record<string, string>>({});
  useEffect(() => {
    const f: Record<string, string> = {};
    for (const k of ALL_KEYS) f[k] = params.get(k) || "";
    setForm(f);
  }, [params.toString()]);
  const apply = (e: Event) => {
    e.preventDefault();
    setParams(form, false);
  };
  const setNow = (k: string, v: string) => {
    setForm({ ...form, [k]: v });
    setParams({ [k]: v }, false);
  };
  return (
    <form class="filters" onSubmit={apply} aria-label="Trace filters">
      <RangePicker id="tr-range" value={form.range || "24h"} onChange={(v) => setNow("range", v)} />
      <label class="field" for="f-status">
        <span>Status</span>
        <select id="f-status" value={form.status || ""} onChange={(e) => setNow("status", (e.target as HTMLSelectElement).value)}>
          <option value="">any</option>
          <option value="ok">ok</option>
          <option value="error">error</option>
          <option value="unset">unset</option>
        </select>
      </label>
      <label class="field" for="f-feedback">
        <span>Feedback</span>
        <select id="f-feedback" value={form.feedback || ""} onChange={(e) => setNow("feedback", (e.target as HTMLSelectElement).value)}>
          <option value="">any</option>
          <option value="up">thumbs up</option>
          <option value="down">thumbs down</option>
        </select>
      </label>
      {TEXT_FILTERS.map(([k, label, ph]) => (
        <label class="field" for={`f-${k}`}>
          <span>{label}</span>
          <input
            id={`f-${k}`}
            name={k}
            value={form[k] || ""}
            placeholder={ph}
            inputMode={k.startsWith("score_m") || k === "min_duration_ms" ? "decimal" : undefined}
            onInput={(e) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value })}
          />
        </label>
      ))}
      <div class="filter-buttons">
        <button type="submit">Apply</button>
        <button type="button" onClick={() => navigate("/traces")}>
          Reset
        </button>
      </div>
    </form>
  );
}

function SortHeader({ label, field, params }: { label: string; field: string; params: URLSearchParams }) {
  const sort = params.get("sort") || "start";
  const order = params.get("order") || "desc";
  const active = sort === field;
  const next = active && order === "desc" ? "asc" : "desc";
  return (
    <th scope="col" class={field === "start" ? undefined : "r"} aria-sort={active ? (order === "asc" ? "ascending" : "descending") : "none"}>
      <button type="button" class="sort" onClick={() => setParams({ sort: field === "start" ? null : field, order: next === "desc" ? null : next }, false)}>
        {label} {active ? (order === "asc" ? "▲" : "▼") : ""}
      </button>
    </th>
  );
}

function TraceTable({ rows, params, t0 }: { rows: TraceRow[]; params: URLSearchParams; t0: number }) {
  const body = useRef<HTMLTableSectionElement>(null);
  const [active, setActive] = useState(0);
  // How long from data in hand to rows in the DOM and painted (read by the
  // browser tests and shown in the footer).
  const [paintMs, setPaintMs] = useState<number | null>(null);
  useLayoutEffect(() => {
    if (!t0) return;
    const dom = performance.now() - t0;
    requestAnimationFrame(() =>
      setTimeout(() => {
        const paint = performance.now() - t0;
        window.__lanterna = { ...(window.__lanterna || {}), listRows: rows.length, listDomMs: dom, listPaintMs: paint };
        setPaintMs(paint);
      }, 0),
    );
  }, [t0]);
  const open = (i: number) => rows[i] && navigate(`/traces/${rows[i].trace_id}`);
  const focusRow = (i: number) => {
    const n = Math.max(0, Math.min(rows.length - 1, i));
    setActive(n);
    const tr = body.current && (body.current.children[n] as HTMLElement | undefined);
    if (tr) tr.focus();
  };
  const onKey = (e: KeyboardEvent) => {
    const k = e.key;
    if (k === "ArrowDown" || k === "j") focusRow(active + 1);
    else if (k === "ArrowUp" || k === "k") focusRow(active - 1);
    else if (k === "Home") focusRow(0);
    else if (k === "End") focusRow(rows.length - 1);
    else if (k === "PageDown") focusRow(active + 10);
    else if (k === "PageUp") focusRow(active - 10);
    else if (k === "Enter" || k === "o") open(active);
    else return;
    e.preventDefault();
  };
  return (
    <>
      <table class="grid traces" aria-label="Traces" aria-rowcount={rows.length} data-rows={rows.length}>
        <thead>
          <tr>
            <SortHeader label="Start" field="start" params={params} />
            <th scope="col">Name</th>
            <th scope="col">Status</th>
            <SortHeader label="Duration" field="duration" params={params} />
            <th scope="col">Models</th>
            <th scope="col" class="r">Tokens</th>
            <SortHeader label="Cost" field="cost" params={params} />
            <th scope="col">User</th>
            <th scope="col">Session</th>
            <th scope="col" class="r">Spans</th>
            <th scope="col">Tags</th>
          </tr>
        </thead>
        <tbody ref={body} onKeyDown={onKey}>
          {rows.map((r, i) => (
            <tr
              key={r.trace_id}
              tabIndex={i === active ? 0 : -1}
              class={r.status === "error" || r.error_count > 0 ? "row-error" : undefined}
              aria-label={`Trace ${r.name || r.trace_id}`}
              onFocus={() => setActive(i)}
              onDblClick={() => open(i)}
            >
              <td title={r.start_time}>
                {time(r.start_ns)} <span class="muted">{ago(r.start_ns)}</span>
              </td>
              <td>
                <a href={`/traces/${r.trace_id}`} tabIndex={-1}>
                  {r.name || shortId(r.trace_id)}
                </a>
              </td>
              <td>
                <Status status={r.status} />
                {r.error_count > 0 && r.status !== "error" && <span class="bad"> {r.error_count} err</span>}
              </td>
              <td class="r">{ms(r.duration_ms)}</td>
              <td>{r.models && r.models.length ? r.models.join(", ") : DASH}</td>
              <td class="r" title={`${r.input_tokens ?? DASH} in / ${r.output_tokens ?? DASH} out`}>
                {compact(r.total_tokens)}
              </td>
              <td class="r">{usd(r.cost_usd)}</td>
              <td>{r.user_id || DASH}</td>
              <td>{r.session_id ? <a href={`/sessions/${encodeURIComponent(r.session_id)}`} tabIndex={-1}>{r.session_id}</a> : DASH}</td>
              <td class="r">{r.span_count}</td>
              <td>
                <Tags tags={r.tags} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {paintMs !== null && (
        <p class="muted small" data-testid="render-time">
          {rows.length} rows rendered in {paintMs.toFixed(0)} ms
        </p>
      )}
    </>
  );
}

export function Traces({ params }: { params: URLSearchParams }) {
  const key = ALL_KEYS.map((k) => params.get(k) || "").join("|");
  const live = params.get("live") === "1";
  const first = useLoad(key, (signal) => request<Page<TraceRow>>("/api/v1/traces", apiParams(params), { signal }));
  const [rows, setRows] = useState<TraceRow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [t0, setT0] = useState(0);
  const [moreError, setMoreError] = useState<Error | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  useEffect(() => {
    if (!first.data) return;
    setT0(performance.now());
    setRows(first.data.data);
    setCursor(first.data.next_cursor);
    setMoreError(null);
  }, [first.data]);

  const more = async () => {
    if (!cursor) return;
    setLoadingMore(true);
    try {
      const page = await request<Page<TraceRow>>("/api/v1/traces", { ...apiParams(params), cursor });
      setRows((r) => r.concat(page.data));
      setCursor(page.next_cursor);
      setMoreError(null);
    } catch (e) {
      setMoreError(e as Error);
    } finally {
      setLoadingMore(false);
    }
  };

  // Live tail: newest first, fresh rows replace their old copies.
  useInterval(
    async () => {
      try {
        const p = apiParams(params);
        delete p.sort;
        delete p.order;
        const page = await request<Page<TraceRow>>("/api/v1/traces", p);
        setRows((old) => {
          const fresh = new Map(page.data.map((r) => [r.trace_id, r]));
          const rest = old.filter((r) => !fresh.has(r.trace_id));
          return page.data.concat(rest);
        });
        setMoreError(null);
      } catch (e) {
        setMoreError(e as Error);
      }
    },
    live ? LIVE_MS : null,
  );

  return (
    <section aria-labelledby="traces-title">
      <div class="page-head">
        <h1 id="traces-title">Traces</h1>
        <div class="toolbar">
          <label class="check" for="live">
            <input
              id="live"
              type="checkbox"
              checked={live}
              onChange={(e) => setParams({ live: (e.target as HTMLInputElement).checked ? "1" : null, sort: null, order: null })}
            />
            Live tail {live && <span class="pulse" aria-hidden="true" />}
          </label>
        </div>
      </div>
      <Filters params={params} />
      {first.data && first.data.search_complete === false && (
        <p class="muted small" data-testid="search-behind">
          Full-text search is catching up: the newest spans are not searchable yet.
        </p>
      )}
      {first.error && <ErrorBox error={first.error} retry={first.reload} />}
      {first.loading && !first.data && <Loading what="Loading traces" />}
      {first.data && !first.error && (rows.length ? <TraceTable rows={rows} params={params} t0={t0} /> : <Empty>No traces match these filters in this time range.</Empty>)}
      {moreError && <ErrorBox error={moreError} />}
      {cursor && !first.error && !live && (
        <button type="button" class="more" onClick={more} disabled={loadingMore}>
          {loadingMore ? "Loading…" : "Load more"}
        </button>
      )}
    </section>
  );
}
