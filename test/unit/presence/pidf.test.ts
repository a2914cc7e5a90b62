/**
 * PIDF (presence/pidf.ts): the documents of RFC 3863, RFC 4479 and RFC 4480 and what real apps publish,
 * read into PublishedState; the document watchers get; and refusals of malformed and hostile XML.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  PIDF_DM_NS, PIDF_MAX_SIZE, PIDF_NOTE_MAX, PIDF_NS, PIDF_RPID_NS, PidfError, blockedPidf, buildPidf, parsePidf,
} from '../../../presence/pidf.js';
import type { PresenceView } from '../../../presence/types.js';
import { firstChild, parseSafeXml, type XmlElement } from '../../../platform/xml/index.js';

const crlf = (lines: string[]): string => lines.join('\r\n');

/** RFC 3863 §3.4: one tuple, open, a contact with a priority. */
const RFC3863_SIMPLE = crlf([
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<presence xmlns="urn:ietf:params:xml:ns:pidf"',
  '    entity="pres:someone@example.com">',
  '  <tuple id="sg89ae">',
  '    <status>',
  '      <basic>open</basic>',
  '    </status>',
  '    <contact priority="0.8">tel:+09012345678</contact>',
  '  </tuple>',
  '</presence>',
]);

/** RFC 3863 §4 (the larger example): two tuples, an extension namespace, notes in two languages, a presence note. */
const RFC3863_FULL = crlf([
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"',
  '    xmlns:myex="http://id.example.com/presence/"',
  '    entity="pres:someone@example.com">',
  '  <impp:tuple id="ck38g9">',
  '    <impp:status>',
  '      <impp:basic>closed</impp:basic>',
  '      <myex:location>home</myex:location>',
  '    </impp:status>',
  '    <myex:mytupletag>Some extended data</myex:mytupletag>',
  '    <impp:contact priority="0.65">tel:+09012345678</impp:contact>',
  '  </impp:tuple>',
  '  <impp:tuple id="md66je">',
  '    <impp:status>',
  '      <impp:basic>open</impp:basic>',
  '    </impp:status>',
  '    <impp:contact priority="1.0">im:someone@mobilecarrier.net</impp:contact>',
  '    <impp:note xml:lang="en">Don\'t Disturb Please!</impp:note>',
  '    <impp:note xml:lang="fr">Ne d&#233;rangez pas, s\'il vous pla&#xEE;t</impp:note>',
  '    <impp:timestamp>2001-10-27T16:49:29Z</impp:timestamp>',
  '  </impp:tuple>',
  '  <impp:note xml:lang="en">I\'ll be in Tokyo next week</impp:note>',
  '</impp:presence>',
]);

/** RFC 4480 §3 (the person example): activities, a meeting with an `other` too, the person's note. */
const RFC4480_PERSON = crlf([
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<presence xmlns="urn:ietf:params:xml:ns:pidf"',
  '    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"',
  '    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"',
  '    xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"',
  '    entity="pres:someone@example.com">',
  '  <tuple id="bs35r9">',
  '    <status><basic>open</basic></status>',
  '    <rpid:class>forw</rpid:class>',
  '    <contact priority="0.8">im:someone@mobilecarrier.net</contact>',
  '    <note xml:lang="en">Don\'t Disturb Please!</note>',
  '    <timestamp>2005-10-27T16:49:29Z</timestamp>',
  '  </tuple>',
  '  <dm:person id="p1">',
  '    <rpid:activities from="2005-05-30T12:00:00+05:00" until="2005-05-30T17:00:00+05:00">',
  '      <rpid:note>Far away</rpid:note>',
  '      <rpid:meeting/>',
  '      <rpid:other>sightseeing</rpid:other>',
  '    </rpid:activities>',
  '    <rpid:place-type><rpid:office/></rpid:place-type>',
  '    <dm:note>Scoring 120</dm:note>',
  '    <dm:timestamp>2005-05-30T16:09:44+05:00</dm:timestamp>',
  '  </dm:person>',
  '</presence>',
]);

