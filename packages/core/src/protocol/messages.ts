import type { ContentCoding } from './content-coding';
import type { ErrorCode } from './error-codes';

/**
 * The shapes that travel: the registration's JSON bodies and the heads of frames (poll answers,
 * downstream frames, response uploads). Frames themselves are in `frames.ts`.
 */

/** Header list as `[name, value]` pairs: keeps order, case and repeated headers (Set-Cookie). */
export type HeaderPairs = Array<[string, string]>;

/** Registration request body (`POST /api/v1/tunnels`, `Authorization: Bearer <token>`). */
export interface RegisterRequest {
  /**
   * Stable identity of one developer's tunnel for one local port, e.g. `ann@laptop:5173#k3j…`.
   * The random part stays on the laptop, so nobody else can claim the same identity.
   */
  clientId: string;
  /** Display name; `^[a-z0-9][a-z0-9-]{0,62}$`. */
  name?: string;
  /** The port this identity had last time; honoured when free or already held by it. */
  preferredPort?: number;
  /** The local port being tunnelled (informational). */
  localPort?: number;
  /** Client software version (informational). */
  version?: string;
  /**
   * Optional abilities of the client. `upgrade`: it can carry HTTP/1.1 upgrades (WebSocket). The
   * server sends upgrade requests only to clients that say so, and answers 501 for older ones.
   */
  features?: string[];
  /**
   * Random per client process (`ID_PATTERN`), the same for all its registrations. Tells a client
   * registering again (after a network loss, a server restart) from another process with the same
   * identity (two dev servers of one project): the newer process takes the tunnel over once, and
   * the one it replaced is refused from then on with 409 `tunnel_replaced` (docs/protocol.md,
   * "One identity, two clients").
   */
  instance?: string;
  /**
   * A route of the server (an app of the cluster it stands in for) this tunnel serves: requests
   * on that route that name this tunnel's `name` (cookie `devtunnel`, header `X-Devtunnel`, or the
   * `baggage` member `devtunnel`) come here; the others go to the app's real address.
   */
  route?: string;
}

/** Timing values the client must use; all in milliseconds. */
export interface TunnelTiming {
  /** How long the server holds a poll before answering 204. */
  pollTimeoutMs: number;
  /** No poll for this long and the tunnel counts as offline. */
  leaseMs: number;
  /** Deadline for the local app to answer with headers; the client answers 504 after it. */
  localTimeoutMs: number;
  /** Idle limit on a body in either direction. */
  bodyIdleTimeoutMs: number;
}

/** Registration answer (201). */
export interface RegisterResponse {
  protocol: number;
  id: string;
  /** Per-tunnel secret: `Authorization: Bearer <secret>` on every later call of this tunnel. */
  secret: string;
  name: string;
  /** The tunnel's own port on the server. */
  port: number;
  /** Where the tunnel answers, as far as the server knows (the cluster proxy may front it). */
  url: string;
  timing: TunnelTiming;
  /** Poll concurrency the server accepts per tunnel. */
  maxPolls: number;
  /** Optional abilities of the server (see {@link SERVER_FEATURES}); absent on older servers. */
  features?: string[];
  /** When the registration named a route: how requests select this tunnel there. */
  route?: RouteMembership;
}

/** A tunnel's place on a route, as the registration answer states it. */
export interface RouteMembership {
  /** The route's name. */
  name: string;
  /** The name that selects this tunnel (cookie `devtunnel=<selector>`, header `X-Devtunnel`, baggage). */
  selector: string;
  /** The route's page that turns the selection on in a browser (`…/__devtunnel/?use=<selector>`). */
  link: string;
}

/** Poll answer: one browser request for the client to replay. */
export interface RequestMessage {
  type: 'request';
  id: string;
  method: string;
  /** Path and query as received (origin-form). */
  url: string;
  headers: HeaderPairs;
  /** Body length when known, `null` for a chunked upload; 0 when there is no body. */
  bodyLength: number | null;
  /**
   * An HTTP/1.1 upgrade (WebSocket and others): `headers` keep `Connection: Upgrade` and
   * `Upgrade`; the client performs the upgrade against the local app. After a 101 the app's bytes
   * travel in the response upload, the browser's in `GET …/upstream` (docs/protocol.md).
   */
  upgrade?: true;
  /**
   * How long the request waited on the server, from its arrival to being handed to the client
   * (whole ms): for a poll, for room in the client's window. The inspector shows it as the time
   * spent in the cluster. Absent from older servers.
   */
  waitedMs?: number;
}

