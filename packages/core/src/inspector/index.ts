import type { Forwarder } from '../forward';
import type { Logger } from '../logger';
import type { InspectAddress } from '../options';
import { createTap, type RequestTap } from './capture';
import { createInspectorServer, type TunnelView } from './http';
import { createStore, type StoreLimits } from './store';

/**
 * The inspector, on the laptop: what crossed the tunnel (capture.ts into store.ts), shown and
 * replayed on a loopback page (http.ts, view.ts, replay.ts, assets.ts, page-script.ts).
 */

export { noTap, type RequestTap } from './capture';
export type { Captured } from './store';
export type { TunnelView } from './http';

/**
 * Requests kept (500 while a page watches, the last 100 while none does), and bytes for all of
 * them: bodies (64 KiB each at most), headers, summaries.
 */
export const inspectorLimits: Readonly<StoreLimits> = Object.freeze({ maxRecords: 500, idleRecords: 100, maxBytes: 16 * 1024 * 1024 });

export interface InspectorDeps {
  address: InspectAddress;
  /** Replays go through the tunnel's own forwarder: same local app, same Host rules. */
  forwarder: Forwarder;
  log: Logger;
  describe(): TunnelView;
}

export interface Inspector {
  /** What the request handlers report to. */
  readonly tap: RequestTap;
  /** Starts listening; resolves with the URL (its key included), or undefined when it could not. */
  listen(): Promise<string | undefined>;
  readonly url: string | undefined;
  close(): Promise<void>;
}

export function createInspector(deps: InspectorDeps): Inspector {
  const store = createStore(inspectorLimits);
  const server = createInspectorServer({ ...deps, store });
  return {
    tap: createTap(store),
    listen: server.listen,
    get url() {
      return server.url;
    },
    close: server.close,
  };
}
