import type { BatchItem, Session } from '../../src/control';
import type { ClientContext } from '../../src/client/context';
import type { LocalResponse } from '../../src/forward';
import type { HeaderPairs, RequestMessage } from '../../src/protocol';
import { createSpeculator } from '../../src/speculate';
import { lexerInit } from '../../src/speculate/scan';

/** The local app as a map of URL → answer; what it was asked, in order. */
function fakeApp(files: Record<string, { type: string; body: string; etag?: string; cc?: string; status?: number; extra?: HeaderPairs }>) {
  const asked: Array<{ url: string; headers: HeaderPairs }> = [];
  const forward = async (m: RequestMessage): Promise<LocalResponse> => {
    asked.push({ url: m.url, headers: m.headers });
    const f = files[m.url];
    if (!f) return { head: { status: 404, headers: [], bodyLength: 0 }, body: null, bytes: Buffer.alloc(0) };
    const inm = m.headers.find(([n]) => n === 'if-none-match')?.[1];
    const headers: HeaderPairs = [['Content-Type', f.type], ['Vary', 'Origin'], ...(f.etag ? [['Etag', f.etag] as [string, string]] : []), ['Cache-Control', f.cc ?? 'no-cache'], ...(f.extra ?? [])];
    if (inm && inm === f.etag) return { head: { status: 304, headers: [['Vary', 'Origin'], ['Etag', f.etag]], bodyLength: 0 }, body: null };
    const bytes = Buffer.from(f.body);
    return { head: { status: f.status ?? 200, headers, bodyLength: bytes.length }, body: null, bytes };
  };
  return { asked, forward };
}

function setup(files: Parameters<typeof fakeApp>[0], speculate = true) {
  const app = fakeApp(files);
  const s = { id: 't', secret: 's', features: ['batch', 'stream', 'push'] } as unknown as Session;
  const sent: BatchItem[] = [];
  const ctx = {
    o: { speculate },
    active: 0,
    closed: false,
    session: s,
    forwarder: { forward: app.forward },
    control: { respondBatch: async (_s: Session, items: BatchItem[]) => void sent.push(...items) },
    log: { debug() {} },
  } as unknown as ClientContext;
  const speculator = createSpeculator(ctx, { send: (_s, item) => void sent.push(item) });
  return { app, s, sent, ctx, speculator };
}

const browser: HeaderPairs = [['Host', 'app.test'], ['Cookie', 'sid=1'], ['Accept', 'text/html'], ['Sec-Fetch-Dest', 'document']];
const page = (url: string, headers: HeaderPairs = browser): RequestMessage => ({ type: 'request', id: 'r', method: 'GET', url, headers, bodyLength: 0 });
const html = (body: string, etag = 'W/"p1"'): LocalResponse => ({ head: { status: 200, headers: [['Content-Type', 'text/html'], ['Etag', etag]], bodyLength: body.length }, body: null, bytes: Buffer.from(body) });
/** Until the pushes stop coming. */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

const files = {
  '/main.js': { type: 'text/javascript', body: 'import "/a.js"; import "/b.js";', etag: 'W/"m1"' },
  '/a.js': { type: 'text/javascript', body: 'export const a = 1;', etag: 'W/"a1"' },
  '/b.js': { type: 'text/javascript', body: 'import "/dep.js?v=1"; import "/missing.js";', etag: 'W/"b1"' },
  '/dep.js?v=1': { type: 'text/javascript', body: 'export default 1;', cc: 'max-age=31536000,immutable' },
  '/cookie.js': { type: 'text/javascript', body: '1', extra: [['Set-Cookie', 'x=1']] as HeaderPairs },
};

beforeAll(() => lexerInit);

