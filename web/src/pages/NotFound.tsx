export function NotFound({ what, detail }: { what: string; detail?: string }) {
  return (
    <section class="not-found" aria-labelledby="nf-title">
      <h1 id="nf-title">{what === "page" ? "Page not found" : `${what[0].toUpperCase()}${what.slice(1)} not found`}</h1>
      <p>
        {what === "page" ? "Nothing lives at " : `No ${what} `}
        {detail && <code>{detail}</code>}
        {what === "page" ? "." : " exists in this project (or your API key cannot see it)."}
      </p>
      <p>
        <a href="/traces">Browse traces</a> · <a href="/">Dashboard</a>
      </p>
    </section>
  );
}
