import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log/index.js';
import {
  NonInviteServerTransaction, TransactionState, TransactionStateError, realTimers,
} from '../../../src/transaction/index.js';
import type { TransactionContext } from '../../../src/transaction/types.js';
import { FakeTransport } from '../../helpers/fake-transport.js';
import { flow, makeRequest } from './fixtures.js';

/** Exposes the protected transition() of a real machine. */
class Probe extends NonInviteServerTransaction {
  force(to: TransactionState): void {
    this.transition(to);
  }
}

function probe(): Probe {
  const ctx: TransactionContext = {
    transport: new FakeTransport(),
    timers: realTimers,
    config: { T1: 500, T2: 4000, T4: 5000 },
    logger: silentLogger(),
    owner: { transactionTerminated() {} },
  };
  return new Probe(makeRequest('OPTIONS'), 'key', flow(), ctx);
}

describe('TransactionState and transition()', () => {
  it('states are strings, so logs read well', () => {
    assert.equal(TransactionState.Proceeding, 'Proceeding');
    assert.equal(TransactionState.Accepted, 'Accepted');
  });

  it('a move the state machine does not have throws TransactionStateError (TRANSACTION_ERR_STATE)', () => {
    const tx = probe();
    assert.throws(
      () => tx.force(TransactionState.Confirmed),
      (e: unknown) => e instanceof TransactionStateError && e.code === 'TRANSACTION_ERR_STATE' && e.from === 'Trying' && e.to === 'Confirmed',
    );
    assert.throws(() => tx.force(TransactionState.Trying), TransactionStateError, 'no self-transition');
    tx.force(TransactionState.Proceeding);
    assert.throws(() => tx.force(TransactionState.Trying), TransactionStateError, 'no way back');
    tx.force(TransactionState.Completed);
    tx.force(TransactionState.Terminated);
    assert.throws(() => tx.force(TransactionState.Completed), TransactionStateError, 'nothing leaves Terminated');
    assert.equal(tx.state, TransactionState.Terminated);
  });
});
