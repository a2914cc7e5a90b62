/**
 * Multi-core: `softswitch start --workers N` runs N worker processes under a supervising primary
 * (node:cluster). See cluster-worker.ts for how datagrams, transactions and bindings find their worker.
 */
export { runSupervisor, type SupervisorOptions } from './supervisor.js';
export { ClusterWorker, type ClusterWorkerOptions, type ClusterWorkerStats } from './cluster-worker.js';
export { datagramOwner, branchTag, flowOwner, flowTag, flowWorker } from './datagram-owner.js';
export { CLUSTER_SECRET_ENV, WORKER_GENERATION_ENV, WORKER_INDEX_ENV, type DrainingPeer, type PrimaryMessage, type WorkerMessage, type WireBinding } from './types.js';
