// The application shell: navigation, routing to pages, and an error
// boundary so a rendering bug shows a message instead of a blank screen.
import { render } from "preact";
import type { ComponentChildren } from "preact";
import { useErrorBoundary } from "preact/hooks";
import { onLinkClick, useLocation } from "./router";
import { Dashboard } from "./pages/Dashboard";
import { Traces } from "./pages/Traces";
import { TraceView } from "./pages/TraceView";
import { Sessions, SessionView } from "./pages/Sessions";
import { Users } from "./pages/Users";
import { Settings } from "./pages/Settings";
import { NotFound } from "./pages/NotFound";
import "./styles.css";

const NAV: Array<[string, string]> = [
  ["/", "Dashboard"],
  ["/traces", "Traces"],
  ["/sessions", "Sessions"],
  ["/users", "Users"],
  ["/settings", "Settings"],
];

function Boundary({ children, reset }: { children: ComponentChildren; reset: string }) {
  const [error, clear] = useErrorBoundary();
  if (error) {
    return (
      <div class="error-box" role="alert">
        <strong>This page failed to render</strong>
        <span class="error-message">{String((error as Error).message || error)}</span>
        <button type="button" onClick={clear}>
          Try again
        </button>
      </div>
    );
  }
  return <div key={reset}>{children}</div>;
}

function page(path: string, params: URLSearchParams) {
  let m: RegExpMatchArray | null;
  if (path === "/" || path === "/dashboard") return <Dashboard params={params} />;
  if (path === "/traces" || path === "/traces/") return <Traces params={params} />;
  if ((m = path.match(/^\/traces\/([^/]+)\/?$/))) return <TraceView traceId={decodeURIComponent(m[1])} params={params} />;
  if (path === "/sessions" || path === "/sessions/") return <Sessions params={params} />;
  if ((m = path.match(/^\/sessions\/(.+)$/))) return <SessionView sessionId={decodeURIComponent(m[1])} />;
  if (path === "/users" || path === "/users/") return <Users params={params} />;
  if (path === "/settings" || path === "/settings/") return <Settings />;
  return <NotFound what="page" detail={path} />;
}

function App() {
  const { path, params } = useLocation();
  const section = "/" + (path.split("/")[1] || "");
  return (
    <div class="app" onClick={onLinkClick}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a href="/" class="brand">
          Lanterna
        </a>
        <nav aria-label="Main">
          {NAV.map(([href, label]) => (
            <a href={href} aria-current={section === href || (href === "/" && section === "/dashboard") ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <Boundary reset={path}>{page(path, params)}</Boundary>
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
