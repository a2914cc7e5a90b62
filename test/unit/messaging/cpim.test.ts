/**
 * message/cpim (messaging/cpim.ts): RFC 3862's own example, namespaces resolved by URN (§5), the IMDN
 * request headers of RFC 5438 §6, CRLF out and bare LF in, and refusals of malformed or hostile bodies.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CPIM_MAX_HEADERS, CPIM_MAX_LINE, CpimError, IMDN_NS, buildCpim, header, headerValues, imdnRequest, parseCpim, type CpimMessage,
} from '../../../messaging/cpim.js';

const crlf = (lines: string[]): string => lines.join('\r\n');

/** RFC 3862 §6, the example message without its outer MIME header (the SIP Content-Type carries that). */
const RFC3862_EXAMPLE = crlf([
  'From: MR SANDERS <im:piglet@100akerwood.com>',
  'To: Depressed Donkey <im:eeyore@100akerwood.com>',
  'DateTime: 2000-12-13T13:40:00-08:00',
  'Subject: the weather will be fine today',
  "Subject:;lang=fr beau temps prevu pour aujourd'hui",
  'NS: MyFeatures <mid:MessageFeatures@id.foo.com>',
  'Require: MyFeatures.VitalMessageOption',
  'MyFeatures.VitalMessageOption: Confirmation-requested',
  'MyFeatures.WackyMessageOption: Use-silly-font',
  '',
  'Content-type: text/xml; charset=utf-8',
  'Content-ID: <1234567890@foo.com>',
  '',
  '<body>',
  'Here is the text of my message.',
  '</body>',
]);

/** RFC 5438 §7.1.1.1: an IM asking for delivery and display notifications. */
const RFC5438_REQUEST = crlf([
  'From: Alice <im:alice@example.com>',
  'To: Bob <im:bob@example.com>',
  'NS: imdn <urn:ietf:params:imdn>',
  'imdn.Message-ID: 34jk324j',
  'DateTime: 2006-04-04T12:16:49-05:00',
  'imdn.Disposition-Notification: positive-delivery, display',
  '',
  'Content-type: text/plain',
  'Content-length: 12',
  '',
  'Hello World',
]);

function refuses(body: string, message: RegExp): void {
  assert.throws(() => parseCpim(body), (err: unknown) => {
    assert.ok(err instanceof CpimError);
    assert.equal(err.code, 'MESSAGING_ERR_CPIM');
    assert.match(err.message, message);
    return true;
  });
}

