import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { audioCodecs, legProfile, mediaProtocols, ngFlags, transcodeCodecs } from '../../../media/index.js';
import { plainAnswer, plainOffer, webrtcOffer } from './sdp-fixtures.js';

describe('media profiles per leg', () => {
  it('a leg signalled over WS or WSS is WebRTC (RFC 7118), whatever its SDP says', () => {
    assert.equal(legProfile({ transport: 'wss' }), 'webrtc');
    assert.equal(legProfile({ transport: 'ws', sdp: plainOffer() }), 'webrtc');
  });

  it('a leg over UDP/TCP/TLS is WebRTC only when its SDP uses UDP/TLS/RTP/SAVPF or RTP/SAVPF', () => {
    for (const transport of ['udp', 'tcp', 'tls'] as const) {
      assert.equal(legProfile({ transport }), 'plain');
      assert.equal(legProfile({ transport, sdp: plainOffer() }), 'plain');
      assert.equal(legProfile({ transport, sdp: webrtcOffer() }), 'webrtc');
      assert.equal(legProfile({ transport, sdp: Buffer.from(webrtcOffer()) }), 'webrtc');
    }
    const savpf = plainOffer().replace('RTP/AVP', 'RTP/SAVPF');
    assert.equal(legProfile({ transport: 'udp', sdp: savpf }), 'webrtc');
    const savp = plainOffer().replace('RTP/AVP', 'RTP/SAVP');
    assert.equal(legProfile({ transport: 'tls', sdp: savp }), 'plain');
  });

  it('reads the audio codecs of an SDP, static payload types included', () => {
    assert.deepEqual(audioCodecs(webrtcOffer()), ['opus', 'telephone-event']);
    assert.deepEqual(audioCodecs(plainOffer()), ['PCMU', 'PCMA', 'telephone-event']);
    const noRtpmap = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18 0\r\n';
    assert.deepEqual(audioCodecs(noRtpmap), ['G729', 'PCMU']);
    assert.deepEqual(mediaProtocols(webrtcOffer()), ['UDP/TLS/RTP/SAVPF']);
  });

  it('reads the protocol of every m= line, with LF or CRLF line ends and a port count', () => {
    const two = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000/2 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\n';
    assert.deepEqual(mediaProtocols(two), ['RTP/AVP', 'UDP/TLS/RTP/SAVPF']);
    assert.deepEqual(mediaProtocols(Buffer.from(two.replace(/\r\n/g, '\n'))), ['RTP/AVP', 'UDP/TLS/RTP/SAVPF']);
    assert.deepEqual(mediaProtocols('v=0\r\ns=-\r\na=x:m=audio 1 RTP/SAVPF 0\r\n'), []);
  });
});

describe('ng flags for the side that receives the SDP', () => {
  it('towards a WebRTC leg: UDP/TLS/RTP/SAVPF, ICE forced, rtcp-mux offered and required, no SDES', () => {
    const f = ngFlags('webrtc');
    assert.equal(f['transport-protocol'], 'UDP/TLS/RTP/SAVPF');
    assert.equal(f.ICE, 'force');
    assert.deepEqual(f['rtcp-mux'], ['offer', 'require']);
    assert.deepEqual(f.SDES, ['off']);
  });

  it('towards a WebRTC leg it never forces DTLS=passive (a browser rejects that answer)', () => {
    const f = ngFlags('webrtc');
    assert.equal(f.DTLS, undefined);
    assert.equal(f['DTLS-reverse'], undefined);
  });

  it('towards a plain leg: RTP/AVP, ICE removed, DTLS off, rtcp-mux demuxed', () => {
    const f = ngFlags('plain');
    assert.equal(f['transport-protocol'], 'RTP/AVP');
    assert.equal(f.ICE, 'remove');
    assert.equal(f.DTLS, 'off');
    assert.deepEqual(f['rtcp-mux'], ['demux']);
  });

  it('adds codec.transcode only when codecs are asked for', () => {
    assert.equal(ngFlags('plain').codec, undefined);
    assert.equal(ngFlags('plain', { transcode: [] }).codec, undefined);
    assert.deepEqual(ngFlags('plain', { transcode: ['PCMU', 'PCMA'] }).codec, { transcode: ['PCMU', 'PCMA'] });
  });
});

describe('transcoding decisions', () => {
  it('an opus-only WebRTC offer to a plain leg asks for PCMU and PCMA', () => {
    assert.deepEqual(transcodeCodecs({ offerSdp: webrtcOffer(), receiver: 'plain' }), ['PCMU', 'PCMA']);
  });

  it('no transcoding when the WebRTC offer already has G.711', () => {
    assert.deepEqual(transcodeCodecs({ offerSdp: webrtcOffer(50000, { withG711: true }), receiver: 'plain' }), []);
  });

  it('no transcoding when the plain leg is known to speak opus', () => {
    const opusPhone = plainAnswer().replace('RTP/AVP 0 101', 'RTP/AVP 96 0 101').replace('a=rtpmap:0', 'a=rtpmap:96 opus/48000/2\r\na=rtpmap:0');
    assert.deepEqual(transcodeCodecs({ offerSdp: webrtcOffer(), receiver: 'plain', receiverSdp: opusPhone }), []);
    assert.deepEqual(transcodeCodecs({ offerSdp: webrtcOffer(), receiver: 'plain', receiverSdp: plainAnswer() }), ['PCMU', 'PCMA']);
  });

  it('a plain offer with a codec browsers speak goes to WebRTC untouched; a G.729-only one gets opus and PCMU', () => {
    assert.deepEqual(transcodeCodecs({ offerSdp: plainOffer(), receiver: 'webrtc' }), []);
    const g729 = plainOffer().replace('RTP/AVP 0 8 101', 'RTP/AVP 18 101').replace(/a=rtpmap:[08] .*\r\n/g, '');
    assert.deepEqual(transcodeCodecs({ offerSdp: g729, receiver: 'webrtc' }), ['opus', 'PCMU']);
  });
});
