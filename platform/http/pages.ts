/**
 * Cursor pagination for the /v1 lists that can grow large (users, registrations): `?limit=&cursor=` in, `{ …, next }`
 * out, as `GET /v1/calls` does. A cursor is the sort key of the last item answered, opaque to clients (base64url
 * JSON): the next page starts after that key, so a page stays right while items come and go before it (keyset
 * pagination), and a cursor carries no server state to expire.
 */
import { z } from 'zod';
import { Refusal } from './refusal.js';

/** `?limit=` (default `fallback`, at most `max`) and `?cursor=`, to merge into a route's query schema. */
export function pageQuery(fallback: number, max: number) {
  return {
    limit: z.string().regex(/^\d{1,5}$/, 'expected a whole number').transform(Number).pipe(z.number().min(1).max(max)).default(fallback)
      .describe(`items per page (default ${fallback}, at most ${max})`),
    cursor: z.string().min(1).max(2048).optional().describe('`next` of the previous page'),
  };
}

/** The cursor of the page after an item whose sort key is `key`. */
export function encodeCursor(key: readonly string[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** The sort key in `cursor` (`length` strings), or a 400 Refusal naming the parameter. */
export function decodeCursor(cursor: string, length: number): string[] {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  if (!Array.isArray(key) || key.length !== length || !key.every((k) => typeof k === 'string')) {
    throw new Refusal(400, 'cursor: not a cursor this list made (pass back `next` as it was answered)');
  }
  return key as string[];
}

/** One page of `items` (already sorted by `keyOf`, and `limit + 1` of them when there are more): the page and its `next`. */
export function pageOf<T>(items: readonly T[], limit: number, keyOf: (item: T) => readonly string[]): { items: T[]; next: string | undefined } {
  const page = items.slice(0, limit);
  return { items: page, next: items.length > limit && page.length > 0 ? encodeCursor(keyOf(page[page.length - 1]!)) : undefined };
}
