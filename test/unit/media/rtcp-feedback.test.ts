import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'sdp-transform';
import { expandFeedbackWildcards } from '../../../media/index.js';
import { plainVideoSdp, webrtcVideoOffer } from './sdp-fixtures.js';

describe('a=rtcp-fb:* written per payload type for rtpengine (RFC 4585 §4.2)', () => {
  it('each wildcard line becomes one line per payload type of its m-line, in its place; nothing else changes', () => {
    const phone = plainVideoSdp({ feedback: 'wildcard' }).replace('m=video 40102 RTP/AVP 96', 'm=video 40102 RTP/AVP 96 97').replace('a=rtpmap:96 VP8/90000\r\n', 'a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n');
    const out = expandFeedbackWildcards(phone);
    const expected = phone.replace(
      'a=rtcp-fb:* nack\r\na=rtcp-fb:* nack pli\r\na=rtcp-fb:* ccm fir\r\n',
      'a=rtcp-fb:96 nack\r\na=rtcp-fb:97 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:97 nack pli\r\na=rtcp-fb:96 ccm fir\r\na=rtcp-fb:97 ccm fir\r\n',
    );
    assert.equal(out, expected);
    const video = parse(out).media[1]!;
    assert.deepEqual(video.rtcpFb?.map((f) => String(f.payload)).sort(), ['96', '96', '96', '97', '97', '97']);
  });

  it('an SDP without a wildcard is returned as it is (per-payload-type feedback, none, a browser\'s offer)', () => {
    for (const sdp of [plainVideoSdp(), plainVideoSdp({ feedback: false }), webrtcVideoOffer()]) assert.equal(expandFeedbackWildcards(sdp), sdp);
  });

  it('a payload type that already has the same feedback is not given it twice', () => {
    const sdp = plainVideoSdp({ feedback: 'wildcard' }).replace('a=rtcp-fb:* nack pli\r\n', 'a=rtcp-fb:96 nack pli\r\na=rtcp-fb:* nack pli\r\n');
    const lines = expandFeedbackWildcards(sdp).split('\r\n').filter((l) => l === 'a=rtcp-fb:96 nack pli');
    assert.equal(lines.length, 1);
  });

  it('works with LF line ends and with a wildcard on the last line without a line end', () => {
    const lf = plainVideoSdp({ feedback: 'wildcard' }).replace(/\r\n/g, '\n');
    assert.match(expandFeedbackWildcards(lf), /\na=rtcp-fb:96 nack pli\n/);
    const last = 'v=0\r\ns=-\r\nt=0 0\r\nm=video 4000 RTP/AVP 96 98\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:98 VP9/90000\r\na=rtcp-fb:* ccm fir';
    assert.equal(expandFeedbackWildcards(last), last.replace('a=rtcp-fb:* ccm fir', 'a=rtcp-fb:96 ccm fir\r\na=rtcp-fb:98 ccm fir'));
  });

  it('a wildcard at session level (not defined by RFC 4585) or on a non-RTP m-line is left alone', () => {
    const session = 'v=0\r\ns=-\r\nt=0 0\r\na=rtcp-fb:* nack\r\nm=video 4000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n';
    assert.equal(expandFeedbackWildcards(session), session);
    const data = 'v=0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=rtcp-fb:* nack\r\n';
    assert.equal(expandFeedbackWildcards(data), data);
  });
});
