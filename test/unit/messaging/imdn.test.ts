/**
 * IMDN (messaging/imdn.ts): the message/imdn+xml documents of RFC 5438 §7.2.1 read and written, namespaces
 * resolved by URN, refusals of malformed and hostile XML, and the CPIM envelope of §7.1.1.1.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IMDN_NS, header, imdnRequest, parseCpim } from '../../../messaging/cpim.js';
import {
  IMDN_MAX_SIZE, IMDN_STATUSES, ImdnError, buildImdn, imdnCpim, newImdnMessageId, parseImdn, type ImdnKind, type ImdnStatus,
} from '../../../messaging/imdn.js';

const crlf = (lines: string[]): string => lines.join('\r\n');

/** RFC 5438 §7.2.1.1: the delivery notification Bob's side sends for Alice's message 34jk324j. */
const RFC5438_DELIVERY = crlf([
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<imdn xmlns="urn:ietf:params:xml:ns:imdn">',
  '  <message-id>34jk324j</message-id>',
  '  <datetime>2008-04-04T12:16:49-05:00</datetime>',
  '  <recipient-uri>im:bob@example.com</recipient-uri>',
  '  <original-recipient-uri',
  '     >im:bob@example.com</original-recipient-uri>',
  '  <delivery-notification>',
  '    <status>',
  '      <delivered/>',
  '    </status>',
  '  </delivery-notification>',
  '</imdn>',
]);

/** RFC 5438 §7.2.1.2: the display notification, with no original-recipient-uri. */
const RFC5438_DISPLAY = crlf([
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<imdn xmlns="urn:ietf:params:xml:ns:imdn">',
  '  <message-id>34jk324j</message-id>',
  '  <datetime>2008-04-04T12:16:49-05:00</datetime>',
  '  <recipient-uri>im:bob@example.com</recipient-uri>',
  '  <display-notification>',
  '    <status>',
  '      <displayed/>',
  '    </status>',
  '  </display-notification>',
  '</imdn>',
]);

/** RFC 5438 §7.2.1.3: a processing notification (here: stored by an intermediary). */
const RFC5438_PROCESSING = crlf([
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<imdn xmlns="urn:ietf:params:xml:ns:imdn">',
  '  <message-id>34jk324j</message-id>',
  '  <datetime>2008-04-04T12:16:49-05:00</datetime>',
  '  <recipient-uri>im:bob@example.com</recipient-uri>',
  '  <processing-notification>',
  '    <status>',
  '      <stored/>',
  '    </status>',
  '  </processing-notification>',
  '</imdn>',
]);

function refuses(xml: string, message: RegExp): void {
  assert.throws(() => parseImdn(xml), (err: unknown) => {
    assert.ok(err instanceof ImdnError);
    assert.equal(err.code, 'MESSAGING_ERR_IMDN');
    assert.match(err.message, message);
    return true;
  });
}

