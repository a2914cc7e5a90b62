/** What both pages share: element lookup, the JSON API with a bearer token, small rendering helpers. */

/** The element with this id (the pages are static: a missing one is a bug in the HTML). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`#${id} is missing from the page`);
  return el as T;
}

/** An API error: the status, the API's code (API_ERR_NOT_FOUND, …) and what the server said. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly code: string | undefined = undefined) {
    super(message);
  }
}

/** A JSON request to the softswitch's HTTP API on this origin, with `Authorization: Bearer <token>` (RFC 6750 §2.1). */
export async function api<T>(path: string, token: string | undefined, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    // not JSON: the status says enough
  }
  if (!res.ok) {
    // Every refusal is `{ code, message }` (the token endpoint's too).
    const said = json.message ?? res.statusText;
    throw new ApiError(res.status, `${res.status} ${typeof said === 'string' ? said : JSON.stringify(said)}`, typeof json.code === 'string' ? json.code : undefined);
  }
  return json as T;
}

/** Replaces a list's items: one <li> per row, text only (nothing the server or a peer sends is parsed as HTML). */
export function fillList<R>(list: HTMLElement, rows: readonly R[], text: (row: R) => string, decorate?: (li: HTMLLIElement, row: R) => void): void {
  list.replaceChildren(...rows.map((row) => {
    const li = document.createElement('li');
    li.textContent = text(row);
    decorate?.(li, row);
    return li;
  }));
}

/** A table body from rows of cells (text only). */
export function fillTable(body: HTMLTableSectionElement, rows: readonly string[][]): void {
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement('tr');
    for (const cell of cells) {
      const td = document.createElement('td');
      td.textContent = cell;
      tr.append(td);
    }
    return tr;
  }));
}

/** A local time of day for an ISO-8601 instant ('' when absent). */
export function timeOf(iso: string | undefined): string {
  return iso === undefined ? '' : new Date(iso).toLocaleTimeString();
}

/** The message of anything thrown. */
export function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
