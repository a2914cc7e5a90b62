/**
 * How a /v1 route refuses what it cannot answer as asked: throw a Refusal (status and reason) and let the route's
 * catch answer `{ ok: false, error }` with that status. `parseInput` reads a query, path or body with its zod
 * schema and refuses with 400 naming the field and what is wrong with it.
 */
import type { z } from 'zod';

export class Refusal extends Error {
  constructor(readonly status: 400 | 403 | 404 | 409 | 503, message: string) {
    super(message);
  }
}

/** `value` as `schema` reads it; a 400 Refusal `field: reason` (or `where: reason` for the whole) otherwise. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const reason = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
  throw new Refusal(400, `${issue.path.join('.') || where}: ${reason}`);
}
