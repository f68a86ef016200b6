import type { HeaderPairs, PushInfo, ResponseHead } from '@devtunnel/core/protocol';
import { pushVariant } from '@devtunnel/core/protocol';
import { createPushCache, identityHash, type PushBudget, type PushLimits, type PushLookup } from '../src/push-cache';
import { manualClock } from './session/manual-clock';

const browser: HeaderPairs = [['Host', 'app.test'], ['Cookie', 'devtunnel=ann; sid=1'], ['Accept', '*/*']];
const identity = identityHash(browser);
const variant = pushVariant(browser);
const limits: PushLimits = { lifetimeMs: 10_000, waitMs: 2_000, maxEntries: 4, maxBytes: 100 };

function setup(budgetBytes = 1_000) {
  const clock = manualClock();
  const budget: PushBudget = { bytes: 0, maxBytes: budgetBytes };
  const events = { received: [] as number[], used: [] as boolean[], dropped: [] as Array<[string, number]> };
  const cache = createPushCache(clock, limits, budget, {
    received: (n) => events.received.push(n),
    used: (_n, notModified) => events.used.push(notModified),
    dropped: (reason, n) => events.dropped.push([reason, n]),
  });
  return { clock, budget, events, cache };
}

function push(url: string, body = 'x', extra: Partial<PushInfo> = {}, headers: HeaderPairs = [['content-type', 'text/javascript'], ['etag', 'W/"1"']]): [ResponseHead & { push: PushInfo }, Uint8Array] {
  const bytes = new TextEncoder().encode(body);
  return [{ status: 200, headers, bodyLength: extra.validator ? 0 : bytes.length, push: { url, identity, variant, vary: [], gen: 0, ...extra } }, extra.validator ? new Uint8Array(0) : bytes];
}

const lookup = (url: string, headers: HeaderPairs = browser, method = 'GET'): PushLookup => ({ method, url, headers, identity: identityHash(headers), variant: pushVariant(headers) });