/** What SIP.js and JsSIP demo apps PUBLISH: one tuple and a note, no data model. */
const SIPJS_APP = '<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">'
  + '<tuple id="t1"><status><basic>open</basic></status><note>  Working from home  </note></tuple></presence>';

/** baresip (modules/presence): a tuple, and a person whose activity is away. */
const BARESIP = crlf([
  '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
  '<presence xmlns="urn:ietf:params:xml:ns:pidf"',
  '    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"',
  '    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"',
  '    entity="sip:bob@example.com">',
  '  <dm:person id="p4159">',
  '    <rpid:activities><rpid:away/></rpid:activities>',
  '  </dm:person>',
  '  <tuple id="t4109">',
  '    <status>',
  '      <basic>open</basic>',
  '    </status>',
  '    <contact>sip:bob@example.com</contact>',
  '  </tuple>',
  '</presence>',
]);

/** linphone: a tuple with contact and timestamp, a person with activities and a timestamp. */
const LINPHONE = crlf([
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"'
    + ' xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:carol@example.com">',
  '  <tuple id="qmh2zo">',
  '    <status>',
  '      <basic>open</basic>',
  '    </status>',
  '    <contact>sip:carol@example.com</contact>',
  '    <timestamp>2024-04-08T09:43:27Z</timestamp>',
  '  </tuple>',
  '  <dm:person id="sip:carol@example.com">',
  '    <rpid:activities>',
  '      <rpid:on-the-phone/>',
  '    </rpid:activities>',
  '    <dm:timestamp>2024-04-08T09:43:27Z</dm:timestamp>',
  '  </dm:person>',
  '</presence>',
]);

/** A Bria-like softphone set to Busy: the note in the tuple, the activity in the person. */
const BRIA_LIKE = crlf([
  '<?xml version=\'1.0\' encoding=\'UTF-8\'?>',
  '<presence xmlns=\'urn:ietf:params:xml:ns:pidf\' xmlns:dm=\'urn:ietf:params:xml:ns:pidf:data-model\'',
  '  xmlns:rpid=\'urn:ietf:params:xml:ns:pidf:rpid\' xmlns:c=\'urn:ietf:params:xml:ns:pidf:cipid\' entity=\'sip:dave@example.com\'>',
  '<tuple id=\'t54bb0569\'><status><basic>open</basic></status></tuple>',
  '<dm:person id=\'p65f3307f\'><rpid:activities><rpid:busy/></rpid:activities></dm:person>',
  '<note>Busy</note>',
  '</presence>',
]);

function refuses(xml: string, message: RegExp): void {
  assert.throws(() => parsePidf(xml), (err: unknown) => {
    assert.ok(err instanceof PidfError);
    assert.equal(err.code, 'PRESENCE_ERR_PIDF');
    assert.match(err.message, message);
    return true;
  });
}

const view = (over: Partial<PresenceView> = {}): PresenceView => ({
  entity: 'sip:alice@example.com', basic: 'open', activities: [], reachability: 'online', onThePhone: false, ...over,
});

