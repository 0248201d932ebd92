// Dashboard: figures over time from /api/v1/metrics (rollups, so any range
// costs the same), breakdowns by model, feature and user, daily token burn
// with its 30-day projection. Auto-refreshes on a chosen period.
import { useMemo } from "preact/hooks";
import { request } from "../api";
import type { Metrics } from "../api";
import { Chart, COLORS } from "../components/Chart";
import type { ChartSeries } from "../components/Chart";
import { Empty, ErrorBox, Loading, RangePicker } from "../components/common";
import { compact, ms, num, nsString, pct, rangeFrom, time, usd } from "../format";
import { useInterval, useLoad } from "../hooks";
import { setParams } from "../router";

const REFRESH: Array<[string, number | null]> = [["off", null], ["10s", 10e3], ["30s", 30e3], ["1m", 60e3], ["5m", 300e3]];
const BREAKDOWN = "count,errors,latency_p95_ms,total_tokens,cost_usd";

type Settled<T> = { ok: true; value: T } | { ok: false; error: Error };

async function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    return { ok: false, error: error as Error };
  }
}

interface Board {
  main: Settled<Metrics>;
  model: Settled<Metrics>;
  feature: Settled<Metrics>;
  user: Settled<Metrics>;
  daily: Settled<Metrics>;
}

function loadBoard(range: string, kind: string, signal: AbortSignal): Promise<Board> {
  const from = rangeFrom(range);
  const k = kind === "all" ? undefined : kind;
  const get = (params: Record<string, string | number | undefined>) => settle(request<Metrics>("/api/v1/metrics", params, { signal }));
  return Promise.all([
    get({ from, kind: k }),
    get({ from, kind: k, group_by: "model", metrics: BREAKDOWN }),
    get({ from, kind: k, group_by: "feature", metrics: BREAKDOWN }),
    // per-trace figures: the span filters do not apply to user grouping
    get({ from, group_by: "user", metrics: BREAKDOWN }),
    get({ from: nsString(Date.now() - 30 * 86400e3), kind: k, interval: "1d", metrics: "total_tokens,cost_usd" }),
  ]).then(([main, model, feature, user, daily]) => ({ main, model, feature, user, daily }));
}

function seriesOf(m: Metrics, defs: Array<[string, string]>): { times: number[]; series: ChartSeries[] } {
  const points = (m.series[0] && m.series[0].points) || [];
  return {
    times: points.map((p) => Date.parse(p.time) / 1000),
    series: defs.map(([key, label], i) => ({ label, color: COLORS[i], values: points.map((p) => (p[key] ?? null) as number | null) })),
  };
}

function Card({ label, value, sub }: { label: string; value: string; sub?: string }) {
  return (
    <div class="card">
      <div class="card-label">{label}</div>
      <div class="card-value">{value}</div>
      {sub && <div class="card-sub">{sub}</div>}
    </div>
  );
}

