import { EventEmitter } from 'node:events';
import type { TunnelClient, TunnelInfo } from '../../src/client';
import { TunnelError } from '../../src/errors';
import { reportStatus } from '../../src/plugin-kit';

/** A client whose events the test fires itself: reportStatus only listens. */
function fakeClient(): TunnelClient & { fire(event: string, ...args: unknown[]): void; live?: TunnelInfo } {
  const events = new EventEmitter();
  const client = {
    live: undefined as TunnelInfo | undefined,
    get info() {
      return client.live;
    },
    on: (e: string, l: (...a: unknown[]) => void) => (events.on(e, l), client),
    off: (e: string, l: (...a: unknown[]) => void) => (events.off(e, l), client),
    fire: (e: string, ...a: unknown[]) => events.emit(e, ...a),
  };
  return client as unknown as TunnelClient & { fire(event: string, ...args: unknown[]): void; live?: TunnelInfo };
}

describe('reportStatus', () => {
  const info: TunnelInfo = { port: 9003, url: 'http://t:9003', name: 'ann', id: 'x', target: 'http://127.0.0.1:5173' };
  const unreachable = new TunnelError('TUNNEL_SERVER_UNREACHABLE', 'Cannot reach the tunnel server.');

  test('a first connection after the server was down is `connected`, not `back`; a loss is said once', () => {
    const client = fakeClient();
    const lines: string[] = [];
    reportStatus(client, { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) });
    client.fire('reconnecting', { error: unreachable, delayMs: 100 });
    client.fire('reconnecting', { error: unreachable, delayMs: 200 });
    client.live = info;
    client.fire('registered', { ...info, reconnected: false });
    client.fire('reconnecting', { error: unreachable, delayMs: 100 });
    client.fire('registered', { ...info, reconnected: true });
    expect(lines.map((l) => l.split(':')[0])).toEqual(['not connected yet', 'connected', 'lost', 'back']);
  });

  test("the inspector's address is said once, after the first connection", () => {
    const client = fakeClient();
    const lines: string[] = [];
    reportStatus(client, { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) });
    const inspector = 'http://127.0.0.1:40404/?key=0123';
    client.live = { ...info, inspector };
    client.fire('registered', { ...info, inspector, reconnected: false });
    client.fire('reconnecting', { error: unreachable, delayMs: 100 });
    client.fire('registered', { ...info, inspector, reconnected: true });
    expect(lines.filter((l) => l.includes(inspector))).toEqual([`inspect: ${inspector} (requests live, replay; this machine only)`]);
  });
});
