/**
 * The presence document (PIDF, RFC 3863) with the data model's person (RFC 4479) and RPID activities
 * (RFC 4480): read from what a user's app PUBLISHes (RFC 3903), written for what watchers are NOTIFYed
 * (RFC 3856 §6.7). Read through platform/xml: no DTD, a size cap, elements named by namespace, not prefix.
 *
 * Reading keeps only what the service merges (PublishedState): open/closed, the activities, one note. Apps
 * publish very different documents for the same thing (one tuple and a note from SIP.js/JsSIP apps, a tuple
 * plus a person with activities from baresip and linphone, a person only from some), so the rules are
 * lenient about where things are and strict about what they are.
 */
import { createHash } from 'node:crypto';
import { SafeXmlError, escapeXml, firstChild, parseSafeXml, stripNonXml, type XmlElement } from '../platform/xml/index.js';
import type { PresenceView, PublishedState } from './types.js';

/** RFC 3863 §4.4 (the PIDF namespace), RFC 4479 §4 (data model), RFC 4480 §2 (RPID). */
export const PIDF_NS = 'urn:ietf:params:xml:ns:pidf';
export const PIDF_DM_NS = 'urn:ietf:params:xml:ns:pidf:data-model';
export const PIDF_RPID_NS = 'urn:ietf:params:xml:ns:pidf:rpid';
export const PIDF_CONTENT_TYPE = 'application/pidf+xml';
/** Largest PIDF read (bytes, UTF-8): a real one is under 2 KiB; RFC 3903 leaves the limit to the server. */
export const PIDF_MAX_SIZE = 65_536;
/** Longest note kept (characters): a status line, not a letter. */
export const PIDF_NOTE_MAX = 256;
/** Most activities kept from one document, and the longest `other` text: RFC 4480 §3.2 lists 25 activities. */
export const PIDF_ACTIVITIES_MAX = 32;
export const PIDF_OTHER_MAX = 64;

/** The activities RFC 4480 §3.2 enumerates; others are written as `<rpid:other>` so a strict watcher still validates. */
const RPID_ACTIVITIES: ReadonlySet<string> = new Set([
  'appointment', 'away', 'breakfast', 'busy', 'dinner', 'holiday', 'in-transit', 'looking-for-work', 'meal', 'meeting',
  'on-the-phone', 'performance', 'permanent-absence', 'playing', 'presentation', 'shopping', 'sleeping', 'spectator',
  'steering', 'travel', 'tv', 'unknown', 'vacation', 'working', 'worship',
]);

export type PidfErrorCode = 'PRESENCE_ERR_PIDF';

/** A PUBLISH body that is not a PIDF we read: malformed, a DTD, too large, or another root element. */
export class PidfError extends Error {
  readonly code: PidfErrorCode = 'PRESENCE_ERR_PIDF';

  constructor(message: string) {
    super(message);
    this.name = 'PidfError';
  }
}

// ---- reading ----

const is = (element: XmlElement, ns: string, local: string): boolean => element.ns === ns && element.local === local;

/** Trimmed, inner whitespace runs kept as they are, cut at PIDF_NOTE_MAX code points (never inside a pair). */
function noteText(element: XmlElement | undefined): string | undefined {
  const text = element?.text.trim() ?? '';
  if (text === '') return undefined;
  const chars = Array.from(text);
  return chars.length > PIDF_NOTE_MAX ? chars.slice(0, PIDF_NOTE_MAX).join('').trimEnd() : text;
}

/** The first non-empty note among `elements`' children named `{ns}note` for one of `namespaces`. */
function firstNote(elements: readonly XmlElement[], namespaces: readonly string[]): string | undefined {
  for (const element of elements) {
    for (const child of element.children) {
      if (child.local !== 'note' || child.ns === undefined || !namespaces.includes(child.ns)) continue;
      const note = noteText(child);
      if (note !== undefined) return note;
    }
  }
  return undefined;
}

/** RPID `<activities>` values in one activities element: local names, `other:<text>` (RFC 4480 §3.2). */
function activityValues(activities: XmlElement, into: string[]): void {
  for (const value of activities.children) {
    // Extension elements of other namespaces, and the RPID note inside activities, are not activities.
    if (value.ns !== PIDF_RPID_NS || value.local === 'note') continue;
    let name = value.local;
    if (name === 'other') {
      const text = Array.from(value.text.trim().replace(/\s+/g, ' ')).slice(0, PIDF_OTHER_MAX).join('');
      if (text !== '') name = `other:${text}`;
    }
    if (!into.includes(name) && into.length < PIDF_ACTIVITIES_MAX) into.push(name);
  }
}

/**
 * Reads a PUBLISHed PIDF (RFC 3863 §4) into what the presence service merges:
 * - `basic`: open when a tuple says open (RFC 3863 §4.1.4); closed when tuples carry a basic and none is
 *   open; open when no tuple carries one (a person-only document, RFC 4479 §3.2, is an app saying "away",
 *   not "offline");
 * - `activities`: the RPID activities of the person (RFC 4480 §3.2), or of a tuple or its status (where
 *   pre-data-model clients put them), in document order, without repeats;
 * - `note`: the person's first note (RFC 4479 §4.2), else a tuple's, else the presence element's (RFC 3863
 *   §4.1.6), trimmed and at most PIDF_NOTE_MAX characters.
 * PidfError: not well-formed, a DTD, over PIDF_MAX_SIZE bytes, or a root other than `{PIDF_NS}presence`.
 */
