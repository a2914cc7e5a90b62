import type { BackendChoice, BalancerApi } from '../balancer/types.js';
import type { BackendPicker, BackendTarget } from '../registrar/mid/types.js';

/**
 * The mid-registrar's picker over the load balancer's API: the AoR is the sticky key, and failures and
 * successes go back to the balancer's passive health checks. Depends on the interface only. It lives in the
 * shell (server/) so that the mid-registrar knows only its own BackendPicker and never imports the balancer.
 */
export function pickerFromBalancer(balancer: Pick<BalancerApi, 'candidates' | 'markFailure' | 'markSuccess'>, set: string): BackendPicker {
  return {
    candidates: (aor: string): readonly BackendTarget[] => balancer.candidates(set, aor),
    // The objects handed back are the ones candidates() returned: the balancer's own choices.
    markFailure: (backend: BackendTarget, reason: string): void => balancer.markFailure(backend as BackendChoice, reason),
    markSuccess: (backend: BackendTarget): void => balancer.markSuccess(backend as BackendChoice),
  };
}