describe('IMDN documents (RFC 5438 §7.2.1)', () => {
  it('reads the delivery notification of §7.2.1.1', () => {
    assert.deepEqual(parseImdn(RFC5438_DELIVERY), {
      messageId: '34jk324j', dateTime: '2008-04-04T12:16:49-05:00', recipientUri: 'im:bob@example.com',
      originalRecipientUri: 'im:bob@example.com', notification: 'delivery', status: 'delivered',
    });
  });

  it('reads the display (§7.2.1.2) and processing (§7.2.1.3) notifications; an absent original-recipient-uri is undefined', () => {
    const display = parseImdn(RFC5438_DISPLAY);
    assert.equal(display?.notification, 'display');
    assert.equal(display?.status, 'displayed');
    assert.equal(display?.originalRecipientUri, undefined);
    const processing = parseImdn(RFC5438_PROCESSING);
    assert.equal(processing?.notification, 'processing');
    assert.equal(processing?.status, 'stored');
  });

  it('elements are named by namespace, not prefix: a prefixed IMDN is read, an <imdn> of another namespace is not an IMDN', () => {
    const prefixed = RFC5438_DELIVERY.replace('<imdn xmlns=', '<i:imdn xmlns:i=').replace('</imdn>', '</i:imdn>')
      .replace(/<(\/?)(message-id|datetime|recipient-uri|original-recipient-uri|delivery-notification|status|delivered)/g, '<$1i:$2');
    assert.ok(prefixed.includes('<i:delivered/>'));
    assert.equal(parseImdn(prefixed)?.status, 'delivered');
    assert.equal(parseImdn(RFC5438_DELIVERY.replace('urn:ietf:params:xml:ns:imdn', 'urn:example:imdn')), undefined);
    assert.equal(parseImdn('<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@example.com"/>'), undefined);
    assert.equal(parseImdn(RFC5438_DELIVERY.replace(' xmlns="urn:ietf:params:xml:ns:imdn"', '')), undefined, 'no namespace is not the IMDN namespace');
    // A status element of another namespace is not an IMDN status.
    refuses(RFC5438_DELIVERY.replace('<delivered/>', '<x:delivered xmlns:x="urn:example:x"/>'), /needs one status/);
  });

  it('writes the §7.2.1.1 document: the same content, readable again', () => {
    const xml = buildImdn({
      messageId: '34jk324j', dateTime: '2008-04-04T12:16:49-05:00', recipientUri: 'im:bob@example.com', originalRecipientUri: 'im:bob@example.com',
      notification: 'delivery', status: 'delivered',
    });
    assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\r\n<imdn xmlns="urn:ietf:params:xml:ns:imdn">/);
    assert.match(xml, /<delivery-notification>\s*<status>\s*<delivered\/>\s*<\/status>\s*<\/delivery-notification>/);
    assert.deepEqual(parseImdn(xml), parseImdn(RFC5438_DELIVERY));
  });

  it('every status a kind allows is written and read back; a time in ms is written as ISO-8601', () => {
    for (const [notification, statuses] of Object.entries(IMDN_STATUSES) as Array<[ImdnKind, readonly ImdnStatus[]]>) {
      for (const status of statuses) {
        const xml = buildImdn({ messageId: 'm1', dateTime: Date.UTC(2026, 11, 7, 9, 0, 0), recipientUri: 'sip:bob@example.com', notification, status });
        assert.deepEqual(parseImdn(xml), {
          messageId: 'm1', dateTime: '2026-12-07T09:00:00.000Z', recipientUri: 'sip:bob@example.com', originalRecipientUri: undefined, notification, status,
        });
      }
    }
  });

  it('values are XML-escaped when written and unescaped when read (predefined entities and character references)', () => {
    const xml = buildImdn({ messageId: 'a<b>&"c\'', dateTime: 'now', recipientUri: 'sip:bob@example.com;x=<1>&y', notification: 'display', status: 'displayed' });
    assert.ok(xml.includes('<message-id>a&lt;b&gt;&amp;&quot;c&apos;</message-id>'));
    assert.equal(parseImdn(xml)?.messageId, 'a<b>&"c\'');
    assert.equal(parseImdn(xml)?.recipientUri, 'sip:bob@example.com;x=<1>&y');
    assert.equal(parseImdn(RFC5438_DISPLAY.replace('34jk324j', '&#51;4jk&#x33;24j'))?.messageId, '34jk324j');
    assert.throws(() => buildImdn({ messageId: 'a\x01', dateTime: 'now', recipientUri: 'sip:b@example.com', notification: 'display', status: 'displayed' }), ImdnError);
  });

  it('refuses to write a status its kind does not have (displayed is no delivery status, §7.2.1)', () => {
    assert.throws(() => buildImdn({ messageId: 'm', dateTime: 'now', recipientUri: 'sip:b@example.com', notification: 'delivery', status: 'displayed' }), ImdnError);
    assert.throws(() => buildImdn({ messageId: 'm', dateTime: 'now', recipientUri: 'sip:b@example.com', notification: 'display', status: 'stored' }), ImdnError);
  });

  it('refuses malformed IMDNs with ImdnError MESSAGING_ERR_IMDN', () => {
    refuses('not xml at all', /not well-formed|not one root/);
    refuses('<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>x</imdn>', /not well-formed/);
    refuses(RFC5438_DELIVERY.replace(/<message-id>.*<\/message-id>/, ''), /<message-id> is missing/);
    refuses(RFC5438_DELIVERY.replace(/<datetime>.*<\/datetime>/, '<datetime></datetime>'), /<datetime> is missing/);
    refuses(RFC5438_DELIVERY.replace('<delivered/>', '<delivered/><failed/>'), /needs one status/);
    refuses(RFC5438_DELIVERY.replace('<delivered/>', '<displayed/>'), /no status displayed/);
    refuses(RFC5438_DELIVERY.replace('</delivery-notification>', '</delivery-notification><display-notification><status><displayed/></status></display-notification>'), /more than one notification/);
    refuses(RFC5438_DELIVERY.replace(/<delivery-notification>[\s\S]*<\/delivery-notification>/, ''), /no notification element/);
    refuses(RFC5438_DELIVERY.replace('<message-id>34jk324j', '<message-id>34jk324j</message-id><message-id>x'), /more than once/);
    refuses(RFC5438_DELIVERY.replace('<delivered/>', '<q:delivered/>'), /undeclared namespace prefix q|not well-formed/);
    refuses(RFC5438_DELIVERY.replace('34jk324j', '34&nbsp;jk'), /not an XML reference/);
  });

  it('refuses a DTD (the billion-laughs entity expansion) and documents over the size limit before parsing', () => {
    const laughs = '<?xml version="1.0"?><!DOCTYPE imdn [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
      + '<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>&b;</message-id></imdn>';
    refuses(laughs, /document type declaration/);
    refuses(RFC5438_DELIVERY.replace('34jk324j', 'x'.repeat(IMDN_MAX_SIZE)), /larger than/);
  });
});

