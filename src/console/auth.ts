import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { NightshiftError } from "../errors/index.ts";

export const TOKEN_COOKIE = "nightshift_console";
export const CSRF_HEADER = "x-nightshift-csrf";

/** 127.0.0.0/8, ::1 and localhost: the only addresses the console binds to without a token. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  return bare === "localhost" || bare === "::1" || /^127(\.\d{1,3}){3}$/.test(bare);
}

/**
 * Refuses a bind the supervisor did not make safe: anywhere but loopback, anyone who can reach
 * the port could stop the line, so a token is required there.
 */
export function checkBind(host: string, token: string | undefined): void {
  if (!isLoopback(host) && !token) {
    throw new NightshiftError(
      "console_token_required",
      `the console binds to ${host}, which is not a loopback address, and no access token is set`,
      {
        hint: "set NIGHTSHIFT_CONSOLE_TOKEN (or --console-token) to a long random secret, or bind to 127.0.0.1",
      },
    );
  }
  if (token !== undefined && token.length < 16) {
    throw new NightshiftError(
      "console_token_too_short",
      "the console's access token is shorter than 16 characters",
      { hint: "use a long random secret, e.g. `openssl rand -hex 24`" },
    );
  }
}

/**
 * The console's guard, in two parts.
 *
 * Access: with a token, every API request must carry it, as `Authorization: Bearer <token>` (API
 * clients) or as the cookie a browser gets by opening `/?token=<token>` once. Without a token
 * (loopback only) the Host header must name a loopback address too, so that a web page on
 * another site cannot reach the console through DNS rebinding.
 *
 * Cross-site requests: a state-changing request must carry the per-process CSRF secret in a
 * header (`x-nightshift-csrf`, read from GET /api/session, which a page of another origin cannot
 * read) or the bearer token, and an Origin, when sent, must be the console's own. A form or image
 * on another site can send neither header.
 */
export function consoleGuard(options: { token?: string | undefined }): {
  csrf: string;
  middleware: MiddlewareHandler;
  /** For GET /?token=...: sets the cookie when the token is right. */
  acceptTokenLink(c: Context): boolean;
} {
  const csrf = randomBytes(24).toString("hex");
  const token = options.token;
  const matches = (given: string | undefined) =>
    token !== undefined && given !== undefined && safeEqual(given, token);
  const bearer = (c: Context) => {
    const header = c.req.header("authorization");
    return header?.startsWith("Bearer ") ? header.slice(7).trim() : undefined;
  };
  const middleware: MiddlewareHandler = async (c, next) => {
    if (token === undefined) {
      const host = hostOf(c.req.header("host") ?? "");
      if (!isLoopback(host)) {
        return refuse(
          c,
          403,
          "host_refused",
          `the console answers only to loopback host names, not ${host}`,
        );
      }
    } else if (!matches(bearer(c)) && !matches(getCookie(c, TOKEN_COOKIE))) {
      return refuse(
        c,
        401,
        "unauthorized",
        "this console needs its access token",
        "send `Authorization: Bearer <token>`, or open /?token=<token> once in the browser",
      );
    }
    if (!["GET", "HEAD", "OPTIONS"].includes(c.req.method)) {
      const origin = c.req.header("origin");
      if (origin !== undefined && hostOfUrl(origin) !== c.req.header("host")) {
        return refuse(
          c,
          403,
          "cross_site_refused",
          `a request from ${origin} may not change the line`,
        );
      }
      if (c.req.header("sec-fetch-site") === "cross-site") {
        return refuse(c, 403, "cross_site_refused", "a cross-site request may not change the line");
      }
      const given = c.req.header(CSRF_HEADER);
      if (!(given !== undefined && safeEqual(given, csrf)) && !matches(bearer(c))) {
        return refuse(
          c,
          403,
          "csrf_refused",
          "a state-changing request needs the console's CSRF header or its bearer token",
          `read csrf from GET /api/session and send it as ${CSRF_HEADER}`,
        );
      }
    }
    await next();
  };
  return {
    csrf,
    middleware,
    acceptTokenLink(c) {
      const given = c.req.query("token");
      if (given === undefined || !matches(given)) return false;
      setCookie(c, TOKEN_COOKIE, given, {
        httpOnly: true,
        sameSite: "Strict",
        path: "/",
      });
      return true;
    },
  };
}

function refuse(c: Context, status: 401 | 403, code: string, message: string, hint?: string) {
  return c.json({ error: { code, message, ...(hint ? { hint } : {}) } }, status);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function hostOf(hostHeader: string): string {
  if (hostHeader.startsWith("[")) return hostHeader.slice(0, hostHeader.indexOf("]") + 1);
  return hostHeader.replace(/:\d+$/, "");
}

function hostOfUrl(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}
