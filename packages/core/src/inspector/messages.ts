import { StringDecoder } from 'node:string_decoder';

/**
 * An event stream's or a WebSocket's exchange, summarised as its bytes pass: how many messages,
 * how large, and the last few, each cut to a preview. Bounded whatever the stream's length; the
 * bytes themselves are never kept beyond a preview.
 */

/** Messages kept per exchange, and bytes (or characters) of each one's preview. */
export const LAST_MESSAGES = 10;
export const PREVIEW_BYTES = 256;

export interface Message {
  /** Who sent it: the local app (event streams only have that side) or the browser. */
  from: 'app' | 'browser';
  /** ms since the request arrived. */
  at: number;
  /** Bytes of the message (a WebSocket message's payload, an event's lines). */
  size: number;
  kind: 'event' | 'text' | 'binary' | 'close';
  /** The start of it: text as it is, binary as hex. */
  preview: string;
  /** A WebSocket message compressed by permessage-deflate: the preview is not readable. */
  compressed?: boolean;
}

export interface MessageLog {
  kind: 'event-stream' | 'websocket';
  /** Messages seen (events, or WebSocket data messages and closes), both ways. */
  count: number;
  /** Their bytes. */
  bytes: number;
  /** Comments of an event stream (keep-alives) and WebSocket pings and pongs: counted, not shown. */
  control: number;
  /** The last {@link LAST_MESSAGES}, oldest first. */
  last: Message[];
}

export function messageLog(kind: MessageLog['kind']): MessageLog {
  return { kind, count: 0, bytes: 0, control: 0, last: [] };
}

function push(log: MessageLog, message: Message): void {
  log.count++;
  log.bytes += message.size;
  if (log.last.length === LAST_MESSAGES) log.last.shift();
  log.last.push(message);
}

/**
 * Reads a `text/event-stream` body (HTML Living Standard §9.2.6): an event ends at a blank line;
 * a block of comment lines only (`: keep-alive`) is a control message. `since()` gives ms since
 * the request arrived.
 */
export function eventStreamReader(log: MessageLog, since: () => number): (chunk: Uint8Array) => void {
  const decoder = new StringDecoder('utf8');
  let text = '';
  let size = 0;
  /** The event has a line other than a comment. */
  let data = false;
  let lineStart = true;
  /** A CR ended the last chunk: an LF that starts the next one belongs to it. */
  let cr = false;

  function line(segment: string, ended: boolean): void {
    if (lineStart && !segment.startsWith(':') && segment.length > 0) data = true;
    if (text.length < PREVIEW_BYTES) text += (segment + (ended ? '\n' : '')).slice(0, PREVIEW_BYTES - text.length);
    size += Buffer.byteLength(segment) + (ended ? 1 : 0);
    lineStart = ended;
  }

  function dispatch(): void {
    if (size === 0) return;
    if (data) push(log, { from: 'app', at: since(), size, kind: 'event', preview: text.replace(/\n$/, '') });
    else log.control++;
    text = '';
    size = 0;
    data = false;
  }

  return (chunk) => {
    let s = decoder.write(chunk as Buffer);
    if (cr && s.startsWith('\n')) s = s.slice(1);
    cr = s.endsWith('\r');
    s = s.replace(/\r\n?/g, '\n');
    let i = 0;
    while (i < s.length) {
      const nl = s.indexOf('\n', i);
      if (nl < 0) {
        line(s.slice(i), false);
        break;
      }
      const segment = s.slice(i, nl);
      if (lineStart && segment.length === 0) dispatch();
      else line(segment, true);
      i = nl + 1;
    }
  };
}

/** Bytes of a WebSocket frame's header once its second byte is known (RFC 6455 §5.2). */
function headerLength(head: Uint8Array, have: number): number {
  if (have < 2) return 2;
  const len7 = head[1]! & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (head[1]! & 0x80 ? 4 : 0);
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex').replace(/(..)(?!$)/g, '$1 ');

/**
 * Reads one direction of a WebSocket connection (RFC 6455 §5.2): frames with their masks,
 * fragmented messages joined, control frames in between. Keeps a message's first
 * {@link PREVIEW_BYTES}, unmasked. `from` says which side sends these bytes.
 */
export function webSocketReader(log: MessageLog, from: Message['from'], since: () => number): (chunk: Uint8Array) => void {
  const head = new Uint8Array(14);
  let have = 0;
  /** Payload bytes of the current frame still to come, and how many of it passed. */
  let remaining = 0;
  let offset = 0;
  let inPayload = false;
  let mask: Uint8Array | undefined;
  let opcode = 0;
  let fin = false;
  /** The data message being received (it may span several frames), or a control frame's. */
  let message: { kind: 'text' | 'binary' | 'close'; size: number; preview: number[]; compressed: boolean } | undefined;
  let dataMessage: typeof message;

  function startFrame(): void {
    fin = (head[0]! & 0x80) !== 0;
    opcode = head[0]! & 0x0f;
    const len7 = head[1]! & 0x7f;
    let at = 2;
    if (len7 === 126) {
      remaining = (head[2]! << 8) | head[3]!;
      at = 4;
    } else if (len7 === 127) {
      remaining = Number(Buffer.from(head.subarray(2, 10)).readBigUInt64BE());
      at = 10;
    } else remaining = len7;
    mask = head[1]! & 0x80 ? head.slice(at, at + 4) : undefined;
    offset = 0;
    if (opcode === 1 || opcode === 2) {
      dataMessage = { kind: opcode === 1 ? 'text' : 'binary', size: 0, preview: [], compressed: (head[0]! & 0x40) !== 0 };
      message = dataMessage;
    } else if (opcode === 0) {
      message = dataMessage;
    } else {
      message = opcode === 8 ? { kind: 'close', size: 0, preview: [], compressed: false } : undefined;
      if (opcode !== 8) log.control++;
    }
  }

  function endFrame(): void {
    inPayload = false;
    const done = message && (message.kind === 'close' || fin);
    if (!done) return;
    const m = message!;
    let preview: string;
    if (m.kind === 'binary' || m.compressed) preview = hex(Uint8Array.from(m.preview.slice(0, 32)));
    else if (m.kind === 'close') {
      const bytes = Buffer.from(m.preview);
      preview = bytes.length >= 2 ? `${bytes.readUInt16BE(0)}${bytes.length > 2 ? ` ${bytes.subarray(2).toString('utf8')}` : ''}` : '';
    } else preview = Buffer.from(m.preview).toString('utf8');
    push(log, { from, at: since(), size: m.size, kind: m.kind, preview, ...(m.compressed ? { compressed: true } : {}) });
    if (m === dataMessage) dataMessage = undefined;
    message = undefined;
  }

  return (chunk) => {
    let i = 0;
    while (i < chunk.length) {
      if (!inPayload) {
        head[have++] = chunk[i++]!;
        if (have < headerLength(head, have)) continue;
        have = 0;
        startFrame();
        inPayload = true;
        if (remaining === 0) endFrame();
        continue;
      }
      const n = Math.min(remaining, chunk.length - i);
      if (message) {
        message.size += n;
        for (let k = 0; k < n && message.preview.length < PREVIEW_BYTES; k++) {
          const b = chunk[i + k]!;
          message.preview.push(mask ? b ^ mask[(offset + k) & 3]! : b);
        }
      }
      offset += n;
      remaining -= n;
      i += n;
      if (remaining === 0) endFrame();
    }
  };
}
