import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestMessage } from '@devtunnel/core/protocol';
import type { Timer } from './clock';
import type { HttpError } from './errors';

/**
 * The domain types that several parts of the server share: one browser request on its way
 * through a tunnel, and the browser side of an upgrade. Types only, so that the files that use
 * them (the session, the answer uploads, the error responses, the listener) import no each other.
 */

/**
 * The browser side of an upgrade request (WebSocket…): Node hands over the raw socket, so answers
 * are written by hand (upgrade.ts). Lives from the request until the upgraded connection closes.
 */
export interface UpgradeState {
  readonly socket: Socket;
  /** Bytes that followed the request head in the same packet: the start of the browser's stream. */
  readonly head: Buffer;
  /** Status written to the browser, once one was. */
  status: number | undefined;
  /** The client's `GET …/upstream`, which carries the browser's bytes after the 101. */
  upstream: { req: IncomingMessage; res: ServerResponse } | undefined;
  /** Called when the upstream request arrives (set while the 101 is being set up). */
  onUpstream: (() => void) | undefined;
  /** Run once by `close()`. */
  readonly onClose: Array<() => void>;
  /** Answers the browser with an error and closes the connection. */
  fail(error: HttpError): void;
  /** Tears the whole upgraded connection down (browser socket, upload, upstream). Idempotent. */
  close(): void;
}

/** One browser request on its way through the tunnel. */
export interface Exchange {
  /** Dispatch id: 128-bit random, single-use, valid for this tunnel only. */
  readonly id: string;
  /** `X-Request-Id` seen by the local app and the logs. */
  readonly requestId: string;
  readonly req: IncomingMessage;
  /** The browser's response; absent for an upgrade request (see `upgrade`). */
  readonly res: ServerResponse | undefined;
  readonly upgrade: UpgradeState | undefined;
  readonly message: RequestMessage;
  /** `upgraded`: a 101 went out and bytes flow both ways until either side closes. */
  state: ExchangeState;
  readonly arrivedAt: number;
  dispatchedAt: number | undefined;
  respondedAt: number | undefined;
  /** Its wait for a poll, or its deadline: one timer at a time. */
  timer: Timer | undefined;
  /** The client's response upload, while the response streams. */
  upload: IncomingMessage | undefined;
  /** The downstream that carried it to the client, if one did. */
  via: ServerResponse | undefined;
  /** Error code when the tunnel answered with an error. */
  code: string | undefined;
  bytesIn: number;
  bytesOut: number;
  /** On a route: the route's name, and who serves it (`tunnel ann`), said in `X-Devtunnel-Served-By`. */
  route?: string;
  servedBy?: string;
  /** Answered from a push of its client (docs/speculation.md), without a trip to the laptop. */
  pushed?: boolean;
}

export type ExchangeState = 'queued' | 'dispatched' | 'responding' | 'upgraded' | 'done';
