/**
 * The conference module: meetings on a Janus videoroom, driven by the softswitch as the focus. For now the
 * foundation only: the Janus WebSocket API client, its videoroom wrappers and the Admin API client.
 */
export * from './janus/index.js';