/** Poll answer: the browser went away; stop working on this request. */
export interface CancelMessage {
  type: 'cancel';
  id: string;
}

/**
 * On a downstream only (feature `stream`): the server's word on the streams themselves. The first
 * frame of every downstream is one, with a `key`; the client proves it received it (nothing on the
 * way holds frames back) by sending the key in `x-devtunnel-downstream` on a tunnel check, and only
 * then does the server hand requests to that downstream. Another notice follows when bytes of an
 * upstream arrived (`upstream: true`), which proves the same for uploads.
 */
export interface StreamMessage {
  type: 'stream';
  /** Whether the server is reading an upstream of this tunnel now. */
  upstream: boolean;
  /** On a downstream's first notice: what the client sends back to confirm it. */
  key?: string;
}

/** What a poll answer carries. */
export type ServerMessage = RequestMessage | CancelMessage;

/** What a downstream carries (feature `stream`): requests without a body, cancels, stream notices. */
export type DownstreamMessage = ServerMessage | StreamMessage;

/** Head of a response upload (`POST .../requests/:requestId`). */
export interface ResponseHead {
  status: number;
  headers: HeaderPairs;
  /** Body length when the local app declared one; `null` to let the server stream it chunked. */
  bodyLength: number | null;
  /** The request this answers; only in a batch upload, where the path names no request. */
  id?: string;
  /**
   * Feature `encode`: the client encoded the local app's body with this coding for the laptop leg
   * (`headers` say `Content-Encoding` and `Vary` already; `bodyLength` counts the encoded bytes).
   * The server passes the bytes on to a browser that accepts the coding and decodes them for one
   * that does not (docs/protocol.md, "Encoded answers"). Absent: the body is as the local app sent it.
   */
  coding?: ContentCoding;
  /**
   * Set instead of a real response when the client could not get one from the local app. The
   * server renders the error itself, so every error page comes from one place.
   */
  error?: { code: ErrorCode; message: string };
  /**
   * Feature `push`: URLs (origin-form) whose pushes follow, for the same browser identity as this
   * answer (or push). The server holds a browser request for one of them until its push arrives
   * (or a `none` says it will not), instead of sending it to the client.
   */
  promise?: string[];
  /** Feature `push`: this head is not an answer but a push (then `id` is absent). */
  push?: PushInfo;
}

/**
 * A push (feature `push`): an answer to a request the browser has not made yet, which the server
 * keeps for a few seconds and uses once for the browser request it matches (docs/protocol.md,
 * "Pushes"). Also, with `none`, the word that a promised push will not come; with `drop`, that every
 * push of the tunnel is stale (a file changed).
 */
export interface PushInfo {
  /** Path and query (origin-form), exactly as the browser will ask for it. */
  url: string;
  /** {@link pushIdentity} of the request headers, hashed (SHA-256, base64url, first 22 characters). */
  identity: string;
  /** {@link pushVariant} of the headers the push was fetched with. */
  variant: string;
  /**
   * The values (`null`: absent) of the request headers the answer's `Vary` names, as the push was
   * fetched: a browser request is answered from it only when its own values are the same.
   */
  vary: Array<[string, string | null]>;
  /** The client's generation: a push of a generation older than the last `drop` is stale. */
  gen: number;
  /**
   * Validator only: no body; it answers a conditional request whose `If-None-Match` matches its
   * `ETag` with 304, and nothing else.
   */
  validator?: true;
  /**
   * With `validator`: more validators alike (the same identity, variant, vary and headers but the
   * `ETag`), as `[url, etag]`: a reload revalidates hundreds of modules, each a few bytes this way.
   */
  alike?: Array<[string, string]>;
  /** The promised push of `url` will not come: browser requests waiting for it go to the client. */
  none?: true;
  /** Every push and promise of the tunnel is stale: drop them; `gen` is the new generation. */
  drop?: true;
}