function Breakdown({ title, result, by, link }: { title: string; result: Settled<Metrics>; by: string; link?: (g: string) => string }) {
  if (!result.ok) return <section class="panel"><h2>{title}</h2><ErrorBox error={result.error} /></section>;
  const rows = result.value.series.filter((s) => (s.totals.count || 0) > 0);
  const maxTok = Math.max(1, ...rows.map((r) => r.totals.total_tokens || 0));
  return (
    <section class="panel" aria-label={title}>
      <h2>{title}</h2>
      {!rows.length ? (
        <Empty>No data in this range.</Empty>
      ) : (
        <table class="grid breakdown">
          <thead>
            <tr>
              <th scope="col">{by}</th>
              <th scope="col" class="r">Requests</th>
              <th scope="col" class="r">Errors</th>
              <th scope="col" class="r">p95</th>
              <th scope="col">Tokens</th>
              <th scope="col" class="r">Cost</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => {
              const g = s.group ?? "";
              const t = s.totals;
              return (
                <tr>
                  <td>{link && g && g !== "(other)" && g !== "(none)" ? <a href={link(g)}>{g}</a> : g || "(none)"}</td>
                  <td class="r">{num(t.count)}</td>
                  <td class={"r" + (t.errors ? " bad" : "")}>{num(t.errors)}</td>
                  <td class="r">{ms(t.latency_p95_ms)}</td>
                  <td>
                    <div class="bar-cell">
                      <span class="bar" style={{ width: `${((t.total_tokens || 0) / maxTok) * 100}%` }} />
                      <span>{compact(t.total_tokens)}</span>
                    </div>
                  </td>
                  <td class="r">{usd(t.cost_usd)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Overview({ m, allSpans }: { m: Metrics; allSpans: boolean }) {
  const t = m.totals;
  const charts = useMemo(
    () => ({
      req: seriesOf(m, [["count", "requests"], ["errors", "errors"]]),
      lat: seriesOf(m, [["latency_p50_ms", "p50"], ["latency_p95_ms", "p95"], ["latency_p99_ms", "p99"]]),
      ttft: seriesOf(m, [["ttft_p50_ms", "TTFT p50"], ["ttft_p95_ms", "TTFT p95"]]),
      tps: seriesOf(m, [["tps_p50", "tokens/s p50"]]),
      tok: seriesOf(m, [["input_tokens", "input"], ["output_tokens", "output"]]),
      cost: seriesOf(m, [["cost_usd", "cost"]]),
    }),
    [m],
  );
  const fb = m.scores && m.scores.feedback;
  return (
    <>
      <div class="cards">
        <Card label="Requests" value={compact(t.count)} sub={allSpans && t.traces !== undefined ? `${compact(t.traces)} traces` : undefined} />
        <Card label="Errors" value={compact(t.errors)} sub={pct(t.error_rate)} />
        <Card label="Latency p50 / p95 / p99" value={ms(t.latency_p95_ms)} sub={`${ms(t.latency_p50_ms)} / ${ms(t.latency_p95_ms)} / ${ms(t.latency_p99_ms)}`} />
        <Card label="TTFT p50 / p95" value={ms(t.ttft_p50_ms)} sub={ms(t.ttft_p95_ms)} />
        <Card label="Output tokens/s p50" value={num(t.tps_p50, 1)} />
        <Card label="Input / output tokens" value={compact(t.total_tokens)} sub={`${compact(t.input_tokens)} in / ${compact(t.output_tokens)} out`} />
        <Card label="Cost" value={usd(t.cost_usd)} sub={t.unpriced_spans ? `${num(t.unpriced_spans)} unpriced spans` : undefined} />
        {fb && <Card label="Feedback" value={`▲ ${num(fb.up)}  ▼ ${num(fb.down)}`} sub={fb.thumbs_down_rate !== null && fb.thumbs_down_rate !== undefined ? `${pct(fb.thumbs_down_rate)} thumbs down` : undefined} />}
      </div>
      <div class="charts">
        <Chart title="Requests and errors" {...charts.req} format={(v) => compact(v)} />
        <Chart title="Latency" {...charts.lat} format={(v) => ms(v)} />
        <Chart title="Time to first token" {...charts.ttft} format={(v) => ms(v)} />
        <Chart title="Output tokens per second" {...charts.tps} format={(v) => num(v, 1)} />
        <Chart title="Tokens" {...charts.tok} format={(v) => compact(v)} />
        <Chart title="Cost" {...charts.cost} format={(v) => usd(v)} />
      </div>
    </>
  );
}

function Burn({ result }: { result: Settled<Metrics> }) {
  const daily = useMemo(() => {
    if (!result.ok) return null;
    const m = result.value;
    const s = seriesOf(m, [["total_tokens", "tokens per day"]]);
    s.series[0].bars = true;
    const perDay = m.burn ? m.burn.tokens_per_day : null;
    s.series.push({ label: "average per day", color: COLORS[1], dash: [6, 4], values: s.times.map(() => perDay) });
    return s;
  }, [result]);
  if (!result.ok) return <section class="panel"><h2>Daily token burn</h2><ErrorBox error={result.error} /></section>;
  const b = result.value.burn;
  return (
    <section class="panel" aria-label="Daily token burn">
      <h2>Daily token burn, last 30 days</h2>
      {b && (
        <p class="burn">
          {compact(b.tokens_per_day)} tokens/day ({usd(b.cost_per_day_usd)}/day
          {b.since && b.since !== result.value.from ? `, since ${time(b.since)}` : ""}) → projected 30 days:{" "}
          <strong>{compact(b.projected_tokens_30d)} tokens</strong>, <strong>{usd(b.projected_cost_30d_usd)}</strong>
        </p>
      )}
      {daily && <Chart title="Tokens per day" times={daily.times} series={daily.series} format={(v) => compact(v)} />}
    </section>
  );
}

export function Dashboard({ params }: { params: URLSearchParams }) {
  const range = params.get("range") || "24h";
  const kind = params.get("kind") || "LLM";
  const refresh = params.get("refresh") || "30s";
  const board = useLoad(`${range}|${kind}`, (signal) => loadBoard(range, kind, signal));
  useInterval(board.reload, (REFRESH.find(([l]) => l === refresh) || REFRESH[0])[1]);
  const d = board.data;
  return (
    <section aria-labelledby="dash-title">
      <div class="page-head">
        <h1 id="dash-title">Dashboard</h1>
        <div class="toolbar">
          <RangePicker value={range} onChange={(v) => setParams({ range: v })} />
          <label class="field" for="dash-kind">
            <span>Spans</span>
            <select id="dash-kind" value={kind} onChange={(e) => setParams({ kind: (e.target as HTMLSelectElement).value })}>
              <option value="LLM">LLM calls</option>
              <option value="all">All spans</option>
            </select>
          </label>
          <label class="field" for="dash-refresh">
            <span>Auto-refresh</span>
            <select id="dash-refresh" value={refresh} onChange={(e) => setParams({ refresh: (e.target as HTMLSelectElement).value })}>
              {REFRESH.map(([l]) => (
                <option value={l}>{l}</option>
              ))}
            </select>
          </label>
          <button type="button" onClick={board.reload} aria-label="Refresh now">
            ↻
          </button>
        </div>
      </div>
      {board.error && <ErrorBox error={board.error} retry={board.reload} />}
      {!d && !board.error && <Loading what="Loading metrics" />}
      {d && (
        <>
          {d.main.ok ? <Overview m={d.main.value} allSpans={kind === "all"} /> : <ErrorBox error={d.main.error} retry={board.reload} />}
          <Burn result={d.daily} />
          <div class="breakdowns">
            <Breakdown title="By model" by="Model" result={d.model} link={(g) => `/traces?model=${encodeURIComponent(g)}&range=${range}`} />
            <Breakdown title="By feature" by="Feature" result={d.feature} />
            <Breakdown title="By user" by="User" result={d.user} link={(g) => `/traces?user=${encodeURIComponent(g)}&range=${range}`} />
          </div>
        </>
      )}
    </section>
  );
}
