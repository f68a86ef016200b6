import { styleText } from 'node:util';
import type { RequestEvent, TunnelClient } from '../client';
import { closingFields, createBatchedWriter } from '../protocol';
import { describeRoute } from '../plugin-kit/status';

/**
 * What `devtunnel` prints for a tunnel's events: one line a request and the status lines for a
 * person, or one JSON object a line per event with `--json`. Lines go out together, at most 50 ms
 * after the first one (or at 64 KiB): one write, and one wake-up of the terminal or the program
 * reading us, for many request lines under load.
 */
export interface CliOutput {
  /** The last line, once the tunnel closed; `failed` when it stopped on a final error. */
  closed(failed: boolean): void;
  flush(): void;
}

export interface CliStreams {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether colours are wanted (a terminal, and no NO_COLOR). */
  color: boolean;
}

function time(): string {
  return new Date().toTimeString().slice(0, 8);
}

function statusColor(status: number): Parameters<typeof styleText>[0] {
  return status >= 500 ? 'red' : status >= 400 ? 'yellow' : status >= 300 ? 'cyan' : 'green';
}

export function attachOutput(client: TunnelClient, json: boolean, io: CliStreams): CliOutput {
  const color = (style: Parameters<typeof styleText>[0], text: string) => (io.color ? styleText(style, text) : text);
  const writer = createBatchedWriter(io.stdout);
  const out = (line: string) => writer.write(line + '\n');
  const event = (name: string, fields: object) => out(`{"event":"${name}","time":"${new Date().toISOString()}"${closingFields(fields)}`);

  /** A loss was said since the tunnel was last live: it is said once, not at every retry. */
  let lost = false;
  client.on('registered', (info) => {
    lost = false;
    if (json) event('registered', { ...info });
    else {
      out(`${color('green', '➜')}  ${color('bold', 'Tunnel:')} ${color('cyan', info.url)} → ${info.target}  (${info.name}, port ${info.port}${info.reconnected ? ', back again' : ''})`);
      if (info.route && !info.reconnected) out(`${color('green', '➜')}  ${color('bold', 'Route:')} ${describeRoute(info.route)}`);
      if (info.inspector && !info.reconnected) out(`${color('green', '➜')}  ${color('bold', 'Inspect:')} ${color('cyan', info.inspector)}  (requests live, replay; this machine only)`);
    }
  });
  client.on('request', (r: RequestEvent) => {
    if (json) event('request', r);
    else out(`${color('dim', time())} ${r.method} ${r.path} ${color(statusColor(r.status), String(r.status))}${r.error ? ` ${r.error}` : ''} ${color('dim', `${r.durationMs} ms`)}`);
  });
  client.on('reconnecting', (r) => {
    if (json) return event('reconnecting', { attempt: r.attempt, delayMs: r.delayMs, error: r.error.message, code: r.error.code });
    if (lost) return;
    lost = true;
    io.stderr(`${color('yellow', 'devtunnel:')} ${r.error.message} (retrying quietly; Ctrl+C stops)\n`);
  });
  client.on('local', (l) => {
    if (json) return event('local', l);
    if (l.answering) out(`devtunnel: the local app at ${l.target} answers now.`);
    else io.stderr(`${color('yellow', 'devtunnel:')} the local app at ${l.target} does not answer (${l.error ?? 'no answer'}): requests through the tunnel get 502 local_app_refused until it does. Start it, or check --port / --host.\n`);
  });
  client.on('error', (error) => {
    if (json) event('error', { code: error.code, message: error.message });
    else io.stderr(`${color('red', 'devtunnel:')} ${error.message}\n`);
  });

  return {
    closed(failed) {
      if (json) event('closed', {});
      else if (!failed) out('devtunnel: closed.');
    },
    flush: writer.flush,
  };
}
