import { request } from 'undici';
import type { EchoBody } from '../helpers/echo-app';
import { fastTimings, fetchBuffer, startClient, startServer, useEchoSuite, waitFor } from '../helpers/tunnel';

/**
 * How many polls a real client keeps on a real server: all of its `polls` while requests come,
 * a quarter of them once the tunnel has been quiet for a whole poll timeout (what 500 quiet tunnels
 * cost the server), and all again as soon as a request comes.
 */
describe('the client adapts its polls to traffic', () => {
  const suite = useEchoSuite();
  /**
   * The tests' 1 s poll timeout, so a quiet tunnel shows within seconds. Not shorter: "all 8
   * polls" lasts only until the first comes back empty, and a loaded machine must see it.
   */
  const pollTimeoutMs = fastTimings.pollTimeoutMs;

  async function setUp(transport: 'auto' | 'poll') {
    const server = await startServer();
    suite.defer(() => server.close());
    const client = await startClient(server, { port: suite.app.port, transport, polls: 8 });
    suite.defer(() => client.close());
    const tunnel = () => server.tunnels().find((t) => t.port === client.info.port)!;
    return { server, client, tunnel, base: `http://127.0.0.1:${client.info.port}` };
  }

  /** The most polls seen waiting over `ms`, looked at every 20 ms. */
  async function mostPollsOver(read: () => number, ms: number): Promise<number> {
    let most = 0;
    const until = Date.now() + ms;
    while (Date.now() < until) {
      most = Math.max(most, read());
      await new Promise((r) => setTimeout(r, 20));
    }
    return most;
  }

  test('on long polls: 8 while busy, 2 when quiet, and a burst on a quiet tunnel is served whole', async () => {
    const { tunnel, base } = await setUp('poll');
    await waitFor(() => tunnel().pollsWaiting === 8, 5_000, 'all 8 polls at start');
    await waitFor(() => tunnel().pollsWaiting === 2, 5_000, 'the quiet floor of 2 polls');
    // Quiet stays quiet: the two are renewed, no more come back.
    expect(await mostPollsOver(() => tunnel().pollsWaiting, 3 * pollTimeoutMs)).toBe(2);

    // A burst of 16 on 2 polls: each poll answer carries what was queued in its turn.
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) => fetchBuffer(`${base}/burst/${i}`, { dispatcher: suite.dispatcher })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(16).fill(200));
    expect(answers.map((a) => a.json<EchoBody>().url)).toEqual(Array.from({ length: 16 }, (_, i) => `/burst/${i}`));
    await waitFor(() => tunnel().pollsWaiting === 8, 5_000, 'all 8 polls back after the burst');
  });

  test('on streams: 2 polls for requests with a body, 1 when quiet, and an upload still goes at once', async () => {
    const { tunnel, base } = await setUp('auto');
    await waitFor(() => tunnel().downstream && tunnel().upstreams === 1, 5_000, 'both streams');
    await waitFor(() => tunnel().pollsWaiting === 1, 5_000, 'the quiet floor of 1 poll');
    expect(await mostPollsOver(() => tunnel().pollsWaiting, 3 * pollTimeoutMs)).toBe(1);

    const body = Buffer.alloc(100_000, 7);
    const uploads = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const res = await request(`${base}/upload/${i}`, { method: 'POST', body, dispatcher: suite.dispatcher });
        return { status: res.statusCode, echo: (await res.body.json()) as EchoBody };
      }),
    );
    expect(uploads.map((u) => [u.status, u.echo.bodyBytes])).toEqual([[200, 100_000], [200, 100_000], [200, 100_000]]);
    await waitFor(() => tunnel().pollsWaiting === 2, 5_000, 'both polls back after the uploads');
  });
});
