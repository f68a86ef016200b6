import { connect } from 'node:net';
import type { ClientContext } from './context';

/** How often a local app that does not answer is tried again, and how long one try may take. */
const RETRY_MS = 2_000;
const CONNECT_MS = 2_000;

export interface LocalWatch {
  /** Tries the local app now (the tunnel went live, or points somewhere new). */
  check(): void;
  stop(): void;
}

/**
 * Whether the local app answers at all: a tunnel that is live in front of a stopped app would
 * give every request 502 `local_app_refused` with nothing said at start. Tried when the tunnel goes
 * live; while the app does not answer, the `local` event says so once, the app is tried again
 * every 2 s, and the event says when it answers. Silent when the app answers from the start.
 */
export function createLocalWatch(ctx: ClientContext): LocalWatch {
  let timer: NodeJS.Timeout | undefined;
  let trying = false;
  /** The app was found not answering, and that was said. */
  let down = false;

  function attempt(): void {
    timer = undefined;
    if (ctx.closed || trying) return;
    trying = true;
    const target = ctx.targetName;
    const socket = connect({ host: ctx.target.host, port: ctx.target.port, timeout: CONNECT_MS });
    const done = (error?: Error & { code?: string }) => {
      socket.destroy();
      trying = false;
      if (ctx.closed) return;
      if (!error) {
        if (down) ctx.emit('local', { answering: true, target });
        down = false;
        return;
      }
      if (!down) ctx.emit('local', { answering: false, target, error: error.code ?? error.message });
      down = true;
      timer = setTimeout(attempt, RETRY_MS);
      timer.unref();
    };
    socket.once('connect', () => done());
    socket.once('timeout', () => done(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })));
    socket.once('error', (error) => done(error));
  }

  return {
    check() {
      clearTimeout(timer);
      attempt();
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
