/**
 * A participant in a Janus videoroom, with the grant the softswitch answered at admission (`janus: { url, token,
 * room, feedId }`, README "Joining and the lobby"): one publisher handle (join as publisher with `id: feedId`,
 * publish the microphone and camera) and one subscriber handle whose single PeerConnection carries every other
 * publisher's streams (videoroom multistream: `join` as subscriber with a `streams` list, `update` with
 * `subscribe` for publishers that come later, each answered with `start`).
 *
 * Janus tells the publisher handle about the room: `publishers` (new feeds: subscribed), `unpublished` and
 * `leaving`, `kicked` (feeds gone; Janus renegotiates the subscription itself with an `updated` offer, answered here too),
 * `moderation` (a feed's mid muted or unmuted by a moderator), `talking` / `stopped-talking` (audio levels), and
 * `leaving: "ok", reason: "kicked"` for this participant. Negotiations of the subscription run one at a time.
 */
import { type JanusHandle, JanusSession, type PluginEvent } from './janus.js';

const VIDEOROOM = 'janus.plugin.videoroom';
const SUBSCRIBE_TRIES = 5;
const SUBSCRIBE_RETRY_MS = 1000;

export interface JanusGrant {
  url: string;
  token: string;
  room: number;
  feedId: number;
}

export type Medium = 'audio' | 'video';

/** What the page shows of the room; every callback is about one feed (a participant's publisher id). */
export interface RoomView {
  /** A feed is known (it published): its display name. */
  feed(feed: number, display: string): void;
  /** A track of a feed arrived in the subscription. */
  track(feed: number, track: MediaStreamTrack): void;
  /** A feed left or stopped publishing. */
  gone(feed: number): void;
  muted(feed: number, medium: Medium, muted: boolean): void;
  talking(feed: number, talking: boolean): void;
  /** The room is over for this participant: kicked, the room destroyed, or the session lost. */
  ended(why: string): void;
}

interface FeedStream {
  mid: string;
  type: string;
  moderated?: boolean;
}

interface Publisher {
  id: number;
  display?: string;
  streams?: FeedStream[];
}

/** What one m-line of the subscription carries (Janus's `attached` / `updated` streams). */
interface SubStream {
  mid: string;
  type: string;
  feed_id?: number;
  active?: boolean;
}

export class VideoRoom {
  private pub: RTCPeerConnection | undefined;
  private sub: { handle: JanusHandle; pc: RTCPeerConnection } | undefined;
  private subscribing: Promise<unknown> = Promise.resolve();
  /** The feeds the subscription carries (or was asked for). */
  private readonly subscribed = new Set<number>();
  /** The subscription's mids: which feed each carries. */
  private readonly mids = new Map<string, number>();
  /** Every other feed's published streams by mid (audio or video), for its moderation events. */
  private readonly feeds = new Map<number, Map<string, string>>();
  private privateId: number | undefined;
  private over = false;

  private constructor(
    private readonly session: JanusSession,
    private readonly handle: JanusHandle,
    private readonly grant: JanusGrant,
    private readonly iceServers: RTCIceServer[],
    private readonly view: RoomView,
  ) {}

  /** Opens the session, joins as the granted publisher, publishes `local` and subscribes to who is there. */
  static async join(grant: JanusGrant, display: string, local: MediaStream, iceServers: RTCIceServer[], view: RoomView): Promise<VideoRoom> {
    const session = await JanusSession.open(grant.url, grant.token);
    try {
      const handle = await session.attach(VIDEOROOM);
      const room = new VideoRoom(session, handle, grant, iceServers, view);
      session.onclose = (why) => room.end(why);
      handle.onevent = (e) => room.onPublisherEvent(e);
      const { data } = await handle.message({ request: 'join', ptype: 'publisher', room: grant.room, id: grant.feedId, display, token: grant.token });
      if (data.videoroom !== 'joined') throw new Error(`Janus answered the join with ${String(data.videoroom)}`);
      room.privateId = typeof data.private_id === 'number' ? data.private_id : undefined;
      await room.publish(local);
      room.publishers(Array.isArray(data.publishers) ? (data.publishers as Publisher[]) : []);
      return room;
    } catch (err) {
      await session.close();
      throw err;
    }
  }