describe('CPIM (RFC 3862)', () => {
  it('reads the example of RFC 3862 §6: message headers in order, the inner part\'s MIME headers, its content', () => {
    const msg = parseCpim(RFC3862_EXAMPLE);
    assert.deepEqual(msg.headers.map(([name]) => name), [
      'From', 'To', 'DateTime', 'Subject', 'Subject', 'NS', 'Require', 'MyFeatures.VitalMessageOption', 'MyFeatures.WackyMessageOption',
    ]);
    assert.deepEqual(msg.headers[0], ['From', 'MR SANDERS <im:piglet@100akerwood.com>']);
    assert.deepEqual(msg.headers[4], ['Subject', ";lang=fr beau temps prevu pour aujourd'hui"]);
    assert.equal(msg.contentType, 'text/xml; charset=utf-8');
    assert.deepEqual(msg.contentHeaders, [['Content-type', 'text/xml; charset=utf-8'], ['Content-ID', '<1234567890@foo.com>']]);
    assert.equal(msg.body, '<body>\r\nHere is the text of my message.\r\n</body>');
  });

  it('header() finds core headers by name, and a header parameter (;lang=fr) is not part of the value (§3.2)', () => {
    const msg = parseCpim(RFC3862_EXAMPLE);
    assert.equal(header(msg, 'DateTime'), '2000-12-13T13:40:00-08:00');
    assert.equal(header(msg, 'datetime'), '2000-12-13T13:40:00-08:00', 'names from the wild come in any case');
    assert.deepEqual(headerValues(msg, 'Subject'), ['the weather will be fine today', "beau temps prevu pour aujourd'hui"]);
    assert.equal(header(msg, 'VitalMessageOption'), undefined, 'a prefixed header is not a core header');
  });

  it('§5: a prefixed header is found by the URN its NS header binds the prefix to, whatever the prefix', () => {
    const msg = parseCpim(RFC3862_EXAMPLE);
    assert.equal(header(msg, 'VitalMessageOption', 'mid:MessageFeatures@id.foo.com'), 'Confirmation-requested');
    assert.equal(header(msg, 'WackyMessageOption', 'mid:MessageFeatures@id.foo.com'), 'Use-silly-font');
    assert.equal(header(msg, 'VitalMessageOption', 'urn:ietf:params:imdn'), undefined);

    const renamed = parseCpim(crlf(['NS: receipts <urn:ietf:params:imdn>', 'receipts.Message-ID: abc123', '', '', 'hi']));
    assert.equal(header(renamed, 'Message-ID', IMDN_NS), 'abc123');
    const undeclared = parseCpim(crlf(['imdn.Message-ID: abc123', '', '', 'hi']));
    assert.equal(header(undeclared, 'Message-ID', IMDN_NS), undefined, 'the text "imdn." alone names no namespace');
    const otherUrn = parseCpim(crlf(['NS: imdn <urn:example:not-imdn>', 'imdn.Message-ID: abc123', '', '', 'hi']));
    assert.equal(header(otherUrn, 'Message-ID', IMDN_NS), undefined);
  });

  it('an NS header applies to the headers after it: a prefix bound later, or rebound, is resolved at each header\'s place', () => {
    const msg = parseCpim(crlf([
      'x.Message-ID: before-ns',
      'NS: x <urn:ietf:params:imdn>',
      'x.Message-ID: first',
      'NS: x <urn:example:other>',
      'x.Message-ID: other',
      '', '', '',
    ]));
    assert.deepEqual(headerValues(msg, 'Message-ID', IMDN_NS), ['first']);
    assert.deepEqual(headerValues(msg, 'Message-ID', 'urn:example:other'), ['other']);
  });

  it('RFC 5438 §6: the IMDN request of the §7.1.1.1 example is its Message-ID, the dispositions asked for and the DateTime', () => {
    const msg = parseCpim(RFC5438_REQUEST);
    assert.deepEqual(imdnRequest(msg), { messageId: '34jk324j', dispositions: ['positive-delivery', 'display'], dateTime: '2006-04-04T12:16:49-05:00' });
    assert.equal(msg.contentType, 'text/plain');
    assert.equal(msg.body, 'Hello World');
  });

  it('dispositions may come without spaces, in any case, over several headers; unknown ones are ignored, duplicates counted once', () => {
    const msg = parseCpim(crlf([
      'NS: imdn <urn:ietf:params:imdn>',
      'imdn.Message-ID: m-1',
      'imdn.Disposition-Notification: positive-delivery,Display',
      'imdn.Disposition-Notification: x-custom, negative-delivery, display, processing',
      '', 'Content-Type: text/plain', '', 'x',
    ]));
    assert.deepEqual(imdnRequest(msg), { messageId: 'm-1', dispositions: ['positive-delivery', 'display', 'negative-delivery', 'processing'], dateTime: undefined });
  });

  it('a message without an IMDN Message-ID has no IMDN request; one without Disposition-Notification asks for nothing', () => {
    assert.equal(imdnRequest(parseCpim(RFC3862_EXAMPLE)), undefined);
    const bare = parseCpim(crlf(['NS: imdn <urn:ietf:params:imdn>', 'imdn.Message-ID: m-2', '', '', 'x']));
    assert.deepEqual(imdnRequest(bare)?.dispositions, []);
    const spaced = parseCpim(crlf(['NS: imdn <urn:ietf:params:imdn>', 'imdn.Message-ID: has space', '', '', 'x']));
    assert.equal(imdnRequest(spaced), undefined, 'a Message-ID is one token');
  });

  it('accepts bare LF line ends on input (many clients send them) and leaves the content as it came', () => {
    const msg = parseCpim(RFC5438_REQUEST.replaceAll('\r\n', '\n'));
    assert.equal(imdnRequest(msg)?.messageId, '34jk324j');
    assert.equal(msg.body, 'Hello World');
    const multiline = parseCpim('From: <sip:a@example.com>\n\nContent-Type: text/plain\n\nline 1\nline 2\n');
    assert.equal(multiline.body, 'line 1\nline 2\n');
  });

  it('writes CRLF line ends (§3.1): the §6 example read and written again is the same text', () => {
    assert.equal(buildCpim(parseCpim(RFC3862_EXAMPLE)), RFC3862_EXAMPLE.replace('Content-type:', 'Content-Type:'));
    const fromLf = buildCpim(parseCpim(RFC5438_REQUEST.replaceAll('\r\n', '\n')));
    assert.ok(!/[^\r]\n/.test(fromLf.slice(0, fromLf.indexOf('Hello'))), 'every header line ends in CRLF');
  });

  it('buildCpim puts Content-Type first when the inner headers have none, and contentType wins over one they have', () => {
    const msg: CpimMessage = {
      headers: [['From', '<sip:alice@example.com>'], ['To', '<sip:bob@example.com>']],
      contentType: 'text/plain; charset=utf-8',
      contentHeaders: [['Content-ID', '<1@example.com>']],
      body: 'héllo',
    };
    assert.equal(buildCpim(msg), 'From: <sip:alice@example.com>\r\nTo: <sip:bob@example.com>\r\n\r\nContent-Type: text/plain; charset=utf-8\r\nContent-ID: <1@example.com>\r\n\r\nhéllo');
    const replaced = buildCpim({ ...msg, contentHeaders: [['Content-ID', '<1@example.com>'], ['content-type', 'text/html']] });
    assert.match(replaced, /\r\n\r\nContent-ID: <1@example.com>\r\nContent-Type: text\/plain; charset=utf-8\r\n\r\nhéllo$/);
    assert.deepEqual(parseCpim(buildCpim(msg)), { ...msg, contentHeaders: [['Content-Type', 'text/plain; charset=utf-8'], ['Content-ID', '<1@example.com>']] });
  });

  it('buildCpim refuses a line break in a value or a bad name: no header can be injected', () => {
    const base: CpimMessage = { headers: [['From', '<sip:a@example.com>']], contentType: 'text/plain', contentHeaders: [], body: 'x' };
    for (const msg of [
      { ...base, headers: [['Subject', 'hi\r\nimdn.Message-ID: forged']] as Array<[string, string]> },
      { ...base, headers: [['Sub ject', 'hi']] as Array<[string, string]> },
      { ...base, contentType: 'text/plain\r\nX: y' },
      { ...base, contentHeaders: [['Content-ID', 'a\nb']] as Array<[string, string]> },
    ]) {
      assert.throws(() => buildCpim(msg), CpimError);
    }
  });

  it('a content part without headers is text/plain (RFC 2045 §5.2)', () => {
    const msg = parseCpim('From: <sip:a@example.com>\r\n\r\n\r\nhello');
    assert.equal(msg.contentType, 'text/plain');
    assert.deepEqual(msg.contentHeaders, []);
    assert.equal(msg.body, 'hello');
  });

  it('MIME headers of the inner part may be folded; CPIM message headers may not', () => {
    const msg = parseCpim('From: <sip:a@example.com>\r\n\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\nhi');
    assert.equal(msg.contentType, 'text/plain; charset=utf-8');
    refuses('From: <sip:a@example.com>\r\n  continued\r\n\r\n\r\nhi', /message headers: not a header line/);
  });

  it('refuses malformed bodies with CpimError MESSAGING_ERR_CPIM', () => {
    refuses('Hello, this is plain text', /message headers: no blank line/);
    refuses('Hello there\r\n\r\n\r\nx', /message headers: not a header line/);
    refuses(': no name\r\n\r\n\r\nx', /not a header line/);
    refuses('From: <sip:a@example.com>\r\n\r\nContent-Type: text/plain\r\n', /content headers: no blank line/);
    refuses('From: <sip:a@example.com>\x00\r\n\r\n\r\nx', /control character in From/);
    refuses('From: <sip:a@example.com>\r\n\r\nContent-Type:\r\n\r\nx', /empty Content-Type/);
  });

  it('bounds the work on hostile input: header count and line length are limited', () => {
    const many = Array.from({ length: CPIM_MAX_HEADERS + 1 }, (_, i) => `X-H${i}: v`).join('\r\n');
    refuses(`${many}\r\n\r\n\r\nx`, new RegExp(`more than ${CPIM_MAX_HEADERS} headers`));
    const atLimit = Array.from({ length: CPIM_MAX_HEADERS }, (_, i) => `X-H${i}: v`).join('\r\n');
    assert.equal(parseCpim(`${atLimit}\r\n\r\n\r\nx`).headers.length, CPIM_MAX_HEADERS);
    refuses(`Subject: ${'a'.repeat(CPIM_MAX_LINE)}\r\n\r\n\r\nx`, /longer than/);
    refuses(`Subject: ${'a'.repeat(5_000_000)}`, /longer than/);
    const manyContent = Array.from({ length: CPIM_MAX_HEADERS + 1 }, (_, i) => `X-C${i}: v`).join('\r\n');
    refuses(`From: <sip:a@example.com>\r\n\r\n${manyContent}\r\n\r\nx`, /content headers: more than/);
    refuses(`From: <sip:a@example.com>\r\n\r\nContent-Type: text/plain\r\n${Array.from({ length: 100 }, () => ` ${'x'.repeat(50)}`).join('\r\n')}\r\n\r\nx`, /folded header is longer/);
  });
});