describe('reading a PUBLISHed PIDF (RFC 3863, RFC 4479, RFC 4480)', () => {
  it('reads the RFC 3863 §3.4 document: one open tuple, no activity, no note', () => {
    assert.deepEqual(parsePidf(RFC3863_SIMPLE), { basic: 'open', activities: [], note: undefined });
  });

  it('RFC 3863 §4 with a prefix: open when any tuple is open; the first tuple note wins over the presence note', () => {
    assert.deepEqual(parsePidf(RFC3863_FULL), { basic: 'open', activities: [], note: 'Don\'t Disturb Please!' });
    assert.equal(parsePidf(RFC3863_FULL.replace('<impp:basic>open', '<impp:basic>closed')).basic, 'closed', 'every tuple closed is closed');
    const noTupleNotes = RFC3863_FULL.replace(/<impp:note xml:lang="(en|fr)">(Don|Ne)[^<]*<\/impp:note>/g, '');
    assert.equal(parsePidf(noTupleNotes).note, 'I\'ll be in Tokyo next week', 'without tuple notes, the presence note');
  });

  it('RFC 4480: the person\'s activities in document order, `other` with its text, the RPID note is no activity; the person note wins', () => {
    assert.deepEqual(parsePidf(RFC4480_PERSON), { basic: 'open', activities: ['meeting', 'other:sightseeing'], note: 'Scoring 120' });
  });

  it('reads what SIP.js/JsSIP apps publish: open, the tuple note trimmed', () => {
    assert.deepEqual(parsePidf(SIPJS_APP), { basic: 'open', activities: [], note: 'Working from home' });
  });

  it('reads baresip\'s document (person before tuple): open and away', () => {
    assert.deepEqual(parsePidf(BARESIP), { basic: 'open', activities: ['away'], note: undefined });
  });

  it('reads linphone\'s document: open and on-the-phone, timestamps ignored', () => {
    assert.deepEqual(parsePidf(LINPHONE), { basic: 'open', activities: ['on-the-phone'], note: undefined });
  });

  it('reads a Bria-like "Busy": the activity from the person, the note from the presence element', () => {
    assert.deepEqual(parsePidf(BRIA_LIKE), { basic: 'open', activities: ['busy'], note: 'Busy' });
  });

  it('a person-only document (no tuple) is open: an app saying "away" is not offline', () => {
    const xml = `<presence xmlns="${PIDF_NS}" xmlns:dm="${PIDF_DM_NS}" xmlns:r="${PIDF_RPID_NS}" entity="sip:a@example.com">`
      + '<dm:person id="p"><r:activities><r:away/></r:activities><dm:note>back at 3</dm:note></dm:person></presence>';
    assert.deepEqual(parsePidf(xml), { basic: 'open', activities: ['away'], note: 'back at 3' });
  });

  it('activities of tuples (and of their status, pre-data-model clients) count too, once each, in document order', () => {
    const xml = `<presence xmlns="${PIDF_NS}" xmlns:dm="${PIDF_DM_NS}" xmlns:rpid="${PIDF_RPID_NS}" entity="sip:a@example.com">`
      + '<tuple id="a"><status><basic>closed</basic><rpid:activities><rpid:vacation/></rpid:activities></status></tuple>'
      + '<dm:person id="p"><rpid:activities><rpid:away/><rpid:vacation/><x:busy xmlns:x="urn:example:x"/></rpid:activities></dm:person>'
      + '<tuple id="b"><status><basic>closed</basic></status><rpid:activities><rpid:busy/><rpid:away/></rpid:activities></tuple>'
      + '</presence>';
    assert.deepEqual(parsePidf(xml), { basic: 'closed', activities: ['vacation', 'away', 'busy'], note: undefined });
  });

  it('notes are trimmed, decoded, at most 256 characters; an empty note is no note', () => {
    const long = 'é'.repeat(PIDF_NOTE_MAX + 50);
    const doc = (note: string) => `<presence xmlns="${PIDF_NS}" entity="sip:a@example.com"><tuple id="t"><status><basic>open</basic></status>`
      + `<note>${note}</note></tuple></presence>`;
    assert.equal(parsePidf(doc(long)).note, 'é'.repeat(PIDF_NOTE_MAX));
    assert.equal(parsePidf(doc('  a &lt;b&gt; &amp; c  ')).note, 'a <b> & c');
    assert.equal(parsePidf(doc('   ')).note, undefined);
  });

  it('elements are named by namespace, not prefix: the right prefixes bound to wrong namespaces count for nothing', () => {
    const wrongRoot = RFC3863_SIMPLE.replace('urn:ietf:params:xml:ns:pidf', 'urn:example:pidf');
    refuses(wrongRoot, /root is not/);
    const wrongRpid = BARESIP.replace('xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"', 'xmlns:rpid="urn:example:rpid"');
    assert.deepEqual(parsePidf(wrongRpid).activities, []);
    const wrongDm = RFC4480_PERSON.replace('xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"', 'xmlns:dm="urn:example:dm"');
    assert.deepEqual(parsePidf(wrongDm), { basic: 'open', activities: [], note: 'Don\'t Disturb Please!' }, 'not a person: its activities and note are not read');
  });

  it('refuses what is not a PIDF: malformed XML, another root, an undeclared prefix, an unknown entity', () => {
    refuses('not xml', /not well-formed|not one root/);
    refuses(RFC3863_SIMPLE.replace('</tuple>', ''), /not well-formed/);
    refuses('<imdn xmlns="urn:ietf:params:xml:ns:imdn"/>', /root is not/);
    refuses(RFC3863_SIMPLE.replace('<tuple', '<q:tuple').replace('</tuple>', '</q:tuple>'), /undeclared namespace prefix q|not well-formed/);
    refuses(RFC3863_SIMPLE.replace('tel:', '&nbsp;tel:'), /not an XML reference/);
  });

  it('refuses a DTD (billion laughs), a document over 64 KiB, and nesting deeper than the cap, before building anything', () => {
    const laughs = '<?xml version="1.0"?><!DOCTYPE presence [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
      + '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
      + `<presence xmlns="${PIDF_NS}" entity="sip:a@example.com"><note>&c;</note></presence>`;
    refuses(laughs, /document type declaration/);
    refuses(RFC3863_SIMPLE.replace('tel:', 'x'.repeat(PIDF_MAX_SIZE)), /larger than/);
    // Under the character limit but over 64 KiB in UTF-8.
    const wide = RFC3863_SIMPLE.replace('tel:', '€'.repeat(PIDF_MAX_SIZE / 2));
    assert.ok(wide.length < PIDF_MAX_SIZE);
    refuses(wide, /larger than/);
    const deep = `<presence xmlns="${PIDF_NS}" entity="sip:a@example.com">${'<x:a xmlns:x="urn:x">'.repeat(200)}${'</x:a>'.repeat(200)}</presence>`;
    refuses(deep, /nest|not well-formed/i);
    refuses(`<presence xmlns="${PIDF_NS}" entity="e"><__proto__/></presence>`, /not well-formed/);
  });
});

