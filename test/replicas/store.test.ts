import { channelOf, createRedisStore, type StoreEvent } from '../../packages/server/src/cluster/store';
import { silentLogger } from '../../packages/server/src/logger';
import { startRedis, type TestRedis } from '../helpers/redis';
import { waitFor } from '../helpers/tunnel';

/** The store against a real Redis: what two installations sharing one server on two DB numbers see. */
describe('the replicas\' store in Redis', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startRedis();
  }, 60_000);

  afterAll(async () => {
    await redis?.stop();
  });

  test('installations on different DB numbers of one Redis hear only their own events', async () => {
    const heard: Record<string, StoreEvent[]> = { a1: [], b1: [], c2: [] };
    const stores = {
      a1: createRedisStore(`${redis.url}/1`, undefined, silentLogger),
      b1: createRedisStore(`${redis.url}/1`, undefined, silentLogger),
      c2: createRedisStore(`${redis.url}/2`, undefined, silentLogger),
    };
    try {
      for (const [name, store] of Object.entries(stores)) await store.subscribe((e) => heard[name]!.push(e), () => {});
      await waitFor(() => Object.values(stores).every((s) => s.up), 5_000, 'the stores connected');
      const event: StoreEvent = { type: 'released', clientId: 'ann@laptop:1#k', gen: 7 };
      // Subscriptions complete asynchronously: publish until the same DB's other store hears it.
      await waitFor(async () => {
        await stores.a1.publish(event);
        return heard.b1!.length > 0;
      }, 5_000, 'the event in DB 1');
      await stores.c2.publish({ type: 'released', clientId: 'bob@laptop:1#k', gen: 8 });
      await waitFor(() => heard.a1!.some((e) => e.type === 'released' && e.clientId === 'ann@laptop:1#k') && heard.c2!.length > 0, 5_000, 'each DB its own event');
      expect(heard.c2!.every((e) => e.type === 'released' && e.clientId === 'bob@laptop:1#k')).toBe(true);
      expect([...heard.a1!, ...heard.b1!].every((e) => e.type === 'released' && e.clientId === 'ann@laptop:1#k')).toBe(true);
      expect([channelOf(0), channelOf(2)]).toEqual(['dt:events', 'dt:events:2']);
    } finally {
      await Promise.all(Object.values(stores).map((s) => s.close()));
    }
  });
});
