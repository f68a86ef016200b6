/** Versions, features, limits, patterns and the control API's paths: what both sides agree on. */

export const PROTOCOL_VERSION = 1;

/**
 * What this client can do beyond the v1 baseline (see {@link RegisterRequest.features}). `encode`:
 * its answers may come encoded for the laptop leg (`ResponseHead.coding`), when the server offers
 * `encode` too and the option `compress` is on. `push`: it may send pushes (answers to requests
 * the browser has not made yet) in its batch uploads and upstreams (docs/protocol.md, "Pushes").
 */
export const CLIENT_FEATURES = Object.freeze(['upgrade', 'batch', 'stream', 'encode', 'push']);

/**
 * What this server can do beyond the v1 baseline, announced in the registration answer. `batch`:
 * a poll answer may carry several messages, and `POST …/responses` takes several small answers.
 * `stream`: `GET …/stream` is a downstream of request frames with no end, and `POST …/stream` an
 * upstream of answer frames with no end (docs/protocol.md, "Streams"). `encode`: an answer may
 * carry a content coding the client applied (`ResponseHead.coding`); the server hands its bytes
 * to browsers that accept it and decodes them for the others (docs/protocol.md, "Encoded answers").
 * `push`: it keeps pushes and answers the browser's next requests from them (docs/protocol.md,
 * "Pushes").
 */
export const SERVER_FEATURES = Object.freeze(['batch', 'stream', 'encode', 'push']);

/** Most messages in one poll answer, and most answers in one batch upload. */
export const MAX_BATCH = 32;
/**
 * Largest answer body that travels whole: the client reads such answers at once and may batch
 * them; the server refuses a larger body in a batch upload before reading it.
 */
export const MAX_WHOLE_BODY = 64 * 1024;
/**
 * Largest push body (feature `push`). A push above {@link MAX_WHOLE_BODY} travels in a batch upload
 * of its own, so that it never holds the upstream's answers back.
 */
export const MAX_PUSH_BODY = 1024 * 1024;
/** Most URLs one head may promise (feature `push`): a module may import thousands (a barrel file). */
export const MAX_PROMISES = 4096;
export const API_PREFIX = '/api/v1';

export const CONTENT_TYPE_FRAME = 'application/vnd.devtunnel.frame';

/** Maximum size of a frame head. Request heads are bounded by the tunnel port's 16 KiB header limit. */
export const MAX_HEAD_BYTES = 256 * 1024;

/**
 * A frame with an empty head (four zero bytes) is a heartbeat: streams send one when they were
 * quiet for `pollTimeoutMs`, so that proxies keep them open and each side knows the other lives.
 */
export const HEARTBEAT: Uint8Array = new Uint8Array(4);

/**
 * How long the client waits for a poll's answer before it gives the poll up: the server's poll
 * timeout plus slack for a slow network (25 s → 35 s). The server's own waits are laddered above it.
 */
export function clientPollDeadlineMs(pollTimeoutMs: number): number {
  return pollTimeoutMs + Math.max(1_000, Math.round(pollTimeoutMs * 0.4));
}

/** Paths of the control API, relative to the server URL. */
export const paths = Object.freeze({
  tunnels: `${API_PREFIX}/tunnels`,
  tunnel: (id: string) => `${API_PREFIX}/tunnels/${encodeURIComponent(id)}`,
  poll: (id: string) => `${API_PREFIX}/tunnels/${encodeURIComponent(id)}/poll`,
  response: (id: string, requestId: string) =>
    `${API_PREFIX}/tunnels/${encodeURIComponent(id)}/requests/${encodeURIComponent(requestId)}`,
  /** Several small answers in one upload (feature `batch`). */
  responses: (id: string) => `${API_PREFIX}/tunnels/${encodeURIComponent(id)}/responses`,
  /** Feature `stream`: GET is the downstream of request frames, POST the upstream of answers. */
  stream: (id: string) => `${API_PREFIX}/tunnels/${encodeURIComponent(id)}/stream`,
  /** After a 101: the browser's bytes, streamed to the client as a response body. */
  upstream: (id: string, requestId: string) =>
    `${API_PREFIX}/tunnels/${encodeURIComponent(id)}/requests/${encodeURIComponent(requestId)}/upstream`,
  /**
   * `devtunnel doctor`'s probe (token): GET streams two timed lines (does a proxy buffer answers?)
   * or, with `?bytes=N`, N bytes (download speed); POST answers at an upload's first bytes (does a
   * proxy buffer uploads?) and again at its end (upload speed).
   */
  doctor: `${API_PREFIX}/doctor`,
});

/** Tunnel names: what a user may choose, safe in URLs, logs, HTML and DNS labels. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Client ids: printable ASCII without spaces, bounded. */
export const CLIENT_ID_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** Request and tunnel ids: 128-bit random, hex. */
export const ID_PATTERN = /^[0-9a-f]{32}$/;
