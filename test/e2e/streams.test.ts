import { Readable } from 'node:stream';
import { request } from 'undici';
import {
  CONTENT_TYPE_FRAME,
  HEADER,
  HEARTBEAT,
  createFrameReader,
  encodeHead,
  parseDownstreamMessage,
  paths,
  type DownstreamMessage,
  type RegisterResponse,
  type RequestMessage,
  type ResponseHead,
} from '@devtunnel/core/protocol';
import { useHandDrivenServer } from '../helpers/by-hand';
import { waitFor } from '../helpers/tunnel';

/**
 * Streams on the control channel (feature `stream`, docs/protocol.md "Streams"): the downstream
 * carries requests without a body as they arrive, the upstream takes whole answers; the server
 * keeps to the client's window, hands requests with a body to polls, and cuts a stream whose client
 * went silent. The test plays the client itself with the wire format of `@devtunnel/core/protocol`.
 */
describe('streams on the control channel', () => {
  const hand = useHandDrivenServer('streamer');
  const { control } = hand;
  const browse = hand.browse;

  async function register(): Promise<RegisterResponse> {
    const session = await hand.register(['batch', 'stream']);
    expect(session.features).toContain('stream');
    return session;
  }

  /** Sends back the key of a downstream's first notice, as the client does once it got it. */
  async function confirm(session: RegisterResponse, key: string) {
    const res = await request(`${hand.server.url}${paths.tunnel(session.id)}`, { dispatcher: control, headers: { authorization: `Bearer ${session.secret}`, [HEADER.downstream]: key } });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  }

  /** Opens a downstream, confirms it (unless told not to), and collects its messages as they arrive. */
  async function downstream(session: RegisterResponse, window?: number, confirmed = true) {
    const headers: Record<string, string> = { authorization: `Bearer ${session.secret}` };
    if (window !== undefined) headers[HEADER.window] = String(window);
    const res = await request(`${hand.server.url}${paths.stream(session.id)}`, { dispatcher: control, headers });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(CONTENT_TYPE_FRAME);
    expect(res.headers['x-accel-buffering']).toBe('no');
    const messages: DownstreamMessage[] = [];
    let heartbeats = 0;
    const reader = createFrameReader({ bodyLength: () => 0, onFrame: (head) => void messages.push(parseDownstreamMessage(head)) });
    let ended = false;
    res.body.on('data', (chunk: Buffer) => {
      for (let at = 0; at + 4 <= chunk.length && chunk.readUInt32BE(at) === 0; at += 4) heartbeats++;
      reader.push(chunk);
    });
    res.body.on('error', () => {});
    res.body.on('close', () => (ended = true));
    await waitFor(() => messages.length > 0, 2_000, 'the opening notice');
    const opening = messages[0]!;
    expect(opening).toMatchObject({ type: 'stream', key: expect.stringMatching(/^[0-9a-f]{32}$/) });
    if (confirmed) await confirm(session, (opening as { key: string }).key);
    return {
      messages,
      requests: () => messages.filter((m): m is RequestMessage => m.type === 'request'),
      get heartbeats() {
        return heartbeats;
      },
      get ended() {
        return ended;
      },
      close: () => res.body.destroy(),
    };
  }

  /** One poll whose answer carries one request: the whole frame and that request's id. */
  async function pollOnce(session: RegisterResponse): Promise<{ id: string; frame: Buffer }> {
    const poll = await request(`${hand.server.url}${paths.poll(session.id)}`, { dispatcher: control, headers: { authorization: `Bearer ${session.secret}` } });
    expect(poll.statusCode).toBe(200);
    const frame = Buffer.from(await poll.body.arrayBuffer());
    return { id: (JSON.parse(frame.subarray(4, 4 + frame.readUInt32BE(0)).toString()) as { id: string }).id, frame };
  }

  /** Opens an upstream: frames written to it reach the server as they are pushed. */
  function upstream(session: RegisterResponse) {
    const body = new Readable({ read() {} });
    const answered = request(`${hand.server.url}${paths.stream(session.id)}`, {
      dispatcher: control,
      method: 'POST',
      headers: { authorization: `Bearer ${session.secret}`, 'content-type': CONTENT_TYPE_FRAME },
      body,
    }).then(async (res) => ({ status: res.statusCode, text: await res.body.text() }));
    return {
      answered,
      send: (bytes: Uint8Array) => body.push(bytes),
      answer: (id: string, text: string, head: Partial<ResponseHead> = {}) =>
        body.push(Buffer.concat([encodeHead({ status: 200, headers: [['content-type', 'text/plain']], bodyLength: text.length, id, ...head }), Buffer.from(text)])),
      end: () => body.push(null),
    };
  }

  const snapshot = (session: RegisterResponse) => hand.server.tunnels().find((t) => t.id === session.id)!;

  test('the downstream opens with a notice, carries requests without a body as they come, and the upstream answers them', async () => {
    const session = await register();
    const down = await downstream(session);
    expect(down.messages[0]).toMatchObject({ type: 'stream', upstream: false });
    expect(snapshot(session).downstream).toBe(true);

    const up = upstream(session);
    up.send(HEARTBEAT);
    // The first bytes of an upstream are announced on the downstream: uploads stream through.
    await waitFor(() => down.messages.some((m) => m.type === 'stream' && m.upstream), 2_000, 'the upstream notice');
    expect(snapshot(session).upstreams).toBe(1);

    const pages = ['/a', '/b?q=1', '/c'].map((path) => browse(session, path));
    await waitFor(() => down.requests().length === 3, 2_000, 'three requests on the downstream');
    expect(down.requests().map((r) => r.url).sort()).toEqual(['/a', '/b?q=1', '/c']);
    for (const r of down.requests()) up.answer(r.id, `answer ${r.url}`);
    expect((await Promise.all(pages)).map((p) => p.text).sort()).toEqual(['answer /a', 'answer /b?q=1', 'answer /c']);

    up.end();
    expect(await up.answered).toEqual({ status: 204, text: '' });
    down.close();
  });

  test('an unconfirmed downstream gets no requests (a buffering proxy may hold it): they wait for polls', async () => {
    const session = await register();
    const down = await downstream(session, undefined, false);
    expect(snapshot(session).downstream).toBe(false);
    const page = browse(session, '/held');
    await waitFor(() => snapshot(session).queued === 1, 2_000, 'the request to wait for a poll');
    // A wrong key confirms nothing.
    await confirm(session, '0'.repeat(32));
    expect(snapshot(session).downstream).toBe(false);
    const { id } = await pollOnce(session);
    const up = upstream(session);
    up.answer(id, 'by poll');
    expect((await page).text).toBe('by poll');
    expect(down.requests()).toEqual([]);
    up.end();
    await up.answered;
    down.close();
  });

  test('a request with a body waits for a poll; a browser that leaves gets a cancel on the downstream', async () => {
    const session = await register();
    const down = await downstream(session);
    const posted = browse(session, '/upload', { method: 'POST', body: 'payload' });
    await waitFor(() => snapshot(session).queued === 1, 2_000, 'the request with a body to wait in the queue');
    expect(down.requests()).toEqual([]);
    const { id, frame } = await pollOnce(session);
    expect(frame.subarray(frame.length - 7).toString()).toBe('payload');
    const up = upstream(session);
    up.answer(id, 'stored');
    expect((await posted).text).toBe('stored');

    // A browser that leaves: the request the client holds is cancelled on the downstream.
    const controller = new AbortController();
    const left = browse(session, '/slow', { signal: controller.signal }).catch(() => 'aborted');
    await waitFor(() => down.requests().some((r) => r.url === '/slow'), 2_000, 'the request on the downstream');
    controller.abort();
    expect(await left).toBe('aborted');
    const slow = down.requests().find((r) => r.url === '/slow')!;
    await waitFor(() => down.messages.some((m) => m.type === 'cancel' && m.id === slow.id), 2_000, 'the cancel');
    up.end();
    await up.answered;
    down.close();
  });

  test('the server hands a downstream no more than the window the client asked for', async () => {
    const session = await register();
    const down = await downstream(session, 2);
    const up = upstream(session);
    const pages = ['/1', '/2', '/3', '/4'].map((path) => browse(session, path));
    await waitFor(() => down.requests().length === 2 && snapshot(session).queued === 2, 2_000, 'two handed over, two queued');
    up.answer(down.requests()[0]!.id, 'one');
    // One answer makes room for one more.
    await waitFor(() => down.requests().length === 3, 2_000, 'the third request');
    expect(snapshot(session).queued).toBe(1);
    for (const r of down.requests().slice(1)) up.answer(r.id, 'more');
    await waitFor(() => down.requests().length === 4, 2_000, 'the fourth request');
    up.answer(down.requests()[3]!.id, 'last');
    expect((await Promise.all(pages)).every((p) => p.status === 200)).toBe(true);
    up.end();
    await up.answered;
    down.close();
  });

  test('a malformed upstream frame: its browser gets 502 bad_response, the upstream 400 and a close', async () => {
    const session = await register();
    const down = await downstream(session);
    const page = browse(session, '/x');
    await waitFor(() => down.requests().length === 1, 2_000, 'the request');
    const up = upstream(session);
    // A whole answer above the batch limit must come on its own upload, never on a stream.
    up.send(encodeHead({ status: 200, headers: [], bodyLength: 70_000, id: down.requests()[0]!.id }));
    expect((await page).code).toBe('bad_response');
    const answered = await up.answered;
    expect(answered.status).toBe(400);
    expect(answered.text).toContain('invalid_request');
    down.close();
  });

  test('a broken downstream: a safe request it carried goes again once the client shows it lives; an unsafe one never', async () => {
    const session = await register();
    const down = await downstream(session);
    const up = upstream(session);
    const got = browse(session, '/lost?maybe');
    const deleted = browse(session, '/item', { method: 'DELETE' });
    await waitFor(() => down.requests().length === 2, 2_000, 'both requests on the downstream');
    const [first, second] = down.requests().sort((a, b) => a.method.localeCompare(b.method));
    expect([first!.method, second!.method]).toEqual(['DELETE', 'GET']);
    // The connection breaks: neither answer came; the client may or may not have them.
    down.close();
    await waitFor(() => !snapshot(session).downstream, 2_000, 'the server to see the downstream broken');
    // The client's next poll shows it lives: the GET comes again, the DELETE does not.
    const { id, frame } = await pollOnce(session);
    expect(id).toBe(second!.id);
    expect(JSON.parse(frame.subarray(4, 4 + frame.readUInt32BE(0)).toString())).toMatchObject({ method: 'GET', url: '/lost?maybe' });
    up.answer(second!.id, 'sent again');
    up.answer(first!.id, 'deleted once');
    expect((await got).text).toBe('sent again');
    expect((await deleted).text).toBe('deleted once');
    up.end();
    await up.answered;
  });

  test('a newer downstream replaces the older one, which ends', async () => {
    const session = await register();
    const first = await downstream(session);
    const second = await downstream(session);
    await waitFor(() => first.ended, 2_000, 'the first downstream to end');
    const page = browse(session, '/after');
    await waitFor(() => second.requests().length === 1, 2_000, 'the request on the newer downstream');
    const up = upstream(session);
    up.answer(second.requests()[0]!.id, 'newer');
    expect((await page).text).toBe('newer');
    up.end();
    await up.answered;
    second.close();
  });

  test('heartbeats keep a quiet downstream open; a client silent past its lease has it cut and goes offline', async () => {
    // Heartbeats every 300 ms, a lease of 4 s: two heartbeats come long before the lease ends,
    // however loaded the machine.
    await hand.restart({ pollTimeoutMs: 300, leaseMs: 4_000 });
    const session = await register();
    const down = await downstream(session);
    await waitFor(() => down.heartbeats >= 2, 3_000, 'two heartbeats');
    expect(down.ended).toBe(false);
    // No poll, no upstream bytes: past the lease the server cuts the stream.
    await waitFor(() => down.ended, 8_000, 'the silent client\'s downstream to be cut');
    await waitFor(() => snapshot(session).state === 'offline', 3_000, 'the tunnel to go offline');
    expect((await browse(session, '/nobody')).code).toBe('tunnel_offline');
  });

  test('draining ends the downstream and answers the upstream 503 server_shutting_down', async () => {
    const session = await register();
    const down = await downstream(session);
    const up = upstream(session);
    up.send(HEARTBEAT);
    await waitFor(() => snapshot(session).upstreams === 1, 2_000, 'the upstream');
    const closing = hand.server.close();
    await waitFor(() => down.ended, 3_000, 'the downstream to end');
    const answered = await up.answered;
    expect(answered.status).toBe(503);
    expect(answered.text).toContain('server_shutting_down');
    await closing;
  });
});