/** The parts of a written document a watcher's app reads, by namespace. */
function watcherSees(xml: string): { entity?: string | undefined; tupleId?: string | undefined; basic?: string | undefined; contact?: string | undefined; tupleNote?: string | undefined; activities: string[]; personNote?: string | undefined } {
  const root = parseSafeXml(xml, { maxSize: PIDF_MAX_SIZE });
  assert.equal(root.ns, PIDF_NS);
  assert.equal(root.local, 'presence');
  const tuple = firstChild(root, PIDF_NS, 'tuple');
  const person = firstChild(root, PIDF_DM_NS, 'person');
  const activities = person === undefined ? undefined : firstChild(person, PIDF_RPID_NS, 'activities');
  const status = tuple === undefined ? undefined : firstChild(tuple, PIDF_NS, 'status');
  const child = (e: XmlElement | undefined, ns: string, local: string) => (e === undefined ? undefined : firstChild(e, ns, local)?.text);
  return {
    entity: root.attributes.get('entity'),
    tupleId: tuple?.attributes.get('id'),
    basic: child(status, PIDF_NS, 'basic'),
    contact: child(tuple, PIDF_NS, 'contact'),
    tupleNote: child(tuple, PIDF_NS, 'note'),
    activities: activities?.children.filter((c) => c.ns === PIDF_RPID_NS).map((c) => (c.local === 'other' ? `other:${c.text}` : c.local)) ?? [],
    personNote: child(person, PIDF_DM_NS, 'note'),
  };
}

