import { release, type PollResult, type Session } from '../control';
import { originOf } from '../forward';
import { createInspector, noTap } from '../inspector';
import { resolveTunnelOptions, type TunnelOptions } from '../options';
import type { ServerMessage } from '../protocol';
import { createConnection } from './connect';
import { createClientContext } from './context';
import { createRequestHandler } from './handle-request';
import { createUpgradeHandler } from './handle-upgrade';
import { createLocalWatch } from './local-watch';
import { createOutbox } from './outbox';
import { createPollPool } from './poll-pool';
import { createSpeculator } from '../speculate';
import { createLinkWiring } from './stream-link';
import type { Tunnel, TunnelClient, TunnelInfo } from './types';

/**
 * One tunnel's life, wired from its parts: the connection (connect.ts) keeps a live session, the
 * poll pool (poll-pool.ts) and the streams (stream-link.ts) bring requests, the handlers
 * (handle-request.ts, handle-upgrade.ts) replay them and answer, small answers leave together
 * (outbox.ts). What they share is the context (context.ts); this root adds status, events,
 * retarget and close.
 */

export type { LocalEvent, RequestEvent, Tunnel, TunnelClient, TunnelEvents, TunnelInfo } from './types';

/**
 * Creates an unstarted tunnel client. Use it when you want events from the very first attempt
 * (the CLI, the plugins); {@link openTunnel} is the one-call form.
 */
export function createTunnelClient(options: TunnelOptions): TunnelClient {
  const ctx = createClientContext(resolveTunnelOptions(options));
  const { log, control, forwarder, emitter } = ctx;
  let started: Promise<TunnelInfo> | undefined;
  let closing: Promise<void> | undefined;

  // The parts call one another in a loop (a poll answer starts requests, whose answers top the
  // polls up, which bring more requests). A part reaches one made after it through an arrow bound
  // here; none of those is on a request's way.
  const connection = createConnection(ctx, { topUp: () => pool.topUp(), linkDown: () => links.down(), close });
  const links = createLinkWiring(ctx, { dispatch, topUp: () => pool.topUp(), resend: (s, answers) => outbox.resend(s, answers) });
  const pool = createPollPool(ctx, { dispatch, linkUp: links.up, fail: connection.fail, channelFailed: connection.channelFailed });
  const outbox = createOutbox(ctx, { dispatch, topUp: pool.topUp, pollTarget: pool.pollTarget, uploadFailed: connection.uploadFailed });
  const handleUpgrade = createUpgradeHandler(ctx, { topUp: pool.topUp });
  const local = createLocalWatch(ctx);
  if (ctx.o.speculate) ctx.speculator = createSpeculator(ctx, { send: outbox.send });
  const handle = createRequestHandler(ctx, { send: outbox.send, dispatch, topUp: pool.topUp, pollTarget: pool.pollTarget, uploadFailed: connection.uploadFailed });
  const inspector = ctx.o.inspect
    ? createInspector({ address: ctx.o.inspect, forwarder, log, describe: () => ({ url: ctx.info?.url, target: ctx.targetName, status: ctx.status }) })
    : undefined;
  if (inspector) ctx.tap = inspector.tap;

  /** Work from a poll, an upload that acted as one, or the downstream: cancels and requests. */
  function dispatch(s: Session, result: NonNullable<PollResult>): void {
    pool.busy();
    const { messages, body } = result;
    const last = messages[messages.length - 1]!;
    const bodyOwner = last.type === 'request' && last.bodyLength !== 0 ? last : undefined;
    // No body follows: let the (ended) stream go so its connection returns to the pool.
    if (!bodyOwner) release(result);
    for (const message of messages) {
      if (message.type === 'cancel') {
        ctx.inFlight.get(message.id)?.abort();
        continue;
      }
      const b = message === bodyOwner ? body : null;
      if (message.upgrade) void handleUpgrade(s, message);
      else void handle(s, message, b);
    }
  }

  async function close(): Promise<void> {
    if (closing) return closing;
    ctx.closed = true;
    ctx.status = 'closed';
    connection.stop();
    local.stop();
    links.down();
    closing = (async () => {
      for (const abort of ctx.inFlight.values()) abort.abort();
      for (const abort of ctx.upgrades.values()) abort.abort();
      const s = ctx.session;
      if (s) {
        try {
          await control.deregister(s);
        } catch (error) {
          // The server expires tunnels whose polls stopped; a failed goodbye loses nothing.
          log.debug(`devtunnel: deregistration failed: ${(error as Error).message}`);
        }
      }
      // The inspector first: its replays use the forwarder.
      await inspector?.close();
      await Promise.allSettled([control.close(), forwarder.close()]);
      ctx.emit('closed');
    })();
    return closing;
  }

  const client: TunnelClient = {
    start() {
      started ??= (async () => {
        // Before registering, so that `registered` (the CLI's line, the plugins' banner) names it.
        ctx.inspector = await inspector?.listen();
        // No page to show them on: nothing is kept.
        if (!ctx.inspector) ctx.tap = noTap;
        try {
          await connection.connect();
        } catch (error) {
          // A final error at the first attempt (a bad token) is reported like one later: the
          // `error` event, which is all a dev-server plugin listens to (it never awaits start()).
          connection.fail(error);
          await close();
          throw error;
        }
        pool.topUp();
        local.check();
        return ctx.info!;
      })();
      return started;
    },
    get info() {
      return ctx.info;
    },
    get status() {
      return ctx.status;
    },
    get inspector() {
      return ctx.inspector;
    },
    on(event, listener) {
      emitter.on(event, listener as (...args: unknown[]) => void);
      return client;
    },
    off(event, listener) {
      emitter.off(event, listener as (...args: unknown[]) => void);
      return client;
    },
    once(event, listener) {
      emitter.once(event, listener as (...args: unknown[]) => void);
      return client;
    },
    dropPushes() {
      ctx.speculator?.invalidate();
    },
    retarget(next) {
      forwarder.retarget(next);
      ctx.targetName = originOf(ctx.target);
      if (ctx.info) ctx.info = { ...ctx.info, target: ctx.targetName };
      log.info(`devtunnel: now forwarding to ${ctx.targetName}`);
      if (ctx.info) local.check();
    },
    close,
  };
  return client;
}

/**
 * Registers a tunnel and starts serving. Resolves with the assigned port and URL once registered;
 * rejects on a final error (bad token, refused registration). Network failures are retried.
 *
 * @example
 * const tunnel = await openTunnel({ server: 'https://devtunnel.test.example.com', token, port: 5173 })
 * console.log(tunnel.url)
 * await tunnel.close()
 */
export async function openTunnel(options: TunnelOptions): Promise<Tunnel> {
  const client = createTunnelClient(options);
  await client.start();
  return Object.defineProperties(client, {
    port: { get: () => client.info!.port, enumerable: true },
    url: { get: () => client.info!.url, enumerable: true },
    name: { get: () => client.info!.name, enumerable: true },
    id: { get: () => client.info!.id, enumerable: true },
    target: { get: () => client.info!.target, enumerable: true },
  }) as Tunnel;
}

export type { ServerMessage };
