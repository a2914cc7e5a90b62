/**
 * A videoroom publisher without media, for control-plane tests: it joins the room with a Janus grant and publishes
 * an SDP offer (sendonly Opus and VP8, bundled, trickle ICE). No ICE completes, but Janus creates the publisher's
 * streams from the offer, which is what `moderate` (by mid) needs. Real media: support/janus-netns.ts.
 */
import assert from 'node:assert/strict';
import { JanusClient, VideoRoomAdmin, type JanusGrant } from '../../conference/index.js';

export const AUDIO_MID = 'a0';
export const VIDEO_MID = 'v1';

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => (i + 16).toString(16).toUpperCase()).join(':');

export const PUBLISHER_OFFER = ['v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', `a=group:BUNDLE ${AUDIO_MID} ${VIDEO_MID}`, 'a=msid-semantic: WMS s',
  ...([['audio', 111, 'opus/48000/2', AUDIO_MID, 1111], ['video', 96, 'VP8/90000', VIDEO_MID, 2222]] as const).flatMap(([kind, pt, codec, mid, ssrc]) => [
    `m=${kind} 9 UDP/TLS/RTP/SAVPF ${pt}`, 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx', 'a=ice-options:trickle',
    `a=fingerprint:sha-256 ${FINGERPRINT}`, 'a=setup:actpass', `a=mid:${mid}`, 'a=sendonly', 'a=rtcp-mux', `a=rtpmap:${pt} ${codec}`,
    `a=msid:s ${kind}`, `a=ssrc:${ssrc} cname:t`,
  ]), ''].join('\r\n');

export interface TestPublisher {
  client: JanusClient;
  /** The moderation events about this publisher that Janus sent its handle (Janus tells every participant of the room). */
  moderation: Array<{ mid: string; moderation: string }>;
}

/** Joins the grant's room as a publisher with its feed id and publishes PUBLISHER_OFFER; close `client` when done. */
export async function publishWithoutMedia(grant: JanusGrant, display = 'test'): Promise<TestPublisher> {
  const client = await JanusClient.connect({ url: grant.url, token: grant.token });
  const publisher: TestPublisher = { client, moderation: [] };
  try {
    const handle = (await VideoRoomAdmin.attach(await client.createSession())).handle;
    handle.on('event', ({ data }) => {
      if (typeof data.moderation === 'string' && data.id === grant.feedId) publisher.moderation.push({ mid: String(data.mid), moderation: data.moderation });
    });
    assert.equal((await handle.message({ request: 'join', ptype: 'publisher', room: grant.room, id: grant.feedId, token: grant.token, display })).data.videoroom, 'joined');
    const { data } = await handle.message({ request: 'publish' }, { jsep: { type: 'offer', sdp: PUBLISHER_OFFER } });
    assert.equal(data.configured, 'ok', JSON.stringify(data));
  } catch (err) {
    await client.close();
    throw err;
  }
  return publisher;
}
