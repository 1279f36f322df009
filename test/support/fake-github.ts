// A small fake of the GitHub REST API (issues and pull requests) on 127.0.0.1, answering as
// GitHub does: JSON bodies with `message` and `documentation_url`, rate-limit headers on every
// reply, 401 for a bad token, 404 for an unknown repository, 403 with x-ratelimit-remaining: 0
// when the limit is spent. Imports nothing from src/.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeIssue {
  number: number;
  title: string;
  body?: string;
  labels: string[];
  pull_request?: boolean;
}

export interface FakeGitHub {
  /** The API root as the client takes it (with the prefix, e.g. /api/v3, when one was given). */
  url: string;
  requests: { method: string; path: string; auth: string | undefined; body: unknown }[];
  /** Pull requests opened; a test closes one by setting its state (as a person would on GitHub). */
  pulls: {
    number: number;
    head: string;
    base: string;
    title: string;
    body: string;
    state?: "closed";
  }[];
  /** Requests left before the rate limit refuses (default: plenty). */
  rateLimitRemaining: number;
  close(): Promise<void>;
}

export async function startFakeGitHub(o: {
  token: string;
  repo: string;
  issues: FakeIssue[];
  prefix?: string;
}): Promise<FakeGitHub> {
  const prefix = o.prefix ?? "";
  const state: FakeGitHub = {
    url: "",
    requests: [],
    pulls: [],
    rateLimitRemaining: 5000,
    close: async () => {},
  };
  const reset = Math.floor(Date.now() / 1000) + 3600;
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "x-ratelimit-limit": "5000",
      "x-ratelimit-remaining": String(Math.max(0, state.rateLimitRemaining)),
      "x-ratelimit-reset": String(reset),
      "x-ratelimit-resource": "core",
      "x-github-api-version-selected": "2022-11-28",
    });
    res.end(JSON.stringify(body));
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://fake");
    const auth = req.headers.authorization;
    state.requests.push({
      method: req.method ?? "",
      path: url.pathname + url.search,
      auth,
      body: text ? JSON.parse(text) : undefined,
    });
    if (auth !== `token ${o.token}` && auth !== `Bearer ${o.token}`) {
      return send(res, 401, {
        message: "Bad credentials",
        documentation_url: "https://docs.github.com/rest",
        status: "401",
      });
    }
    if (state.rateLimitRemaining <= 0) {
      return send(res, 403, {
        message: "API rate limit exceeded for user ID 1.",
        documentation_url:
          "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
      });
    }
    state.rateLimitRemaining--;
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : "";
    const base = `/repos/${o.repo}`;
    if (req.method === "GET" && path === `${base}/issues`) {
      const label = url.searchParams.get("labels") ?? "";
      const perPage = Number(url.searchParams.get("per_page") ?? 30);
      const page = Number(url.searchParams.get("page") ?? 1);
      const matching = o.issues.filter((i) => !label || i.labels.includes(label));
      const slice = matching.slice((page - 1) * perPage, page * perPage);
      return send(
        res,
        200,
        slice.map((i) => ({
          id: 1000 + i.number,
          number: i.number,
          title: i.title,
          body: i.body ?? null,
          state: "open",
          html_url: `https://github.example/${o.repo}/issues/${i.number}`,
          labels: i.labels.map((name, n) => ({ id: n, name, color: "ededed" })),
          ...(i.pull_request
            ? { pull_request: { url: `https://github.example/${o.repo}/pull/${i.number}` } }
            : {}),
        })),
      );
    }
    const pullJson = (p: FakeGitHub["pulls"][number]) => ({
      number: p.number,
      html_url: `https://github.example/${o.repo}/pull/${p.number}`,
      state: p.state ?? "open",
      title: p.title,
      head: { ref: p.head, label: `${o.repo.split("/")[0]}:${p.head}` },
      base: { ref: p.base },
    });
    if (req.method === "GET" && path === `${base}/pulls`) {
      // GitHub's filters: state (default open), head as "owner:branch", base.
      const wanted = url.searchParams.get("state") ?? "open";
      const head = url.searchParams.get("head");
      const baseRef = url.searchParams.get("base");
      const found = state.pulls.filter(
        (p) =>
          (wanted === "all" || (p.state ?? "open") === wanted) &&
          (!head || `${o.repo.split("/")[0]}:${p.head}` === head) &&
          (!baseRef || p.base === baseRef),
      );
      return send(res, 200, found.map(pullJson));
    }
    if (req.method === "POST" && path === `${base}/pulls`) {
      const body = JSON.parse(text) as { head: string; base: string; title: string; body: string };
      if (state.pulls.some((p) => p.head === body.head && p.state !== "closed")) {
        return send(res, 422, {
          message: "Validation Failed",
          errors: [
            {
              resource: "PullRequest",
              code: "custom",
              message: `A pull request already exists for ${body.head}.`,
            },
          ],
        });
      }
      const number = 100 + state.pulls.length;
      const pull = { number, ...body };
      state.pulls.push(pull);
      return send(res, 201, pullJson(pull));
    }
    return send(res, 404, {
      message: "Not Found",
      documentation_url: "https://docs.github.com/rest",
      status: "404",
    });
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { message: String(error) }));
  });
  // Node's 5 s default would close an idle keep-alive socket the client is about to reuse (a reset
  // on a busy machine); GitHub keeps them far longer.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  state.url = `http://127.0.0.1:${port}${prefix}`;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
