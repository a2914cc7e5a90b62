import { type SipRequest, type SipResponse, parseMessage } from '../../src/sip/index.js';
import {
  type Destination, type Flow, type ListenSpec, type TransportProtocol, type TransportSender, TransportError,
} from '../../src/transport/types.js';

export interface SentMessage {
  data: Buffer;
  message: SipRequest | SipResponse;
  destination: Destination;
}

/**
 * An in-memory TransportSender: records every send with its parsed message, resolves with a flow named
 * after the destination, and fails the next send(s) when told to.
 */
export class FakeTransport implements TransportSender {
  readonly sent: SentMessage[] = [];
  private failures: Error[] = [];

  /** The next send rejects with this error (a TransportError by default). */
  failNextSend(error: Error = new TransportError('TRANSPORT_ERR_SEND', 'fake send failure')): void {
    this.failures.push(error);
  }

  send(data: Buffer, destination: Destination): Promise<Flow> {
    this.sent.push({ data, message: parseMessage(data), destination });
    const failure = this.failures.shift();
    if (failure !== undefined) return Promise.reject(failure);
    return Promise.resolve(FakeTransport.flowTo(destination));
  }

  listenerFor(protocol: TransportProtocol): ListenSpec | undefined {
    return { protocol, address: '192.0.2.1', port: protocol === 'tls' ? 5061 : 5060 };
  }

  /** The flow a send to this destination is reported on. */
  static flowTo(destination: Destination): Flow {
    return {
      id: destination.flowId ?? `${destination.protocol}:${destination.address}:${destination.port}`,
      protocol: destination.protocol,
      local: { address: '192.0.2.1', port: 5060 },
      remote: { address: destination.address, port: destination.port },
    };
  }

  get requests(): SipRequest[] {
    return this.sent.map((s) => s.message).filter((m): m is SipRequest => m.isRequest);
  }

  get responses(): SipResponse[] {
    return this.sent.map((s) => s.message).filter((m): m is SipResponse => !m.isRequest);
  }

  /** Methods of the requests sent, or statuses of the responses, in order: ['INVITE', 'INVITE', 'ACK'] / [100, 180]. */
  get log(): Array<string | number> {
    return this.sent.map((s) => (s.message.isRequest ? (s.message as SipRequest).method : (s.message as SipResponse).status));
  }

  clear(): void {
    this.sent.length = 0;
  }
}
