/**
 * dialog-info (presence/dialog-info.ts): the RFC 4235 §4.1 document a busy lamp reads, compared with the
 * RFC's §4.2 sample bodies by namespace-resolved content, plus escaping and the version rule.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DIALOG_INFO_NS, DialogInfoError, buildDialogInfo } from '../../../presence/dialog-info.js';
import { parseSafeXml, type XmlElement } from '../../../platform/xml/index.js';

const crlf = (lines: string[]): string => lines.join('\r\n');

/** RFC 4235 §4.2, the first sample: Alice's outgoing dialog, trying. */
const RFC4235_TRYING = crlf([
  '<?xml version="1.0"?>',
  '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"',
  '             version="0" state="full"',
  '             entity="sip:alice@example.com">',
  '  <dialog id="as7d900as8" call-id="a84b4c76e66710"',
  '          local-tag="1928301774" direction="initiator">',
  '    <state>trying</state>',
  '  </dialog>',
  '</dialog-info>',
]);

/** RFC 4235 §4.2, the second sample: the same dialog confirmed, with both identities (targets and duration left out: we do not write them). */
const RFC4235_CONFIRMED = crlf([
  '<?xml version="1.0"?>',
  '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"',
  '             version="1" state="full"',
  '             entity="sip:alice@example.com">',
  '  <dialog id="as7d900as8" call-id="a84b4c76e66710"',
  '          local-tag="1928301774" remote-tag="456887766"',
  '          direction="initiator">',
  '    <state>confirmed</state>',
  '    <local>',
  '      <identity>sip:alice@example.com</identity>',
  '    </local>',
  '    <remote>',
  '      <identity display="Bob">sip:bob@example.org</identity>',
  '    </remote>',
  '  </dialog>',
  '</dialog-info>',
]);

/** A document as plain data: names with their namespace, attributes, text, children (whitespace-only text dropped). */
interface Tree { name: string; attributes: Record<string, string>; text: string; children: Tree[] }
function tree(e: XmlElement): Tree {
  return { name: `{${e.ns ?? ''}}${e.local}`, attributes: Object.fromEntries(e.attributes), text: e.text, children: e.children.map(tree) };
}
const read = (xml: string): Tree => tree(parseSafeXml(xml, { maxSize: 65_536 }));

describe('dialog-info documents (RFC 4235 §4.1)', () => {
  it('writes the §4.2 "trying" sample: the same elements, attributes and state', () => {
    const xml = buildDialogInfo('sip:alice@example.com', 0, 'full', [
      { id: 'as7d900as8', callId: 'a84b4c76e66710', localTag: '1928301774', direction: 'initiator', state: 'trying' },
    ]);
    assert.deepEqual(read(xml), read(RFC4235_TRYING));
  });

  it('writes the §4.2 "confirmed" sample with local and remote identities and the display name', () => {
    const xml = buildDialogInfo('sip:alice@example.com', 1, 'full', [{
      id: 'as7d900as8', callId: 'a84b4c76e66710', localTag: '1928301774', remoteTag: '456887766', direction: 'initiator', state: 'confirmed',
      localIdentity: 'sip:alice@example.com', remoteIdentity: 'sip:bob@example.org', remoteDisplay: 'Bob',
    }]);
    assert.deepEqual(read(xml), read(RFC4235_CONFIRMED));
    assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\r\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:alice@example.com">\r\n/);
  });

  it('an early incoming call (ringing lamp), and a terminated one with the event why (§4.1.6.2), in a partial document', () => {
    const doc = read(buildDialogInfo('sip:bob@example.com', 7, 'partial', [
      { id: 'd1', callId: 'c1', localTag: 'l1', direction: 'recipient', state: 'early', event: 'rejected' },
      { id: 'd2', callId: 'c2', localTag: 'l2', remoteTag: 'r2', direction: 'recipient', state: 'terminated', event: 'remote-bye' },
    ]));
    assert.equal(doc.attributes.state, 'partial');
    assert.equal(doc.attributes.version, '7');
    const states = doc.children.map((d) => d.children.find((c) => c.name === `{${DIALOG_INFO_NS}}state`)!);
    assert.deepEqual(states.map((s) => [s.text, s.attributes.event]), [['early', undefined], ['terminated', 'remote-bye']], 'an event only on terminated');
    assert.deepEqual(doc.children.map((d) => d.attributes.direction), ['recipient', 'recipient']);
  });

  it('no dialogs in a full document: the idle lamp', () => {
    const doc = read(buildDialogInfo('sip:bob@example.com', 3, 'full', []));
    assert.equal(doc.name, `{${DIALOG_INFO_NS}}dialog-info`);
    assert.deepEqual(doc.children, []);
  });

  it('escapes attributes and identities taken from SIP headers', () => {
    const xml = buildDialogInfo('sip:a@example.com', 0, 'full', [{
      id: 'x"y', callId: 'c<1>&2', direction: 'initiator', state: 'confirmed', remoteIdentity: 'sip:b@example.com;p="<x>"', remoteDisplay: 'B & "C" \x07',
    }]);
    const dialog = read(xml).children[0]!;
    assert.equal(dialog.attributes.id, 'x"y');
    assert.equal(dialog.attributes['call-id'], 'c<1>&2');
    const identity = dialog.children.find((c) => c.name.endsWith('}remote'))!.children[0]!;
    assert.equal(identity.text, 'sip:b@example.com;p="<x>"');
    assert.equal(identity.attributes.display, 'B & "C"');
    assert.doesNotMatch(xml, /\x07/, 'a control character is dropped');
    assert.equal(dialog.attributes['local-tag'], undefined, 'an absent tag is no attribute');
  });

  it('refuses a version that is not a non-negative integer (§4.1.1)', () => {
    for (const version of [-1, 1.5, Number.NaN]) {
      assert.throws(() => buildDialogInfo('sip:a@example.com', version, 'full', []), (err: unknown) => err instanceof DialogInfoError && err.code === 'PRESENCE_ERR_DIALOG_INFO');
    }
  });
});
