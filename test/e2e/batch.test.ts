import { connect } from 'node:net';
import { request } from 'undici';
import {
  CONTENT_TYPE_FRAME,
  encodeHead,
  parseServerMessage,
  paths,
  readExactly,
  readFrameHead,
  type RegisterResponse,
  type ResponseHead,
  type ServerMessage,
} from '@devtunnel/core/protocol';
import { useHandDrivenServer } from '../helpers/by-hand';
import { waitFor } from '../helpers/tunnel';

/**
 * Batches on the control channel (feature `batch`, docs/protocol.md "Batches"): a poll answer
 * carries every queued request (a request with a body alone), requests read in one event-loop turn
 * leave in one answer even when polls wait, and one upload answers several browsers. The test plays
 * the client itself with the wire format of `@devtunnel/core/protocol`, so it sees the frames as
 * they travel.
 */

type RequestMessage = ServerMessage & { type: 'request' };

describe('batches on the control channel', () => {
  const hand = useHandDrivenServer('batcher');
  const { control, register, browse } = hand;

  /** One poll: every message of its answer, and the body of the last one if it has one. */
  async function poll(session: RegisterResponse): Promise<{ messages: ServerMessage[]; body: string }> {
    const res = await request(`${hand.server.url}${paths.poll(session.id)}`, { dispatcher: control, headers: { authorization: `Bearer ${session.secret}` } });
    expect(res.statusCode).toBe(200);
    const messages: ServerMessage[] = [];
    let body = '';
    for (;;) {
      const head = await readFrameHead(res.body, undefined, true);
      if (head === undefined) break;
      const message = parseServerMessage(head);
      messages.push(message);
      if (message.type === 'request' && message.bodyLength !== 0) {
        body = Buffer.from(await readExactly(res.body, message.bodyLength!)).toString();
        break;
      }
    }
    await res.body.dump();
    return { messages, body };
  }

  function batchUpload(session: RegisterResponse, frames: Buffer[]): Promise<{ status: number; code: unknown }> {
    return request(`${hand.server.url}${paths.responses(session.id)}`, {
      dispatcher: control,
      method: 'POST',
      headers: { authorization: `Bearer ${session.secret}`, 'content-type': CONTENT_TYPE_FRAME },
      body: Buffer.concat(frames),
    }).then(async (res) => {
      await res.body.dump();
      return { status: res.statusCode, code: res.headers['x-devtunnel-error'] };
    });
  }

  const answer = (id: string, text: string, extra: Partial<ResponseHead> = {}) =>
    Buffer.concat([encodeHead({ id, status: 200, headers: [['content-type', 'text/plain']], bodyLength: Buffer.byteLength(text), ...extra } as ResponseHead), Buffer.from(text)]);

  const queued = (session: RegisterResponse) => hand.server.tunnels().find((t) => t.port === session.port)?.queued ?? 0;

  test('a poll carries every queued request in arrival order; a request with a body travels alone, streamed after its head', async () => {
    const session = await register(['batch']);
    const a = browse(session, '/a');
    await waitFor(() => queued(session) === 1, 2_000, 'a queued');
    const b = browse(session, '/b');
    await waitFor(() => queued(session) === 2, 2_000, 'b queued');
    const c = browse(session, '/c', { method: 'POST', body: 'payload of c' });
    await waitFor(() => queued(session) === 3, 2_000, 'c queued');
    const d = browse(session, '/d');
    await waitFor(() => queued(session) === 4, 2_000, 'd queued');

    const answers = [await poll(session), await poll(session), await poll(session)];
    expect(answers.map((p) => p.messages.map((m) => (m as RequestMessage).url))).toEqual([['/a', '/b'], ['/c'], ['/d']]);
    expect(answers[1]!.body).toBe('payload of c');

    const ids = answers.flatMap((p) => p.messages.map((m) => m.id));
    expect((await batchUpload(session, ids.map((id, i) => answer(id, `answer ${i}`)))).status).toBe(204);
    await expect(Promise.all([a, b, c, d])).resolves.toEqual(['answer 0', 'answer 1', 'answer 2', 'answer 3'].map((text) => ({ status: 200, text, code: undefined })));
  });

  test('requests read in one event-loop turn leave in one poll answer even while polls wait', async () => {
    // Polls held for 5 s: none may come back empty before the pipelined write is read.
    await hand.restart({ pollTimeoutMs: 5_000, bodyIdleTimeoutMs: 10_000 });
    const session = await register(['batch']);
    const waiting = [poll(session), poll(session), poll(session)];
    await waitFor(() => hand.server.tunnels().find((t) => t.port === session.port)?.pollsWaiting === 3, 2_000, 'three polls waiting');
    // Five pipelined requests in one write: Node parses them in one read, in one turn.
    const socket = connect(session.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(['/1', '/2', '/3', '/4', '/5'].map((p) => `GET ${p} HTTP/1.1\r\nHost: app.test\r\n\r\n`).join(''));
    const answered = await Promise.race(waiting);
    expect(answered.messages.map((m) => (m as RequestMessage).url)).toEqual(['/1', '/2', '/3', '/4', '/5']);
    // The other polls stay free for what comes next.
    expect(hand.server.tunnels().find((t) => t.port === session.port)?.pollsWaiting).toBe(2);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    await batchUpload(session, answered.messages.map((m, i) => answer(m.id, `pipelined ${i + 1}`)));
    await waitFor(() => received.split('pipelined').length === 6, 2_000, 'five answers');
    expect([...received.matchAll(/pipelined (\d)/g)].map((m) => m[1])).toEqual(['1', '2', '3', '4', '5']);
    socket.destroy();
  });

  test('a client without the batch feature gets one request per poll answer', async () => {
    const session = await register([]);
    const a = browse(session, '/a');
    const b = browse(session, '/b');
    await waitFor(() => queued(session) === 2, 2_000, 'both queued');
    const first = await poll(session);
    const second = await poll(session);
    expect([first.messages.length, second.messages.length]).toEqual([1, 1]);
    for (const m of [...first.messages, ...second.messages]) {
      const res = await request(`${hand.server.url}${paths.response(session.id, m.id)}`, {
        dispatcher: control,
        method: 'POST',
        headers: { authorization: `Bearer ${session.secret}`, 'content-type': CONTENT_TYPE_FRAME },
        body: answer(m.id, `single ${(m as RequestMessage).url}`),
      });
      await res.body.dump();
    }
    expect((await a).text).toBe('single /a');
    expect((await b).text).toBe('single /b');
  });

  test('in a batch upload, an answer for an unknown or finished request is skipped and the others arrive', async () => {
    const session = await register(['batch']);
    const a = browse(session, '/a');
    const b = browse(session, '/b');
    await waitFor(() => queued(session) === 2, 2_000, 'both queued');
    const { messages } = await poll(session);
    expect(messages).toHaveLength(2);
    const upload = await batchUpload(session, [answer(messages[0]!.id, 'first'), answer('f'.repeat(32), 'nobody asked'), answer(messages[1]!.id, 'second')]);
    expect(upload.status).toBe(204);
    expect((await a).text).toBe('first');
    expect((await b).text).toBe('second');
    // Answering the same request twice changes nothing for its browser.
    expect((await batchUpload(session, [answer(messages[0]!.id, 'again')])).status).toBe(204);
  });

  test('an error answer in a batch gives its browser the coded error page', async () => {
    const session = await register(['batch']);
    const a = browse(session, '/down');
    await waitFor(() => queued(session) === 1, 2_000, 'queued');
    const { messages } = await poll(session);
    const head = { id: messages[0]!.id, status: 502, headers: [], bodyLength: 0, error: { code: 'local_app_refused', message: 'Nothing answers at http://127.0.0.1:1.' } };
    await batchUpload(session, [Buffer.from(encodeHead(head as ResponseHead))]);
    const res = await a;
    expect(res).toMatchObject({ status: 502, code: 'local_app_refused' });
    expect(res.text).toContain('Nothing answers');
  });

  test('a batched answer announcing more than the whole-body limit is refused before anything is read or allocated', async () => {
    const session = await register(['batch']);
    const a = browse(session, '/huge');
    await waitFor(() => queued(session) === 1, 2_000, 'queued');
    const { messages } = await poll(session);
    const claim = Buffer.from(encodeHead({ id: messages[0]!.id, status: 200, headers: [], bodyLength: 2 ** 40 } as ResponseHead));
    expect(await batchUpload(session, [claim])).toMatchObject({ status: 400, code: 'invalid_request' });
    expect((await a).status).toBe(502);
  });

  test('a malformed batch is refused with 400 invalid_request, and the request it named fails with 502', async () => {
    const session = await register(['batch']);
    const a = browse(session, '/a');
    await waitFor(() => queued(session) === 1, 2_000, 'queued');
    const { messages } = await poll(session);
    // The head promises 100 bytes; the upload ends after 5.
    const truncated = Buffer.concat([encodeHead({ id: messages[0]!.id, status: 200, headers: [], bodyLength: 100 } as ResponseHead), Buffer.from('short')]);
    const upload = await batchUpload(session, [truncated]);
    expect(upload).toMatchObject({ status: 400, code: 'invalid_request' });
    expect((await a).status).toBe(502);
  });
});
