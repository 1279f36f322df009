import { useEffect, useState } from "react";
import { actorName, setActorName } from "./api.ts";
import { BudgetPage } from "./BudgetPage.tsx";
import { ChartsPage } from "./ChartsPage.tsx";
import { LinePage } from "./LinePage.tsx";
import { RunPage } from "./RunPage.tsx";

type Route =
  | { page: "line" }
  | { page: "charts" }
  | { page: "budget" }
  | { page: "run"; id: number };

function routeOf(hash: string): Route {
  const run = /^#\/runs\/(\d+)/.exec(hash);
  if (run) return { page: "run", id: Number(run[1]) };
  if (hash.startsWith("#/charts")) return { page: "charts" };
  if (hash.startsWith("#/budget")) return { page: "budget" };
  return { page: "line" };
}

/** Hash routes (#/, #/charts, #/budget, #/runs/3): the server serves one page, whatever the path. */
export function App() {
  const [route, setRoute] = useState(() => routeOf(location.hash));
  const [name, setName] = useState(actorName);
  useEffect(() => {
    const onHash = () => setRoute(routeOf(location.hash));
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  return (
    <div className="app">
      <header className="top">
        <a href="#/" className="brand">
          nightshift
        </a>
        <nav>
          <a href="#/" className={route.page === "line" ? "on" : ""}>
            Line
          </a>
          <a href="#/charts" className={route.page === "charts" ? "on" : ""}>
            Charts
          </a>
          <a
            href="#/budget"
            className={route.page === "budget" ? "on" : ""}
            data-testid="nav-budget"
          >
            Budget
          </a>
        </nav>
        <label className="who">
          supervisor
          <input
            value={name}
            placeholder="your name"
            onChange={(e) => {
              setName(e.target.value);
              setActorName(e.target.value);
            }}
          />
        </label>
      </header>
      <main>
        {route.page === "line" && <LinePage />}
        {route.page === "charts" && <ChartsPage />}
        {route.page === "budget" && <BudgetPage />}
        {route.page === "run" && <RunPage id={route.id} />}
      </main>
    </div>
  );
}