describe('push cache', () => {
  test('a push answers the request that matches it, once', () => {
    const { cache, events } = setup();
    cache.put(...push('/src/a.ts'));
    const hit = cache.match(lookup('/src/a.ts'));
    expect(hit).toMatchObject({ status: 200, notModified: false });
    expect(Buffer.from((hit as { body: Uint8Array }).body).toString()).toBe('x');
    expect(cache.match(lookup('/src/a.ts'))).toBeUndefined();
    expect(events.used).toEqual([false]);
  });

  test('another identity, query, variant or varied header gets nothing', () => {
    const { cache } = setup();
    cache.put(...push('/src/a.ts', 'x', { vary: [['origin', null]] }));
    expect(cache.match(lookup('/src/a.ts', [['Host', 'app.test'], ['Cookie', 'devtunnel=bob'], ['Accept', '*/*']]))).toBeUndefined();
    expect(cache.match(lookup('/src/a.ts?t=1'))).toBeUndefined();
    expect(cache.match(lookup('/src/a.ts', [...browser.filter(([n]) => n !== 'Accept'), ['Accept', 'text/css,*/*;q=0.1']]))).toBeUndefined();
    expect(cache.match(lookup('/src/a.ts', [...browser, ['Origin', 'http://evil.test']]))).toBeUndefined();
    expect(cache.match(lookup('/src/a.ts'))).toMatchObject({ status: 200 });
  });

  test('If-None-Match: 304 when it matches (weak comparison), the body otherwise', () => {
    const { cache } = setup();
    cache.put(...push('/a.js'));
    const hit = cache.match(lookup('/a.js', [...browser, ['If-None-Match', '"0", "1"']]));
    expect(hit).toMatchObject({ status: 304, notModified: true, body: undefined });
    expect((hit as { headers: HeaderPairs }).headers).toEqual([['etag', 'W/"1"']]);
    cache.put(...push('/b.js'));
    expect(cache.match(lookup('/b.js', [...browser, ['If-None-Match', 'W/"2"']]))).toMatchObject({ status: 200 });
  });

  test('a validator answers only the conditional request it matches', () => {
    const { cache } = setup();
    cache.put(...push('/a.js', '', { validator: true }));
    expect(cache.match(lookup('/a.js'))).toBeUndefined();
    expect(cache.match(lookup('/a.js', [...browser, ['If-None-Match', 'W/"9"']]))).toBeUndefined();
    expect(cache.match(lookup('/a.js', [...browser, ['If-None-Match', 'W/"1"']]))).toMatchObject({ status: 304 });
  });

  test('validators alike: one head, each URL with its own ETag', () => {
    const { cache } = setup();
    cache.put(...push('/a.js', '', { validator: true, alike: [['/b.js', 'W/"2"'], ['/c.js', '"3"']] }));
    expect(cache.entries).toBe(3);
    expect(cache.match(lookup('/b.js', [...browser, ['If-None-Match', 'W/"1"']]))).toBeUndefined();
    expect(cache.match(lookup('/b.js', [...browser, ['If-None-Match', 'W/"2"']]))).toMatchObject({ status: 304, headers: [['etag', 'W/"2"']] });
    expect(cache.match(lookup('/c.js', [...browser, ['If-None-Match', '"3"']]))).toMatchObject({ status: 304 });
    expect(cache.match(lookup('/a.js', [...browser, ['If-None-Match', 'W/"1"']]))).toMatchObject({ status: 304 });
  });

  test('unused pushes expire after their lifetime, counted as wasted', () => {
    const { cache, clock, events, budget } = setup();
    cache.put(...push('/a.js', 'abc'));
    clock.advance(limits.lifetimeMs);
    cache.sweep(clock.now());
    expect(cache.entries).toBe(0);
    expect(budget.bytes).toBe(0);
    expect(events.dropped).toEqual([['expired', 3]]);
    cache.put(...push('/b.js', 'abc'));
    clock.advance(limits.lifetimeMs + 1);
    expect(cache.match(lookup('/b.js'))).toBeUndefined();
  });

  test('bounds: entries and bytes per tunnel, and the server-wide budget; oldest first', () => {
    const { cache, events } = setup();
    for (const u of ['/1', '/2', '/3', '/4', '/5']) cache.put(...push(u));
    expect(cache.entries).toBe(4);
    expect(cache.match(lookup('/1'))).toBeUndefined();
    expect(events.dropped).toEqual([['evicted', 1]]);
    cache.put(...push('/big', 'y'.repeat(101)));
    expect(cache.match(lookup('/big'))).toBeUndefined();
    const small = setup(5);
    small.cache.put(...push('/a', 'aaa'));
    small.cache.put(...push('/b', 'bbb'));
    expect(small.budget.bytes).toBe(3);
    expect(small.cache.match(lookup('/a'))).toBeUndefined();
    expect(small.cache.match(lookup('/b'))).toMatchObject({ status: 200 });
  });

  test('a promised push is waited for; none, a drop or the wait bound lets the request go on', () => {
    const { cache, clock } = setup();
    cache.promise(identity, ['/a.js', '/b.js', '/c.js']);
    expect(cache.match(lookup('/a.js'))).toBe('wait');
    const ready: string[] = [];
    cache.wait(lookup('/a.js'), () => ready.push('a'));
    cache.wait(lookup('/b.js'), () => ready.push('b'));
    cache.wait(lookup('/c.js'), () => ready.push('c'));
    cache.put(...push('/a.js'));
    expect(ready).toEqual(['a']);
    expect(cache.match(lookup('/a.js'))).toMatchObject({ status: 200 });
    cache.put(...push('/b.js', '', { none: true }));
    expect(ready).toEqual(['a', 'b']);
    expect(cache.match(lookup('/b.js'))).toBeUndefined();
    clock.advance(limits.waitMs);
    expect(ready).toEqual(['a', 'b', 'c']);
    expect(cache.match(lookup('/c.js'))).toBeUndefined();
  });

  test('a drop clears pushes and promises; a push of an older generation is stale', () => {
    const { cache, events } = setup();
    cache.put(...push('/a.js', 'ab'));
    cache.promise(identity, ['/b.js']);
    const ready: string[] = [];
    cache.wait(lookup('/b.js'), () => ready.push('b'));
    cache.put({ status: 200, headers: [], bodyLength: 0, push: { url: '/', identity: '', variant: '', vary: [], gen: 1, drop: true } }, new Uint8Array(0));
    expect(ready).toEqual(['b']);
    expect(cache.match(lookup('/a.js'))).toBeUndefined();
    expect(events.dropped).toEqual([['invalidated', 2]]);
    cache.put(...push('/c.js', 'old', { gen: 0 }));
    expect(cache.match(lookup('/c.js'))).toBeUndefined();
    cache.put(...push('/c.js', 'new', { gen: 1 }));
    expect(cache.match(lookup('/c.js'))).toMatchObject({ status: 200 });
    expect(cache.idle).toBe(true);
  });
});
