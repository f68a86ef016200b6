import { randomBytes } from 'node:crypto';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { Readable } from 'node:stream';
import { createCancel } from '../cancel';
import type { BatchItem, Session } from '../control';
import type { LocalResponse } from '../forward';
import { discard } from '../http-call';
import { headerValue, joinedValue, MAX_PUSH_BODY, MAX_WHOLE_BODY, pushVariant, type HeaderPairs, type PushInfo, type RequestMessage, type ResponseHead } from '../protocol';
import type { ClientContext } from '../client/context';
import { createSpeculationMemory, type SpeculationMemory } from './memory';
import { createValidatorBatch } from './validators';
import { bypassesCaches, identityHash, isImmutable, notPushable, pushRequestHeaders, varyNames } from './rules';
import { isStylesheet, references as scanReferences, scannable, type Reference } from './scan';

/**
 * A push's local request id: 32 hex digits as the server's ids, a random prefix per process and a
 * counter (a CPU profile of a page load put `randomBytes` per push at 2-3 % of the client's time).
 */
const PUSH_ID_PREFIX = randomBytes(8).toString('hex');
let pushSeq = 0;
const nextPushId = () => PUSH_ID_PREFIX + (++pushSeq).toString(16).padStart(16, '0');

/** Bytes decoded beyond this are not scanned (a body that grows past it is no dev-server module). */
const MAX_SCANNED = 8 * 1024 * 1024;

/**
 * What an answer names, read from its bytes as the app sent them (`plain`, which the forwarder
 * keeps beside a whole answer it encoded). Only an encoded stream read whole for a push (larger
 * than a whole answer) is decoded for the scan; one that does not decode names nothing (the server
 * cuts it anyway).
 */
function references(kind: 'html' | 'js', response: LocalResponse, bytes: Uint8Array, base: string): Reference[] {
  const coding = response.head.coding;
  if (coding === undefined) return scanReferences(kind, bytes, base);
  if (response.plain) return scanReferences(kind, response.plain, base);
  try {
    const plain = coding === 'br' ? brotliDecompressSync(bytes, { maxOutputLength: MAX_SCANNED }) : gunzipSync(bytes, { maxOutputLength: MAX_SCANNED });
    return scanReferences(kind, plain, base);
  } catch {
    return [];
  }
}

/**
 * Speculative delivery (feature `push`, docs/speculation.md): after a GET answered with a page or a
 * module, the client fetches what it names from the local app at once and sends each answer up as
 * a push, before the browser asks; the server answers the browser's next requests from them. The
 * URLs are promised in the head of the answer that names them, so the server holds a browser
 * request for one until its push arrives instead of sending it down. Pushes recurse through the
 * module graph of one page load, bounded per root request; a few run at once, fewer while the
 * browser's own requests are being handled.
 */
export interface Speculator {
  /**
   * A GET the local app answered (the browser's own request): remembered, and what it names
   * planned. Returns the URLs to promise in its head, or undefined.
   */
  answered(s: Session, message: RequestMessage, response: LocalResponse): string[] | undefined;
  /** Every push is stale (a file changed): the server drops them all, queued ones are forgotten. */
  invalidate(): void;
  /** Pushes sent so far, for tests and the debug log. */
  readonly stats: SpeculationStats;
}

export interface SpeculationStats {
  pushes: number;
  validators: number;
  bytes: number;
  none: number;
  invalidations: number;
}

export interface SpeculatorDeps {
  /** Adds a whole answer (here: a push) to this turn's batch (outbox.ts). */
  send(s: Session, item: BatchItem): void;
}

/**
 * Local fetches for pushes at once; while the browser's own requests are handled, fewer. A browser
 * behind an HTTP/2 gateway asks for 64 or more at once, and waits for these.
 */
const CONCURRENCY = 32;
const CONCURRENCY_BUSY = 8;
/** Bounds of one page load's pushes (everything reached from one browser request). */
const PUSHES_PER_ROOT = 5_000;
const BYTES_PER_ROOT = 32 * 1024 * 1024;
/** A URL pushed (or answered) for an identity is not pushed again for this long (the server's default lifetime). */
const RECENT_MS = 15_000;
/** The URLs one head promises, in characters at most. */
const PROMISE_CHARS = 128 * 1024;
const RECENT_MAX = 20_000;

/** Headers a validator keeps: those a 304 carries. */
const VALIDATOR_HEADERS = new Set(['etag', 'cache-control', 'vary', 'expires', 'content-location']);
/** Headers a push leaves out: the server strips the first ones and sets its own `Date`. */
const UNSENT = new Set(['connection', 'keep-alive', 'content-length', 'transfer-encoding', 'date']);

interface Root {
  readonly s: Session;
  readonly identity: string;
  /** The browser's request that started it: push requests copy its identity headers. */
  readonly parent: HeaderPairs;
  readonly gen: number;
  count: number;
  bytes: number;
}