  /** The mids of what this participant publishes, as the focus wants them (`PUT …/streams`). */
  publishedMids(): { audioMid?: string; videoMid?: string } {
    const mids: { audioMid?: string; videoMid?: string } = {};
    for (const t of this.pub?.getTransceivers() ?? []) {
      const kind = t.sender.track?.kind;
      if (t.mid === null) continue;
      if (kind === 'audio') mids.audioMid = t.mid;
      if (kind === 'video') mids.videoMid = t.mid;
    }
    return mids;
  }

  /** Sends another video track on the published video m-line (the screen instead of the camera): no renegotiation. */
  async replaceVideo(track: MediaStreamTrack): Promise<void> {
    // the receiver's track has the m-line's kind whatever the sender sends now
    const video = this.pub?.getTransceivers().find((t) => t.receiver.track.kind === 'video');
    if (video === undefined) throw new Error('no video is published');
    await video.sender.replaceTrack(track);
  }

  /** The subscription's PeerConnection (for its statistics). */
  subscription(): RTCPeerConnection | undefined {
    return this.sub?.pc;
  }

  /** Hangs up both PeerConnections and destroys the Janus session. */
  async leave(): Promise<void> {
    this.over = true;
    this.pub?.close();
    this.sub?.pc.close();
    await this.session.close();
  }

  private end(why: string): void {
    if (this.over) return;
    this.over = true;
    this.pub?.close();
    this.sub?.pc.close();
    void this.session.close();
    this.view.ended(why);
  }

  private peerConnection(handle: JanusHandle): RTCPeerConnection {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    pc.addEventListener('icecandidate', (e) => handle.trickle(e.candidate));
    return pc;
  }

