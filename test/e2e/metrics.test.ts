import { useEchoSuite, fetchBuffer, startClient, startServer, TOKEN } from '../helpers/tunnel';

/** /metrics in Prometheus text format, fed by domain events and read from the registry. */
describe('Prometheus metrics', () => {
  const suite = useEchoSuite();

  function value(text: string, series: string): number | undefined {
    const line = text.split('\n').find((l) => l.startsWith(series + ' '));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  }

  test('tunnels by state, polls, requests by class and code, bytes, latency histograms, process metrics', async () => {
    const server = await startServer();
    suite.defer(() => server.close());
    const client = await startClient(server, { port: suite.app.port });
    const base = `http://127.0.0.1:${client.info.port}`;
    for (let i = 0; i < 3; i++) await fetchBuffer(`${base}/m?status=200`, { dispatcher: suite.dispatcher });
    await fetchBuffer(`${base}/m?status=404`, { dispatcher: suite.dispatcher });
    await fetchBuffer(`${base}/upload`, { method: 'POST', body: 'x'.repeat(1000), dispatcher: suite.dispatcher });
    await client.close();
    await fetchBuffer(`${base}/after-close`, { dispatcher: suite.dispatcher }); // 503 tunnel_offline: no tunnel, not counted as a tunnelled request
    await fetchBuffer(`${server.url}/api/v1/tunnels`, { dispatcher: suite.dispatcher }); // 401

    const res = await fetchBuffer(`${server.url}/metrics`, { dispatcher: suite.dispatcher });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.text;
    expect(value(text, 'devtunnel_requests_total{class="2xx",code=""}')).toBe(4);
    expect(value(text, 'devtunnel_requests_total{class="4xx",code=""}')).toBe(1);
    expect(value(text, 'devtunnel_bytes_total{direction="in"}')).toBe(1000);
    expect(value(text, 'devtunnel_bytes_total{direction="out"}')).toBeGreaterThan(0);
    expect(value(text, 'devtunnel_request_duration_seconds_count')).toBe(5);
    expect(value(text, 'devtunnel_queue_wait_seconds_count')).toBe(5);
    expect(value(text, 'devtunnel_tunnels_registered_total')).toBe(1);
    expect(value(text, 'devtunnel_tunnels_closed_total{reason="deregistered"}')).toBe(1);
    // Closed by its owner (deregistered): listed closed, not expired; its port stays reserved.
    expect(value(text, 'devtunnel_tunnels{state="closed"}')).toBe(1);
    expect(value(text, 'devtunnel_tunnels{state="expired"}')).toBe(0);
    expect(value(text, 'devtunnel_tunnels{state="connected"}')).toBe(0);
    expect(value(text, 'devtunnel_auth_failures_total')).toBe(1);
    expect(value(text, 'devtunnel_polls_waiting')).toBe(0);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).not.toContain(TOKEN);
  });

  test('polls waiting and connected tunnels are read live', async () => {
    const server = await startServer();
    suite.defer(() => server.close());
    const client = await startClient(server, { port: suite.app.port, polls: 4 });
    suite.defer(() => client.close());
    await fetchBuffer(`http://127.0.0.1:${client.info.port}/warm`, { dispatcher: suite.dispatcher });
    const text = (await fetchBuffer(`${server.url}/metrics`, { dispatcher: suite.dispatcher })).text;
    expect(value(text, 'devtunnel_tunnels{state="connected"}')).toBe(1);
    expect(value(text, 'devtunnel_polls_waiting')).toBeGreaterThanOrEqual(1);
  });
});