interface Job {
  root: Root;
  ref: Reference;
  /** The ETag this identity was given last time: asked with If-None-Match, a 304 becomes a validator push. */
  etag: string | undefined;
}

export function createSpeculator(ctx: ClientContext, deps: SpeculatorDeps, now: () => number = Date.now): Speculator {
  const memory: SpeculationMemory = createSpeculationMemory();
  /**
   * identity + URL → when it was promised, pushed or answered in this page load (this generation,
   * this session): one page load pushes a module once, however many import it.
   */
  const recent = new Map<string, number>();
  let recentSession: Session | undefined;
  const queue: Job[] = [];
  let next = 0;
  let running = 0;
  let gen = 0;
  const stats: SpeculationStats = { pushes: 0, validators: 0, bytes: 0, none: 0, invalidations: 0 };

  const enabled = (s: Session) => ctx.o.speculate && s.features?.includes('push') === true && s.features.includes('batch');

  function isRecent(key: string): boolean {
    const t = recent.get(key);
    if (t === undefined) return false;
    if (now() - t < RECENT_MS) return true;
    recent.delete(key);
    return false;
  }

  function forgetRecent(identity: string): void {
    const prefix = `${identity}\0`;
    for (const key of recent.keys()) if (key.startsWith(prefix)) recent.delete(key);
  }

  function markRecent(key: string): void {
    recent.delete(key);
    recent.set(key, now());
    if (recent.size > RECENT_MAX) recent.delete(recent.keys().next().value as string);
  }

  /** Queues pushes for `refs`; returns the URLs to promise. */
  function plan(root: Root, refs: readonly Reference[] | undefined): string[] | undefined {
    if (!refs || refs.length === 0 || root.gen !== gen) return undefined;
    const promise: string[] = [];
    let chars = 0;
    for (const ref of refs) {
      // A head stays far below MAX_HEAD_BYTES (256 KiB), whatever the URLs.
      if (root.count >= PUSHES_PER_ROOT || (chars += ref.url.length + 3) > PROMISE_CHARS) break;
      const key = `${root.identity}\0${ref.url}`;
      if (isRecent(key)) continue;
      const known = memory.delivered(root.identity, ref.url);
      // The browser keeps it without asking: it will not request it again.
      if (known?.immutable) continue;
      markRecent(key);
      root.count++;
      promise.push(ref.url);
      queue.push({ root, ref, etag: known?.etag });
    }
    if (promise.length === 0) return undefined;
    setImmediate(pump);
    return promise;
  }

  function pump(): void {
    const limit = ctx.active > 0 ? CONCURRENCY_BUSY : CONCURRENCY;
    while (running < limit && next < queue.length) {
      const job = queue[next++]!;
      running++;
      void run(job).finally(() => {
        running--;
        pump();
      });
    }
    if (next === queue.length) {
      queue.length = 0;
      next = 0;
    }
  }

  function emit(s: Session, head: ResponseHead, bytes: Uint8Array | undefined): void {
    if (ctx.closed || ctx.session !== s) return;
    if (!bytes || bytes.length <= MAX_WHOLE_BODY) return deps.send(s, { head, bytes });
    // A large push takes an upload of its own: it never holds back the answers on the upstream.
    ctx.control.respondBatch(s, [{ head, bytes }], false).catch((error: unknown) => ctx.log.debug(`devtunnel: a push upload failed: ${(error as Error).message}`));
  }
  const validators = createValidatorBatch(emit);

  function none(root: Root, info: PushInfo): void {
    stats.none++;
    emit(root.s, { status: 200, headers: [], bodyLength: 0, push: { ...info, none: true } }, undefined);
  }

  async function run(job: Job): Promise<void> {
    const { root, ref } = job;
    if (root.gen !== gen || ctx.closed || ctx.session !== root.s) return;
    const headers = pushRequestHeaders(root.parent, ref.as);
    if (job.etag) headers.push(['if-none-match', job.etag]);
    const info: PushInfo = { url: ref.url, identity: root.identity, variant: pushVariant(headers), vary: [], gen: root.gen };
    const message: RequestMessage = { type: 'request', id: nextPushId(), method: 'GET', url: ref.url, headers, bodyLength: 0 };
    let response: LocalResponse;
    let bytes: Uint8Array | undefined;
    try {
      response = await ctx.forwarder.forward(message, null, createCancel());
      bytes = await whole(response);
    } catch {
      return none(root, info);
    }
    // A file changed meanwhile: what was fetched may be stale, and the server dropped the promise.
    if (root.gen !== gen) return;
    const head = response.head;
    const known = memory.delivered(root.identity, ref.url);

    if (head.status === 304 && job.etag) {
      // Unchanged since this browser was given it: a validator, which answers its conditional request.
      const names = varyNames(head.headers) ?? [];
      const vary = [...new Set([...names, ...(known?.vary ?? [])])];
      info.vary = vary.map((n) => [n, joinedValue(headers, n)]);
      info.validator = true;
      // What a 304 carries (RFC 9110 §15.4.5): the rest would cross the link for nothing.
      const kept: HeaderPairs = head.headers.filter(([n]) => VALIDATOR_HEADERS.has(n.toLowerCase()));
      if (headerValue(kept, 'etag') === undefined) kept.push(['etag', job.etag]);
      const promise = plan(root, memory.references(ref.url, job.etag));
      stats.validators++;
      return validators.add(root.s, info, kept, job.etag, promise);
    }

    const why = head.error ? head.error.code : notPushable(head.status, head.headers, bytes === undefined ? MAX_PUSH_BODY + 1 : bytes.length);
    if (why !== undefined || bytes === undefined || root.bytes + bytes.length > BYTES_PER_ROOT) return none(root, info);
    root.bytes += bytes.length;
    const names = varyNames(head.headers)!;
    info.vary = names.map((n) => [n, joinedValue(headers, n)]);
    const etag = headerValue(head.headers, 'etag')?.trim();
    memory.deliver(root.identity, ref.url, { etag, immutable: isImmutable(head.headers), vary: names });
    const kind = scannable(headerValue(head.headers, 'content-type'));
    let refs: Reference[] | undefined;
    if (kind) {
      refs = references(kind, response, bytes, ref.url);
      if (etag) memory.remember(ref.url, etag, refs);
    }
    const promise = plan(root, refs);
    stats.pushes++;
    stats.bytes += bytes.length;
    emit(root.s, { status: 200, headers: head.headers.filter(([n]) => !UNSENT.has(n.toLowerCase())), bodyLength: bytes.length, push: info, ...(head.coding ? { coding: head.coding } : {}), ...(promise ? { promise } : {}) }, bytes);
  }

  return {
    stats,

    answered(s, message, response) {
      if (message.method !== 'GET' || !enabled(s) || response.head.error) return undefined;
      if (s !== recentSession) {
        // A new registration has a new (empty) cache on the server.
        recent.clear();
        recentSession = s;
      }
      const h = message.headers;
      // A hard reload asks every cache to check with the app: nothing would be used.
      if (bypassesCaches(h)) return undefined;
      const head = response.head;
      if (head.status !== 200 && head.status !== 304) return undefined;
      const etag = headerValue(head.headers, 'etag')?.trim();
      let identity: string;
      let refs: Reference[] | undefined;
      if (head.status === 200) {
        const type = headerValue(head.headers, 'content-type');
        const kind = scannable(type);
        // Only scripts and stylesheets are ever pushed (scan.ts): an answer of any other type
        // (an API's JSON, an image) is nothing to remember, and costs no hash.
        if (!kind && !isStylesheet(type)) return undefined;
        identity = identityHash(h);
        // A page loaded without a validator: this browser's cache is probably empty (a new
        // profile, a cleared cache), so nothing it was given before can be left out.
        if (kind === 'html' && joinedValue(h, 'if-none-match') === null) memory.forget(identity);
        // A page: a new page load, which asks for its modules again (as 304s on a reload).
        if (kind === 'html') forgetRecent(identity);
        memory.deliver(identity, message.url, { etag, immutable: isImmutable(head.headers), vary: varyNames(head.headers) ?? [] });
        markRecent(`${identity}\0${message.url}`);
        if (kind && response.bytes) {
          refs = references(kind, response, response.bytes, message.url);
          if (etag) memory.remember(message.url, etag, refs, kind === 'html');
        }
      } else {
        // No body to scan: what the same version named last time.
        const tag = etag ?? joinedValue(h, 'if-none-match')?.trim();
        if (tag && !tag.includes(',')) refs = memory.references(message.url, tag);
        if (!refs) return undefined;
        identity = identityHash(h);
        // A page revalidated: a reload, which asks for its modules again.
        if (memory.isPage(message.url, tag!)) forgetRecent(identity);
      }
      if (!refs) return undefined;
      return plan({ s, identity, parent: h, gen, count: 0, bytes: 0 }, refs);
    },

    invalidate() {
      gen++;
      stats.invalidations++;
      queue.length = 0;
      next = 0;
      recent.clear();
      validators.clear();
      const s = ctx.session;
      if (!s || ctx.closed || !enabled(s)) return;
      emit(s, { status: 200, headers: [], bodyLength: 0, push: { url: '/', identity: '', variant: '', vary: [], gen, drop: true } }, undefined);
    },
  };
}

/** The whole body of a local answer, or undefined when it is larger than a push may be. */
async function whole(response: LocalResponse): Promise<Uint8Array | undefined> {
  if (response.bytes) return response.bytes;
  const body = response.body;
  if (!body) return new Uint8Array(0);
  if (response.head.bodyLength !== null && response.head.bodyLength > MAX_PUSH_BODY) {
    discard(body);
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as Readable) {
    size += (chunk as Buffer).length;
    if (size > MAX_PUSH_BODY) {
      discard(body);
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}
