import type { Socket } from 'node:net';
import { release, type Session } from '../control';
import { createCancel } from '../cancel';
import { isUpgraded } from '../forward';
import { discard } from '../http-call';
import type { Captured, RequestTap } from '../inspector';
import type { RequestMessage } from '../protocol';
import type { ClientContext } from './context';
import { counted, finished } from './request-log';

/**
 * An upgrade (WebSocket): replayed against the local app; a refusal goes back like any response.
 * After a 101 the app's bytes stream up in the response upload and the browser's come down in
 * `GET …/upstream`, until either side closes (docs/protocol.md, "Upgrades").
 */
export type HandleUpgrade = (s: Session, message: RequestMessage) => Promise<void>;

export function createUpgradeHandler(ctx: ClientContext, deps: { topUp(): void }): HandleUpgrade {
  const { control, forwarder } = ctx;
  const { topUp } = deps;

  return async function handleUpgrade(s, message) {
    ctx.active++;
    const t0 = performance.now();
    const abort = createCancel();
    ctx.inFlight.set(message.id, abort);
    const { tap } = ctx;
    const record = tap.start(message, null);
    const result = await forwarder.upgrade(message, abort.signal);
    ctx.inFlight.delete(message.id);
    tap.answered(record, isUpgraded(result) ? { head: result.head, body: null } : result);
    if (!isUpgraded(result)) {
      const counter = { bytes: 0 };
      try {
        tap.sent(record, 'upload');
        await control.respond(s, message.id, result.head, result.body ? counted(result.body, counter, tap, record) : null, false, abort);
        finished(ctx, message, t0, result.head.status, counter.bytes, result.head.error?.code, record);
      } catch {
        if (result.body) discard(result.body);
        finished(ctx, message, t0, 502, counter.bytes, abort.aborted ? 'cancelled' : 'upload_failed', record);
      } finally {
        ctx.active--;
        topUp();
      }
      return;
    }
    // An open upgraded connection holds no poll slot: it may live for hours.
    ctx.active--;
    topUp();
    finished(ctx, message, t0, 101, 0, undefined, record);
    const { socket, head, rest } = result;
    ctx.upgrades.set(message.id, abort);
    const end = () => {
      socket.destroy();
      abort.abort();
      ctx.upgrades.delete(message.id);
      tap.closed(record);
    };
    abort.onAbort(() => socket.destroy());
    socket.on('error', end);
    socket.once('close', end);
    // The app's bytes, up. Ends when the app closes its side; a refusal (410) means the browser left.
    control.respond(s, message.id, head, fromSocket(socket, rest, tap, record), false, abort).then(release, end);
    // The browser's bytes, down. Their end half-closes the local side, as the browser did.
    control.upstream(s, message.id, abort.signal).then((down) => {
      down.on('error', end);
      if (record) down.on('data', (chunk: Uint8Array) => tap.browserChunk(record, chunk));
      down.pipe(socket);
    }, end);
  };
}

/** A local socket's bytes after an upgrade, starting with what came with the 101; the tap sees them too. */
async function* fromSocket(socket: Socket, rest: Buffer, tap: RequestTap, record: Captured | undefined): AsyncIterable<Uint8Array> {
  if (rest.length > 0) {
    tap.chunk(record, rest);
    yield rest;
  }
  for await (const chunk of socket) {
    tap.chunk(record, chunk as Uint8Array);
    yield chunk as Uint8Array;
  }
}
