// Usage and cost per user, from /api/v1/metrics grouped by user (per-trace
// figures: count is traces, latency is the trace duration).
import { request } from "../api";
import type { Metrics } from "../api";
import { Empty, ErrorBox, Loading, RangePicker } from "../components/common";
import { compact, ms, num, rangeFrom, usd } from "../format";
import { useLoad } from "../hooks";
import { setParams } from "../router";

export function Users({ params }: { params: URLSearchParams }) {
  const range = params.get("range") || "7d";
  const res = useLoad(range, (signal) =>
    request<Metrics>(
      "/api/v1/metrics",
      { from: rangeFrom(range), group_by: "user", limit_groups: 100, metrics: "count,errors,latency_p50_ms,latency_p95_ms,input_tokens,output_tokens,total_tokens,cost_usd" },
      { signal },
    ),
  );
  const rows = res.data ? res.data.series.filter((s) => (s.totals.count || 0) > 0) : [];
  const maxCost = Math.max(1e-12, ...rows.map((r) => r.totals.cost_usd || 0));
  return (
    <section aria-labelledby="users-title">
      <div class="page-head">
        <h1 id="users-title">Users</h1>
        <div class="toolbar">
          <RangePicker id="u-range" value={range} onChange={(v) => setParams({ range: v })} />
        </div>
      </div>
      {res.error && <ErrorBox error={res.error} retry={res.reload} />}
      {!res.data && !res.error && <Loading what="Loading users" />}
      {res.data &&
        (rows.length === 0 ? (
          <Empty>No traces with a user id in this range. Spans carry one through attributes such as user.id.</Empty>
        ) : (
          <table class="grid" aria-label="Usage per user">
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col" class="r">Traces</th>
                <th scope="col" class="r">Errors</th>
                <th scope="col" class="r">p50</th>
                <th scope="col" class="r">p95</th>
                <th scope="col" class="r">Input tokens</th>
                <th scope="col" class="r">Output tokens</th>
                <th scope="col">Cost</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((s) => {
                const t = s.totals;
                const g = s.group || "";
                const real = g && g !== "(other)" && g !== "(none)";
                return (
                  <tr>
                    <td>{real ? <a href={`/traces?user=${encodeURIComponent(g)}&range=${range}`}>{g}</a> : g || "(none)"}</td>
                    <td class="r">{num(t.count)}</td>
                    <td class={"r" + (t.errors ? " bad" : "")}>{num(t.errors)}</td>
                    <td class="r">{ms(t.latency_p50_ms)}</td>
                    <td class="r">{ms(t.latency_p95_ms)}</td>
                    <td class="r">{compact(t.input_tokens)}</td>
                    <td class="r">{compact(t.output_tokens)}</td>
                    <td>
                      <div class="bar-cell">
                        <span class="bar" style={{ width: `${((t.cost_usd || 0) / maxCost) * 100}%` }} />
                        <span>{usd(t.cost_usd)}</span>
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ))}
    </section>
  );
}
