// The application shell: navigation, routing to pages, an error boundary
// so a rendering bug shows a message instead of a blank screen, and the
// login gate: when the server requires authentication and this browser has
// neither a session nor a pasted API key (or an API call answers 401), the
// login page takes the place of the app.
import { render } from "preact";
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useErrorBoundary, useState } from "preact/hooks";
import { apiKey, logout, me, onUnauthorized } from "./api";
import type { Me } from "./api";
import { Loading } from "./components/common";
import { Login } from "./pages/Login";
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

interface AuthState {
  checked: boolean;
  me: Me | null;
  needLogin: boolean;
  expired: boolean;
}

function useAuth() {
  const [auth, setAuth] = useState<AuthState>({ checked: false, me: null, needLogin: false, expired: false });
  const check = useCallback(async (afterRefusal = false) => {
    try {
      const m = await me();
      const need = m.auth_required && m.via === "anonymous" && !apiKey();
      setAuth({ checked: true, me: m, needLogin: need, expired: need && afterRefusal });
    } catch {
      // A bad pasted key or an unreachable server: the pages say so.
      setAuth({ checked: true, me: null, needLogin: false, expired: false });
    }
  }, []);
  useEffect(() => {
    check();
    onUnauthorized(() => check(true));
    return () => onUnauthorized(null);
  }, [check]);
  return { auth, check };
}

function App() {
  const { path, params } = useLocation();
  const { auth, check } = useAuth();
  const section = "/" + (path.split("/")[1] || "");
  if (auth.needLogin) return <Login onDone={() => check()} expired={auth.expired} />;
  const user = auth.me && auth.me.via === "session" && auth.me.user ? auth.me.user.name : null;
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
        {user && (
          <div class="who">
            <span>
              Signed in as <strong>{user}</strong>
            </span>
            <button
              type="button"
              onClick={async () => {
                try {
                  await logout();
                } finally {
                  check();
                }
              }}
            >
              Log out
            </button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {auth.checked ? <Boundary reset={path}>{page(path, params)}</Boundary> : <Loading />}
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
