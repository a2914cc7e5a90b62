import { spawnSync } from 'node:child_process';
import { LoopbackNamespace } from './netns.js';

/**
 * Two network namespaces joined by a veth pair, for media through Janus: Janus ignores loopback when it gathers ICE
 * candidates, so its peers must reach it over an interface that is not `lo`. Janus runs in `server`, the libwebrtc
 * peers (and the test's control clients) in `peers`; each namespace has loopback and its end of the pair, named
 * VETH in both, with one private address (10.231.19.1/30 and .2/30, a range no other test uses), IPv4 only, no
 * route beyond the /30 and no link to the machine's own namespace: no packet can leave the pair.
 *
 * destroy() kills whatever still runs in either namespace and deletes both; deleting a namespace deletes its end of
 * the pair, and the other end with it.
 */
const LINK_UP_TIMEOUT_MS = 3000;

export class JanusNetns {
  /** The interface name of both ends (for Janus's ice_enforce_list). */
  static readonly VETH = 'veth0';
  /** Janus's side of the pair. */
  readonly serverAddress = '10.231.19.1';
  /** The peers' side of the pair. */
  readonly peerAddress = '10.231.19.2';
  private destroyed = false;

  private constructor(readonly server: LoopbackNamespace, readonly peers: LoopbackNamespace) {}

  /** Needs root and iproute2, as LoopbackNamespace does; fails with the reason, never skips. */
  static create(prefix = 'janus'): JanusNetns {
    const server = LoopbackNamespace.create(`${prefix}-srv`);
    let peers: LoopbackNamespace | undefined;
    try {
      peers = LoopbackNamespace.create(`${prefix}-peer`);
      const pair = new JanusNetns(server, peers);
      const veth = JanusNetns.VETH;
      // made inside the namespaces, so the pair never appears in the machine's own namespace
      sh('ip', ['-n', server.name, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', veth, 'netns', peers.name]);
      for (const [ns, address] of [[server, pair.serverAddress], [peers, pair.peerAddress]] as const) {
        // no IPv6 link-local address: the only candidate either side can offer is the /30 address
        sh('ip', ['netns', 'exec', ns.name, 'sh', '-c', `echo 1 > /proc/sys/net/ipv6/conf/${veth}/disable_ipv6`]);
        sh('ip', ['-n', ns.name, 'addr', 'add', `${address}/30`, 'dev', veth]);
        sh('ip', ['-n', ns.name, 'link', 'set', veth, 'up']);
      }
      // the kernel reports carrier changes in batches (linkwatch, up to a second late) and drops what is sent before:
      // a first ICE check lost that way costs a retransmission of seconds, so the pair is handed out once it is up
      const deadline = Date.now() + LINK_UP_TIMEOUT_MS;
      for (const ns of [server, peers]) {
        while (!/\bstate UP\b/.test(sh('ip', ['-n', ns.name, '-o', 'link', 'show', veth]))) {
          if (Date.now() > deadline) throw new Error(`${veth} in ${ns.name} not up after ${LINK_UP_TIMEOUT_MS} ms: ${sh('ip', ['-n', ns.name, '-o', 'link', 'show', veth]).trim()}`);
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        }
      }
      return pair;
    } catch (err) {
      peers?.destroy();
      server.destroy();
      throw err;
    }
  }

  /** The interfaces and IPv4 addresses of a namespace (`lo 127.0.0.1/8`, `veth0 10.231.19.1/30`), for assertions. */
  addresses(ns: LoopbackNamespace): string[] {
    return sh('ip', ['-n', ns.name, '-o', '-4', 'addr', 'show'])
      .trim().split('\n').map((line) => line.split(/\s+/)).map((f) => `${f[1]} ${f[3]}`);
  }

  /** The IPv4 routes of a namespace (`10.231.19.0/30 dev veth0 …`): no default route, nothing beyond the pair. */
  routes(ns: LoopbackNamespace): string[] {
    return sh('ip', ['-n', ns.name, '-4', 'route', 'show', 'table', 'all']).trim().split('\n').filter((line) => line !== '');
  }

  /** The links of a namespace by name (`lo`, `veth0`). */
  links(ns: LoopbackNamespace): string[] {
    return sh('ip', ['-n', ns.name, '-o', 'link', 'show']).trim().split('\n').map((line) => line.split(':')[1]!.trim().split('@')[0]!);
  }

  /** Kills what runs in both namespaces and deletes them (and so the pair). Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.peers.destroy();
    this.server.destroy();
  }
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}
