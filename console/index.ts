/**
 * The web console (issue 18): a softphone page and an admin page in the browser (console/web, bundled by
 * `npm run build` into dist/console/web), the routes that serve them, and the admin routes they read.
 */
export { consoleSite, CONSOLE_DIR, type ConsoleSiteOptions, type WebSocketListener } from './site.js';
export { adminRoutes, registrationEntry, registrationJson, type AdminRouteDeps } from './admin-routes.js';
