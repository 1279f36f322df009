import type { BudgetLimitView, BudgetView, Charts, LineView, RunDetail } from "../../schema.ts";

export type { BudgetLimitView, BudgetView, Charts, LineView, RunDetail };

let csrf: Promise<string> | undefined;

/** The name controls are recorded under (console:<name>), kept in this browser. */
export function actorName(): string {
  return localStorage.getItem("nightshift-actor") ?? "";
}

export function setActorName(name: string): void {
  localStorage.setItem("nightshift-actor", name);
}

export async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(await errorText(response));
  return (await response.json()) as T;
}

/** A control: POST with the CSRF header; resolves to the answer or throws the API's message. */
export async function post<T = unknown>(path: string, body: unknown = {}): Promise<T> {
  csrf ??= getJson<{ csrf: string }>("/api/session").then((s) => s.csrf);
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "content-type": "application/json",
      "x-nightshift-csrf": await csrf,
      "x-nightshift-actor": actorName(),
    },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(await errorText(response));
  return (await response.json()) as T;
}

async function errorText(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error?: { message?: string; hint?: string } };
    const hint = body.error?.hint ? ` (${body.error.hint})` : "";
    return `${body.error?.message ?? response.statusText}${hint}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

/** Subscribes to one event of a server-sent stream; returns the unsubscribe. */
export function subscribe<T>(
  path: string,
  event: string,
  onData: (data: T) => void,
  onState?: (live: boolean) => void,
): () => void {
  const source = new EventSource(path);
  source.addEventListener(event, (e) => onData(JSON.parse((e as MessageEvent<string>).data) as T));
  source.onopen = () => onState?.(true);
  source.onerror = () => onState?.(false);
  return () => source.close();
}