describe('the speculator', () => {
  test('a page: what it names is promised, fetched with the browser identity, pushed, recursively', async () => {
    const { app, s, sent, speculator } = setup(files);
    expect(speculator.answered(s, page('/'), html('<script type="module" src="/main.js"></script>'))).toEqual(['/main.js']);
    await settle();
    expect(app.asked.map((a) => a.url)).toEqual(['/main.js', '/a.js', '/b.js', '/dep.js?v=1', '/missing.js']);
    const main = app.asked[0]!.headers;
    expect(main).toEqual(expect.arrayContaining([['Host', 'app.test'], ['Cookie', 'sid=1'], ['accept', '*/*'], ['sec-fetch-dest', 'script']]));
    const pushes = sent.filter((i) => i.head.push && !i.head.push.none);
    expect(pushes.map((i) => i.head.push!.url)).toEqual(['/main.js', '/a.js', '/b.js', '/dep.js?v=1']);
    expect(pushes[0]!.head.promise).toEqual(['/a.js', '/b.js']);
    expect(pushes[0]!.head.push).toMatchObject({ variant: 'script|', vary: [['origin', null]], gen: 0 });
    // A 404 is not pushed: the promise is settled with none.
    expect(sent.filter((i) => i.head.push?.none).map((i) => i.head.push!.url)).toEqual(['/missing.js']);
  });

  test('never pushed: Set-Cookie; nothing at all without the option or after a hard reload', async () => {
    const one = setup(files);
    one.speculator.answered(one.s, page('/'), html('<script src="/cookie.js"></script>'));
    await settle();
    expect(one.sent.map((i) => [i.head.push?.url, Boolean(i.head.push?.none)])).toEqual([['/cookie.js', true]]);
    const off = setup(files, false);
    expect(off.speculator.answered(off.s, page('/'), html('<script src="/main.js"></script>'))).toBeUndefined();
    const hard = setup(files);
    expect(hard.speculator.answered(hard.s, page('/', [...browser, ['Cache-Control', 'no-cache']]), html('<script src="/main.js"></script>'))).toBeUndefined();
  });

  test('a reload: validators alike for unchanged modules, nothing for immutable ones, a changed one whole', async () => {
    const { app, s, sent, speculator } = setup(files);
    speculator.answered(s, page('/'), html('<script type="module" src="/main.js"></script>'));
    await settle();
    sent.length = 0;
    app.asked.length = 0;
    files['/a.js'] = { ...files['/a.js'], body: 'export const a = 2;', etag: 'W/"a2"' };
    // The page revalidated: 304, nothing to scan, what it named last time is used.
    const reload = speculator.answered(s, page('/', [...browser, ['If-None-Match', 'W/"p1"']]), { head: { status: 304, headers: [['Etag', 'W/"p1"']], bodyLength: 0 }, body: null });
    expect(reload).toEqual(['/main.js']);
    await settle();
    expect(app.asked.map((a) => [a.url, a.headers.find(([n]) => n === 'if-none-match')?.[1]])).toEqual([
      ['/main.js', 'W/"m1"'],
      ['/a.js', 'W/"a1"'],
      ['/b.js', 'W/"b1"'],
      ['/missing.js', undefined],
    ]);
    const validators = sent.filter((i) => i.head.push?.validator);
    expect(validators.flatMap((i) => [i.head.push!.url, ...(i.head.push!.alike ?? []).map(([u]) => u)])).toEqual(['/main.js', '/b.js']);
    expect(sent.find((i) => i.head.push?.url === '/a.js' && !i.head.push.none)?.head.bodyLength).toBe('export const a = 2;'.length);
    expect(sent.some((i) => i.head.push?.url === '/dep.js?v=1')).toBe(false);
  });

  test('a change: a drop goes up, and what was being fetched is not sent', async () => {
    const { s, sent, speculator } = setup(files);
    speculator.answered(s, page('/'), html('<script type="module" src="/main.js"></script>'));
    speculator.invalidate();
    await settle();
    expect(sent.map((i) => i.head.push)).toEqual([{ url: '/', identity: '', variant: '', vary: [], gen: 1, drop: true }]);
  });
});