describe('the PIDF a watcher is told (RFC 3856 §6.7)', () => {
  it('one tuple (status, contact = the entity, note) and one person (activities, note), in the right namespaces', () => {
    const xml = buildPidf(view({ activities: ['away'], note: 'back at 3' }));
    assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">/);
    const seen = watcherSees(xml);
    assert.match(String(seen.tupleId), /^t-[0-9a-f]{12}$/);
    assert.deepEqual({ ...seen, tupleId: undefined }, {
      entity: 'sip:alice@example.com', tupleId: undefined, basic: 'open', contact: 'sip:alice@example.com', tupleNote: 'back at 3',
      activities: ['away'], personNote: 'back at 3',
    });
    assert.deepEqual(parsePidf(xml), { basic: 'open', activities: ['away'], note: 'back at 3' }, 'our own reader reads it back');
  });

  it('without a note: "Online", "On the phone" (with the on-the-phone activity), "Offline", "Reachable" for push-only', () => {
    assert.equal(watcherSees(buildPidf(view())).personNote, 'Online');
    const phone = watcherSees(buildPidf(view({ onThePhone: true })));
    assert.equal(phone.personNote, 'On the phone');
    assert.deepEqual(phone.activities, ['on-the-phone']);
    assert.equal(watcherSees(buildPidf(view({ basic: 'closed', reachability: 'offline' }))).personNote, 'Offline');
    assert.equal(watcherSees(buildPidf(view({ reachability: 'push' }))).personNote, 'Reachable');
    assert.equal(watcherSees(buildPidf(view())).activities.length, 0);
    assert.doesNotMatch(buildPidf(view()), /activities/, 'no activities element when there are none');
  });

  it('equal views give byte-equal documents; activity order and repeats do not matter; another entity gets another tuple id', () => {
    const a = buildPidf(view({ activities: ['busy', 'away'], onThePhone: true }));
    assert.equal(buildPidf(view({ activities: ['away', 'busy', 'on-the-phone', 'away'], onThePhone: true })), a);
    assert.notEqual(buildPidf(view({ activities: ['away'] })), a);
    assert.notEqual(watcherSees(buildPidf(view({ entity: 'sip:bob@example.com' }))).tupleId, watcherSees(a).tupleId);
  });

  it('escapes every value; control characters in a note are dropped, not a failed NOTIFY', () => {
    const xml = buildPidf(view({ entity: 'sip:a&b@example.com;x="<1>"', note: 'Tom & "Jerry" <3 \x01\'', activities: ['other:<script>'] }));
    const seen = watcherSees(xml);
    assert.equal(seen.entity, 'sip:a&b@example.com;x="<1>"');
    assert.equal(seen.personNote, 'Tom & "Jerry" <3 \'');
    assert.deepEqual(seen.activities, ['other:<script>']);
    assert.doesNotMatch(xml, /<script>|\x01/);
  });

  it('an activity RFC 4480 does not list is written as <rpid:other> so the document stays valid', () => {
    assert.deepEqual(watcherSees(buildPidf(view({ activities: ['gaming', 'meeting'] }))).activities, ['other:gaming', 'meeting']);
  });

  it('the polite block (RFC 5025 §3.2.1) is byte for byte what an offline user\'s watchers get: closed, no activity', () => {
    const xml = blockedPidf('sip:alice@example.com');
    const seen = watcherSees(xml);
    assert.equal(seen.basic, 'closed');
    assert.deepEqual(seen.activities, []);
    assert.equal(xml, buildPidf({ entity: 'sip:alice@example.com', basic: 'closed', activities: [], reachability: 'offline', onThePhone: false }));
    assert.notEqual(xml, buildPidf(view()), 'an online user looks different');
  });
});