export function parsePidf(xml: string): PublishedState {
  if (xml.length > PIDF_MAX_SIZE || Buffer.byteLength(xml, 'utf8') > PIDF_MAX_SIZE) throw new PidfError(`larger than ${PIDF_MAX_SIZE} bytes`);
  let root: XmlElement;
  try {
    root = parseSafeXml(xml, { maxSize: PIDF_MAX_SIZE });
  } catch (err) {
    if (err instanceof SafeXmlError) throw new PidfError(err.message);
    throw err;
  }
  if (!is(root, PIDF_NS, 'presence')) {
    throw new PidfError(`the root is not {${PIDF_NS}}presence but {${(root.ns ?? '').slice(0, 64)}}${root.local.slice(0, 32)}`);
  }

  const tuples = root.children.filter((c) => is(c, PIDF_NS, 'tuple'));
  const persons = root.children.filter((c) => is(c, PIDF_DM_NS, 'person'));
  const basics = tuples
    .map((t) => firstChild(t, PIDF_NS, 'status'))
    .map((s) => (s === undefined ? undefined : firstChild(s, PIDF_NS, 'basic')?.text.trim()))
    .filter((b): b is string => b === 'open' || b === 'closed');
  const basic = basics.length === 0 || basics.includes('open') ? 'open' : 'closed';

  const activities: string[] = [];
  for (const element of root.children) {
    let holders: XmlElement[] = [];
    if (is(element, PIDF_DM_NS, 'person')) holders = [element];
    else if (is(element, PIDF_NS, 'tuple')) holders = [element, ...element.children.filter((c) => is(c, PIDF_NS, 'status'))];
    for (const holder of holders) {
      for (const child of holder.children) if (is(child, PIDF_RPID_NS, 'activities')) activityValues(child, activities);
    }
  }

  // The person's note is dm:note (RFC 4479 §4.2); some apps write it in the PIDF namespace: both are read.
  const note = firstNote(persons, [PIDF_DM_NS, PIDF_NS]) ?? firstNote(tuples, [PIDF_NS]) ?? firstNote([root], [PIDF_NS]);
  return { basic, activities, note };
}

// ---- writing ----

/** A short id derived from the entity: the same presentity always gets the same tuple and person ids. */
function stableId(entity: string): string {
  return createHash('sha256').update(entity).digest('hex').slice(0, 12);
}

/** Escaped text; characters XML cannot carry are dropped (a user's note must not make the NOTIFY fail). */
const text = (value: string): string => escapeXml('value', stripNonXml(value));

/** The note a watcher's app shows when the user published none. */
function defaultNote(view: PresenceView): string {
  if (view.onThePhone) return 'On the phone';
  if (view.basic === 'closed' || view.reachability === 'offline') return 'Offline';
  if (view.reachability === 'push') return 'Reachable';
  return 'Online';
}

/** One activity element (RFC 4480 §3.2): an unlisted name goes in `<rpid:other>` so the document stays valid. */
function activityElement(activity: string): string {
  if (activity.startsWith('other:')) return `<rpid:other>${text(activity.slice(6))}</rpid:other>`;
  if (activity === 'other') return '<rpid:other/>';
  if (RPID_ACTIVITIES.has(activity)) return `<rpid:${activity}/>`;
  return `<rpid:other>${text(activity)}</rpid:other>`;
}

function document(entity: string, basic: 'open' | 'closed', person: string, note: string | undefined): string {
  const id = stableId(entity);
  const e = text(entity);
  return '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    + `<presence xmlns="${PIDF_NS}" xmlns:dm="${PIDF_DM_NS}" xmlns:rpid="${PIDF_RPID_NS}" entity="${e}">\r\n`
    + `  <tuple id="t-${id}">\r\n`
    + `    <status><basic>${basic}</basic></status>\r\n`
    + `    <contact>${e}</contact>\r\n`
    + (note === undefined ? '' : `    <note>${note}</note>\r\n`)
    + '  </tuple>\r\n'
    + person
    + '</presence>\r\n';
}

/**
 * The PIDF a watcher is NOTIFYed (RFC 3856 §6.7, RFC 3863 §4, RFC 4479 §3): one tuple (status, contact,
 * note) and one person with the RPID activities (`on-the-phone` during a call) and the same note. Equal
 * views give byte-equal documents (ids derived from the entity, activities sorted and without repeats), so
 * the server can skip a NOTIFY that would say nothing new.
 */
export function buildPidf(view: PresenceView): string {
  const activities = [...new Set([...view.activities, ...(view.onThePhone ? ['on-the-phone'] : [])])].sort();
  const note = text(view.note !== undefined && view.note.trim() !== '' ? view.note.trim() : defaultNote(view));
  const person = `  <dm:person id="p-${stableId(view.entity)}">\r\n`
    + (activities.length === 0 ? '' : `    <rpid:activities>${activities.map(activityElement).join('')}</rpid:activities>\r\n`)
    + `    <dm:note>${note}</dm:note>\r\n`
    + '  </dm:person>\r\n';
  return document(view.entity, view.basic, person, note);
}

/**
 * What a blocked watcher is told (RFC 5025 §3.2.1, polite-block): exactly what an offline presentity
 * looks like.
 */
export function blockedPidf(entity: string): string {
  // Byte for byte what an offline user's watchers get: a blocked watcher cannot tell it was blocked
  // (RFC 5025 §3.2.1's polite blocking).
  return buildPidf({ entity, basic: 'closed', activities: [], reachability: 'offline', onThePhone: false });
}