  private async publish(local: MediaStream): Promise<void> {
    const pc = this.peerConnection(this.handle);
    this.pub = pc;
    for (const track of local.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [local] });
    await pc.setLocalDescription(await pc.createOffer());
    const offer = pc.localDescription!;
    const { data, jsep } = await this.handle.message({ request: 'publish' }, { type: offer.type, sdp: offer.sdp });
    if (data.configured !== 'ok' || jsep?.type !== 'answer') throw new Error(`Janus answered the publish with ${JSON.stringify(data)}`);
    await pc.setRemoteDescription(jsep);
  }

  private onPublisherEvent({ data }: PluginEvent): void {
    const id = typeof data.id === 'number' ? data.id : undefined;
    switch (data.videoroom) {
      case 'talking':
      case 'stopped-talking':
        if (id !== undefined) this.view.talking(id, data.videoroom === 'talking');
        return;
      case 'destroyed':
        this.end('the meeting ended');
        return;
      case 'event':
        break;
      default:
        return;
    }
    if (Array.isArray(data.publishers)) this.publishers(data.publishers as Publisher[]);
    if (data.leaving === 'ok' && data.reason === 'kicked') this.end('removed from the meeting by a moderator');
    // a feed kicked (a moderator, or the focus when its participant left) is `kicked`, not `leaving`, to the others
    for (const key of ['unpublished', 'leaving', 'kicked'] as const) {
      const feed = data[key];
      if (typeof feed === 'number') this.forget(feed);
    }
    if ((data.moderation === 'muted' || data.moderation === 'unmuted') && id !== undefined && typeof data.mid === 'string') {
      const type = id === this.grant.feedId ? this.ownMediumOf(data.mid) : this.feeds.get(id)?.get(data.mid);
      if (type === 'audio' || type === 'video') this.view.muted(id, type, data.moderation === 'muted');
    }
  }

  private ownMediumOf(mid: string): string | undefined {
    return this.pub?.getTransceivers().find((t) => t.mid === mid)?.sender.track?.kind;
  }

  /** New publishers: shown, their moderation state told, subscribed to. */
  private publishers(list: Publisher[]): void {
    const fresh = list.filter((p) => p.id !== this.grant.feedId && !this.feeds.has(p.id));
    for (const p of fresh) {
      const streams = new Map((p.streams ?? []).map((s) => [String(s.mid), s.type]));
      this.feeds.set(p.id, streams);
      this.view.feed(p.id, p.display ?? String(p.id));
      for (const s of p.streams ?? []) {
        if (s.moderated === true && (s.type === 'audio' || s.type === 'video')) this.view.muted(p.id, s.type, true);
      }
    }
    if (fresh.length > 0) this.subscribeSoon(0, SUBSCRIBE_TRIES);
  }

  private forget(feed: number): void {
    this.subscribed.delete(feed);
    if (!this.feeds.delete(feed)) return;
    this.view.gone(feed);
  }

  /** A subscription step, tried again a second later when it fails (a feed that went is forgotten by then). */
  private subscribeSoon(delayMs: number, tries: number): void {
    window.setTimeout(() => this.serially(async () => {
      try {
        await this.subscribe();
      } catch (err) {
        if (!this.over && tries > 1) this.subscribeSoon(SUBSCRIBE_RETRY_MS, tries - 1);
        throw err;
      }
    }), delayMs);
  }

  /** One negotiation of the subscription at a time (a join, an update, Janus's own renegotiation). */
  private serially(step: () => Promise<void>): void {
    this.subscribing = this.subscribing.then(step).catch((err: unknown) => {
      if (!this.over) console.warn('meeting: subscription step failed', err);
    });
  }

  /**
   * Subscribes to every known feed not subscribed yet: the first time by joining as a subscriber, then by `update`.
   * A step that fails (a feed gone meanwhile: Janus refuses the whole request) leaves its feeds to the next one.
   */
  private async subscribe(): Promise<void> {
    const wanted = [...this.feeds.keys()].filter((f) => !this.subscribed.has(f));
    if (wanted.length === 0 || this.over) return;
    const streams = wanted.map((feed) => ({ feed }));
    if (this.sub === undefined) {
      const handle = await this.session.attach(VIDEOROOM);
      const pc = this.peerConnection(handle);
      pc.addEventListener('track', (e) => {
        const feed = e.transceiver.mid === null ? undefined : this.mids.get(e.transceiver.mid);
        if (feed !== undefined) this.view.track(feed, e.track);
      });
      // Janus renegotiates by itself when a subscribed feed goes: an `updated` event with an offer
      handle.onevent = (e) => {
        if (e.jsep?.type === 'offer') this.serially(() => this.answer(e));
      };
      this.sub = { handle, pc };
      try {
        const joined = await handle.message({ request: 'join', ptype: 'subscriber', room: this.grant.room, streams, private_id: this.privateId, token: this.grant.token });
        await this.answer(joined);
      } catch (err) {
        this.sub = undefined;
        pc.close();
        await handle.detach();
        throw err;
      }
    } else {
      await this.answer(await this.sub.handle.message({ request: 'update', subscribe: streams }));
    }
    for (const f of wanted) this.subscribed.add(f);
  }

  /** Janus's offer for the subscription: its mids learnt, answered, and the answer sent with `start`. */
  private async answer({ data, jsep }: PluginEvent): Promise<void> {
    if (this.sub === undefined || jsep === undefined || jsep.type !== 'offer' || this.over) return;
    for (const s of Array.isArray(data.streams) ? (data.streams as SubStream[]) : []) {
      if (typeof s.feed_id === 'number' && s.active !== false) this.mids.set(String(s.mid), s.feed_id);
    }
    const { pc, handle } = this.sub;
    await pc.setRemoteDescription(jsep);
    await pc.setLocalDescription(await pc.createAnswer());
    const answer = pc.localDescription!;
    await handle.message({ request: 'start' }, { type: answer.type, sdp: answer.sdp });
  }
}
