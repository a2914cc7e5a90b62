/**
 * Synthetic media for libwebrtc peers (`@roamhq/wrtc`): a microphone playing a tone and a camera whose picture changes
 * every frame, shared by the Janus media runner (test/e2e) and the meetings bench. Each source registers how to stop
 * it in `cleanups`, which the caller runs when it is done.
 */
import type { Wrtc, WrtcTrack } from './wrtc.js';

/** A 440 Hz tone in 10 ms frames of 48 kHz mono, sent by the clock (a late timer catches up). */
export function microphone(wrtc: Wrtc, cleanups: Array<() => unknown>): WrtcTrack {
  const source = new wrtc.nonstandard.RTCAudioSource();
  const track = source.createTrack();
  const rate = 48_000;
  const frame = rate / 100;
  const started = Date.now();
  let n = 0;
  const timer = setInterval(() => {
    const due = Math.floor((Date.now() - started) / 10);
    for (let sent = 0; n < due && sent < 10; sent++, n++) {
      const samples = new Int16Array(frame);
      for (let i = 0; i < frame; i++) samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (n * frame + i)) / rate));
      source.onData({ samples, sampleRate: rate, bitsPerSample: 16, channelCount: 1, numberOfFrames: frame });
    }
  }, 10);
  cleanups.push(() => {
    clearInterval(timer);
    track.stop();
  });
  return track;
}

/**
 * I420 frames with a bright bar that moves every frame over a fixed pattern: each frame differs from the last, so
 * the encoder sends real deltas. Only the bar's old and new columns are rewritten (the source copies each frame).
 */
export function camera(wrtc: Wrtc, cleanups: Array<() => unknown>, width: number, height: number, fps: number): WrtcTrack {
  const source = new wrtc.nonstandard.RTCVideoSource();
  const track = source.createTrack();
  const data = new Uint8ClampedArray(width * height * 1.5);
  const base = (x: number, y: number): number => 16 + ((x + y) & 63);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = base(x, y);
  data.fill(128, width * height);
  const barWidth = 16;
  let bar = 0;
  const columns = (from: number, paint: boolean): void => {
    for (let y = 0; y < height; y++) {
      for (let x = from; x < Math.min(width, from + barWidth); x++) data[y * width + x] = paint ? 235 : base(x, y);
    }
  };
  const timer = setInterval(() => {
    columns(bar, false);
    bar = (bar + 8) % width;
    columns(bar, true);
    source.onFrame({ width, height, data });
  }, 1000 / fps);
  cleanups.push(() => {
    clearInterval(timer);
    track.stop();
  });
  return track;
}
