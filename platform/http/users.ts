/** `alice@Example.COM` → `alice@example.com`: the user part is case-sensitive, the host is not (RFC 3261 §19.1.4). */
export function normalizeUser(user: string): string {
  const at = user.lastIndexOf('@');
  return `${user.slice(0, at)}@${user.slice(at + 1).toLowerCase()}`;
}
