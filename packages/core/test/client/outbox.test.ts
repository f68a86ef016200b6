import type { ClientContext } from '../../src/client/context';
import { createOutbox, type OutboxDeps } from '../../src/client/outbox';
import { batchFrames, ServerAnswerError, type BatchItem, type PollResult, type Session } from '../../src/control';
import { MAX_BATCH } from '../../src/protocol';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const item = (n: number): BatchItem => ({ head: { id: n.toString(16).padStart(32, '0'), status: 200, headers: [], bodyLength: 1 }, bytes: new Uint8Array([n]) });
const session = (id: string) => ({ id }) as unknown as Session;

type Upload = { s: Session; items: BatchItem[] | Uint8Array; asPoll: boolean };

function setup(answer: (u: Upload) => Promise<PollResult> = async () => null) {
  const uploads: Upload[] = [];
  const s = session('s1');
  const ctx = {
    session: s,
    closed: false,
    waiting: 0,
    link: undefined,
    control: {
      respondBatch: (s: Session, items: BatchItem[] | Uint8Array, asPoll: boolean) => {
        const u = { s, items: Array.isArray(items) ? [...items] : items, asPoll };
        uploads.push(u);
        return answer(u);
      },
    },
  } as unknown as ClientContext;
  const deps = { dispatch: jest.fn(), topUp: jest.fn(), pollTarget: jest.fn(() => 2), uploadFailed: jest.fn() } satisfies OutboxDeps;
  return { ctx, s, deps, uploads, outbox: createOutbox(ctx, deps) };
}

describe('outbox', () => {
  test('answers ready in one turn leave in one upload, which stands for a poll when polls are short', async () => {
    const next: PollResult = { messages: [], body: new Uint8Array(0) };
    let waitingDuring = -1;
    const { s, deps, uploads, outbox, ctx } = setup(async () => {
      waitingDuring = ctx.waiting;
      return next;
    });
    outbox.send(s, item(1));
    outbox.send(s, item(2));
    outbox.send(s, item(3));
    expect(uploads).toHaveLength(0);
    await turn();
    expect(uploads).toHaveLength(1);
    expect(uploads[0]).toMatchObject({ s, asPoll: true });
    expect((uploads[0]!.items as BatchItem[]).map((i) => i.bytes![0])).toEqual([1, 2, 3]);
    // It counts as a poll waiting while it is on its way.
    expect(waitingDuring).toBe(1);
    await turn();
    expect(deps.dispatch).toHaveBeenCalledWith(s, next);
    expect(ctx.waiting).toBe(0);
    expect(deps.topUp).toHaveBeenCalledTimes(1);
  });

  test('a full batch leaves at once; polls enough: not as a poll', async () => {
    const { s, deps, uploads, outbox } = setup();
    deps.pollTarget.mockReturnValue(0);
    for (let i = 0; i < MAX_BATCH + 1; i++) outbox.send(s, item(i));
    expect(uploads).toHaveLength(1);
    expect(uploads[0]!.items).toHaveLength(MAX_BATCH);
    expect(uploads[0]!.asPoll).toBe(false);
    await turn();
    expect(uploads).toHaveLength(2);
    expect(uploads[1]!.items).toHaveLength(1);
  });

  test("an answer for another session sends the previous session's batch first", () => {
    const { s, uploads, outbox } = setup();
    const other = session('s2');
    outbox.send(s, item(1));
    outbox.send(other, item(2));
    expect(uploads).toHaveLength(1);
    expect(uploads[0]!.s).toBe(s);
  });

  test('with the upstream open, the batch is one write on it, no upload', async () => {
    const { s, ctx, uploads, outbox } = setup();
    const sent: Uint8Array[] = [];
    ctx.link = { upstreamReady: true, downstreamReady: true, send: (f: Uint8Array) => void sent.push(f), close() {} };
    outbox.send(s, item(1));
    outbox.send(s, item(2));
    await turn();
    expect(uploads).toHaveLength(0);
    expect(sent).toEqual([batchFrames([item(1), item(2)])]);
  });

  test('an upload the network broke is sent once more, not as a poll; a refusal goes to uploadFailed', async () => {
    const broken = setup(async (u) => {
      if (u.asPoll) throw new Error('socket hang up');
      return null;
    });
    broken.outbox.send(broken.s, item(1));
    await turn();
    await turn();
    expect(broken.uploads.map((u) => u.asPoll)).toEqual([true, false]);
    expect(broken.deps.uploadFailed).not.toHaveBeenCalled();

    const refusal = new ServerAnswerError(404, 'unknown_tunnel', 'batch upload', undefined);
    const refused = setup(async () => {
      throw refusal;
    });
    refused.outbox.send(refused.s, item(1));
    await turn();
    await turn();
    expect(refused.uploads).toHaveLength(1);
    expect(refused.deps.uploadFailed).toHaveBeenCalledWith(refused.s, refusal);
  });

  test('nothing leaves once the client closed', async () => {
    const { s, ctx, uploads, outbox } = setup();
    outbox.send(s, item(1));
    ctx.closed = true;
    await turn();
    expect(uploads).toHaveLength(0);
  });
});