describe('the CPIM envelope of an IMDN (RFC 5438 §7.1.1.1)', () => {
  const imdn = { messageId: '34jk324j', dateTime: '2008-04-04T12:16:49-05:00', recipientUri: 'im:bob@example.com', notification: 'delivery', status: 'delivered' } as const;

  it('carries From/To, DateTime, the imdn namespace, a Message-ID of its own, and the document as a notification part', () => {
    const body = imdnCpim({ from: 'im:bob@example.com', to: 'Alice <im:alice@example.com>', dateTime: '2008-04-04T12:16:50-05:00', messageId: 'd834jied93rf', imdn });
    const msg = parseCpim(body);
    assert.deepEqual(msg.headers, [
      ['From', '<im:bob@example.com>'],
      ['To', 'Alice <im:alice@example.com>'],
      ['DateTime', '2008-04-04T12:16:50-05:00'],
      ['NS', 'imdn <urn:ietf:params:imdn>'],
      ['imdn.Message-ID', 'd834jied93rf'],
    ]);
    assert.equal(header(msg, 'Message-ID', IMDN_NS), 'd834jied93rf');
    assert.equal(msg.contentType, 'message/imdn+xml');
    assert.deepEqual(msg.contentHeaders, [['Content-Type', 'message/imdn+xml'], ['Content-Disposition', 'notification']]);
    assert.deepEqual(parseImdn(msg.body), { ...imdn, originalRecipientUri: undefined });
    assert.deepEqual(imdnRequest(msg)?.dispositions, [], 'an IMDN never asks for an IMDN');
    assert.ok(body.includes('\r\n\r\nContent-Type: message/imdn+xml\r\n'));
  });

  it('gets a fresh random Message-ID when none is given', () => {
    const a = header(parseCpim(imdnCpim({ from: 'sip:bob@example.com', to: 'sip:alice@example.com', dateTime: 0, imdn })), 'Message-ID', IMDN_NS);
    const b = header(parseCpim(imdnCpim({ from: 'sip:bob@example.com', to: 'sip:alice@example.com', dateTime: 0, imdn })), 'Message-ID', IMDN_NS);
    assert.match(String(a), /^[A-Za-z0-9_-]{16}$/);
    assert.notEqual(a, b);
    assert.match(newImdnMessageId(), /^[A-Za-z0-9_-]{16}$/);
  });
});
