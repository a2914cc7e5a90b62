/**
 * The dialog event package's document (`application/dialog-info+xml`, RFC 4235 §4): what a busy lamp
 * (Polycom, Yealink, Snom, baresip's BLF) is NOTIFYed about the watched user's calls. Lamps light on the
 * `<state>` of each `<dialog>` (early: ringing, confirmed: busy, terminated or none: idle), so the shape
 * follows the RFC's own examples (§4.2) and nothing else is needed for them to read it.
 */
import { escapeXml, stripNonXml } from '../platform/xml/index.js';
import type { DialogInfoEntry } from './types.js';

/** RFC 4235 §4.1. */
export const DIALOG_INFO_NS = 'urn:ietf:params:xml:ns:dialog-info';
export const DIALOG_INFO_CONTENT_TYPE = 'application/dialog-info+xml';

export type DialogInfoErrorCode = 'PRESENCE_ERR_DIALOG_INFO';

/** A document that cannot be written: a version that is not a non-negative integer (RFC 4235 §4.1.1). */
export class DialogInfoError extends Error {
  readonly code: DialogInfoErrorCode = 'PRESENCE_ERR_DIALOG_INFO';

  constructor(message: string) {
    super(message);
    this.name = 'DialogInfoError';
  }
}

/** Escaped for an attribute or element; characters XML cannot carry are dropped (they come from SIP headers). */
const text = (value: string): string => escapeXml('value', stripNonXml(value));

function identity(uri: string | undefined, display: string | undefined): string {
  if (uri === undefined || uri === '') return '';
  const name = display === undefined || display === '' ? '' : ` display="${text(display)}"`;
  return `<identity${name}>${text(uri)}</identity>`;
}

function dialogElement(d: DialogInfoEntry): string {
  const attrs = [
    `id="${text(d.id)}"`,
    `call-id="${text(d.callId)}"`,
    ...(d.localTag === undefined || d.localTag === '' ? [] : [`local-tag="${text(d.localTag)}"`]),
    ...(d.remoteTag === undefined || d.remoteTag === '' ? [] : [`remote-tag="${text(d.remoteTag)}"`]),
    `direction="${d.direction}"`,
  ];
  // The event says why a dialog ended (§4.1.6.2): it belongs to the terminated state only.
  const event = d.state === 'terminated' && d.event !== undefined ? ` event="${d.event}"` : '';
  const local = identity(d.localIdentity, undefined);
  const remote = identity(d.remoteIdentity, d.remoteDisplay);
  // Children in the schema's order (§4.1.6): state, …, local, remote.
  return `  <dialog ${attrs.join(' ')}>\r\n`
    + `    <state${event}>${d.state}</state>\r\n`
    + (local === '' ? '' : `    <local>${local}</local>\r\n`)
    + (remote === '' ? '' : `    <remote>${remote}</remote>\r\n`)
    + '  </dialog>\r\n';
}

/**
 * A dialog-info document (RFC 4235 §4.1): `version` counts the documents sent in this subscription from 0
 * (§4.1.1, the watcher drops one older than it has seen), `state` says whether `dialogs` is every dialog of
 * the entity (`full`) or only the changed ones (`partial`, §4.1.2). No dialogs in a full document: idle.
 */
export function buildDialogInfo(entity: string, version: number, state: 'full' | 'partial', dialogs: readonly DialogInfoEntry[]): string {
  if (!Number.isSafeInteger(version) || version < 0) throw new DialogInfoError(`version must be a non-negative integer, not ${String(version).slice(0, 32)}`);
  return '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    + `<dialog-info xmlns="${DIALOG_INFO_NS}" version="${version}" state="${state}" entity="${text(entity)}">\r\n`
    + dialogs.map(dialogElement).join('')
    + '</dialog-info>\r\n';
}
