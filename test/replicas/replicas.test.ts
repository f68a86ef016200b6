import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import { createBalancer, type Balancer } from '../helpers/balancer';
import { runBin, SERVER_BIN, type Child } from '../helpers/child';
import { closeServer, listen } from '../helpers/net';
import { startRedis, type TestRedis } from '../helpers/redis';
import { fastTimings, freeRange, patientTimings, startClient, TOKEN, waitFor } from '../helpers/tunnel';

/**
 * Several tunnel-server replicas (real processes) sharing a real Redis, behind a round-robin
 * balancer per port as a Kubernetes Service would be. Each replica has an address of its own on
 * loopback (127.0.0.1-3), as pods have their own IPs: all listen on the same ports.
 */

const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const FRONT = '127.0.0.10';

// Patient request deadlines: a request caught in a roll waits for the client to register again
// elsewhere, across three processes and Redis; none of these tests is about a deadline.
const flags = Object.entries({ ...fastTimings, ...patientTimings }).flatMap(([k, v]) => [`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(v)]);

interface Replica {
  host: string;
  child: Child;
}

/**
 * One laptop app: answers who it is; `?delay=N` waits N ms; `/stream` sends a first line and
 * never ends. `cut` lists the requests whose browser left before their answer was over.
 */
async function laptopApp(who: string): Promise<{ server: Server; port: number; wss: WebSocketServer; cut: string[] }> {
  const cut: string[] = [];
  const server = createServer((req, res) => {
    res.once('close', () => !res.writableFinished && cut.push(req.url!));
    if (req.url!.startsWith('/stream')) return void res.write(`${who} streams\n`);
    const delay = Number(new URL(req.url!, 'http://x').searchParams.get('delay') ?? 0);
    setTimeout(() => res.end(`${who} ${req.url}`), delay);
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`${who}:${m.toString()}`)));
  return { server, port: await listen(server), wss, cut };
}

/** A GET on a new connection (the balancer picks a replica per connection); never throws. */
function get(host: string, port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; code?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, headers, agent: false, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, code: res.headers['x-devtunnel-error'] as string | undefined }));
      res.on('error', (e) => resolve({ status: 0, body, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: '', error: e.message }));
    req.end();
  });
}

describe('several replicas sharing Redis', () => {
  let redis: TestRedis;
  let control: number;
  let range: { from: number; to: number; range: string };
  let routePort: number;
  let realApp: Server;
  let realPort: number;
  let replicas: Replica[] = [];
  let front: Balancer;
  const cleanup: Array<() => Promise<unknown>> = [];

  async function startReplica(host: string): Promise<Replica> {
    const child = runBin(SERVER_BIN, ['--host', host, '--port', String(control), '--tunnel-ports', range.range, '--store', redis.url, '--advertise-url', `http://${host}:${control}`, '--route', `cart:${routePort}=http://127.0.0.1:${realPort}`, ...flags], { DEVTUNNEL_TOKEN: TOKEN });
    await child.waitForLine((l) => l.includes('"server.listening"'), 15_000);
    return { host, child };
  }

  beforeAll(async () => {
    redis = await startRedis();
    const ports = await freeRange(2);
    control = ports.from;
    routePort = ports.to;
    range = await freeRange(10);
    realApp = createServer((req, res) => res.end(`real ${req.url}`));
    realPort = await listen(realApp);
  }, 60_000);

  beforeEach(async () => {
    replicas = await Promise.all(HOSTS.map(startReplica));
    front = createBalancer(FRONT, HOSTS);
    await front.expose(control);
    await front.expose(routePort);
    for (let p = range.from; p <= range.to; p++) await front.expose(p);
  }, 60_000);

  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
    await front.close();
    await Promise.all(replicas.map((r) => r.child.stop('SIGKILL')));
    // A clean slate in Redis for the next test.
    await redis.start().catch(() => {});
    await redis.flush();
  }, 60_000);

  afterAll(async () => {
    await redis?.stop();
    await closeServer(realApp);
  });

  async function developer(name: string, server = `http://${FRONT}:${control}`) {
    const app = await laptopApp(name);
    cleanup.push(async () => {
      for (const c of app.wss.clients) c.terminate();
      app.wss.close();
      await closeServer(app.server);
    });
    const client = await startClient({ url: server }, { port: app.port, name, route: 'cart' });
    cleanup.push(() => client.close());
    return Object.assign(client, { app });
  }

  /** The replica that logged the registration of `name` (its log lines are written in batches). */
  async function owner(name: string): Promise<Replica> {
    const holds = (r: Replica) => r.child.lines.some((l) => l.includes('"tunnel.registered"') && l.includes(`"tunnel":"${name}"`));
    await waitFor(() => replicas.some(holds), 5_000, `the registration of ${name} in a replica's log`);
    return replicas.find(holds)!;
  }

  test('every replica serves the one tunnel: its port, its route, its WebSocket', async () => {
    const ann = await developer('ann');
    const port = ann.info.port;
    // Straight at each replica, and through the balancer (round robin over all three).
    for (const host of [...HOSTS, FRONT, FRONT, FRONT]) {
      const res = await get(host, port, `/p?via=${host}`);
      expect([host, res.status, res.body]).toEqual([host, 200, `ann /p?via=${host}`]);
      const routed = await get(host, routePort, '/r', { cookie: 'devtunnel=ann' });
      expect([host, routed.body]).toEqual([host, 'ann /r']);
      const fallback = await get(host, routePort, '/r');
      expect([host, fallback.body]).toEqual([host, 'real /r']);
    }
    const holder = (await owner('ann')).host;
    const other = HOSTS.find((h) => h !== holder)!;
    const ws = new WebSocket(`ws://${other}:${port}/hmr`);
    await once(ws, 'open');
    ws.send('ping');
    const [reply] = await once(ws, 'message');
    expect(String(reply)).toBe('ann:ping');
    ws.close();
    // The list is the same on every replica, the route's members too.
    for (const host of HOSTS) {
      const list = (await (await fetch(`http://${host}:${control}/api/v1/tunnels`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { tunnels: Array<{ name: string; state: string; port: number }>; routes: Array<{ name: string; members: Array<{ name: string; port: number; state: string }> }> };
      expect(list.tunnels.filter((t) => t.state === 'connected').map((t) => [t.name, t.port])).toEqual([['ann', port]]);
      expect([host, list.routes.find((r) => r.name === 'cart')!.members]).toEqual([host, [{ name: 'ann', port, state: 'connected' }]]);
    }
    // The route's page on a replica that does not hold ann offers her, and choosing her works there.
    const page = await fetch(`http://${other}:${routePort}/__devtunnel/`);
    const token = /devtunnel_page=([0-9a-f]{32})/.exec(page.headers.get('set-cookie') ?? '')![1]!;
    expect(await page.text()).toContain('Use ann');
    const chosen = await fetch(`http://${other}:${routePort}/__devtunnel/`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `devtunnel_page=${token}`, 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: `token=${token}&use=ann`,
    });
    expect([chosen.status, chosen.headers.get('set-cookie')]).toEqual([303, expect.stringMatching(/^devtunnel=ann;/)]);
  });

  test('two developers registered on different replicas, each served through every replica', async () => {
    const ann = await developer('ann', `http://${HOSTS[0]}:${control}`);
    const bob = await developer('bob', `http://${HOSTS[1]}:${control}`);
    expect(ann.info.port).not.toBe(bob.info.port);
    for (let i = 0; i < 6; i++) {
      expect((await get(FRONT, ann.info.port, `/a${i}`)).body).toBe(`ann /a${i}`);
      expect((await get(FRONT, bob.info.port, `/b${i}`)).body).toBe(`bob /b${i}`);
      expect((await get(FRONT, routePort, `/c${i}`, { 'x-devtunnel': i % 2 ? 'ann' : 'bob' })).body).toBe(`${i % 2 ? 'ann' : 'bob'} /c${i}`);
    }
  });

  test('a tunnel port another program holds on one replica: that replica registers on the next ports', async () => {
    const squatter = createServer();
    squatter.listen(range.from, HOSTS[0]);
    await once(squatter, 'listening');
    cleanup.push(() => closeServer(squatter));
    // The store alone would offer the lowest free port every time; the replica skips what it cannot listen on.
    const ann = await developer('ann', `http://${HOSTS[0]}:${control}`);
    const bob = await developer('bob', `http://${HOSTS[0]}:${control}`);
    expect([ann.info.port, bob.info.port]).toEqual([range.from + 1, range.from + 2]);
    expect((await get(HOSTS[0]!, ann.info.port, '/a')).body).toBe('ann /a');
    expect((await get(HOSTS[1]!, bob.info.port, '/b')).body).toBe('bob /b');
  });

  test('a browser that leaves in the middle of an answer through the hop cancels the request at the laptop', async () => {
    const ann = await developer('ann');
    const holder = (await owner('ann')).host;
    const other = HOSTS.find((h) => h !== holder)!;
    const browser = request({ host: other, port: ann.info.port, path: '/stream?via=hop', agent: false });
    browser.on('error', () => {});
    browser.end();
    const [answer] = (await once(browser, 'response')) as [IncomingMessage];
    expect(String((await once(answer, 'data'))[0])).toBe('ann streams\n');
    browser.destroy();
    await waitFor(() => ann.app.cut.includes('/stream?via=hop'), 10_000, 'the laptop app\'s request cancelled');
  });

  test('the replica holding a tunnel is killed mid-traffic: coded failures only, then every replica serves it again', async () => {
    const ann = await developer('ann');
    const port = ann.info.port;
    const victim = await owner('ann');
    // Slow requests in flight through every replica when the holder dies.
    const inFlight = HOSTS.map((h) => get(h, port, '/slow?delay=2000'));
    await new Promise((r) => setTimeout(r, 300));
    const killedAt = Date.now();
    await victim.child.stop('SIGKILL');
    front.remove(victim.host);
    const outcomes = await Promise.all(inFlight);
    // Each either finished, or failed with a code (a cut connection only on the dead replica itself).
    for (const [i, o] of outcomes.entries()) {
      if (HOSTS[i] === victim.host) expect(o.status === 200 || o.status === 0 || o.code !== undefined).toBe(true);
      else expect(o.status === 200 || o.code !== undefined).toBe(true);
    }
    const alive = HOSTS.filter((h) => h !== victim.host);
    await waitFor(async () => (await Promise.all(alive.map((h) => get(h, port, '/back')))).every((r) => r.body === 'ann /back'), 30_000, 'every live replica serving ann again');
    const failoverMs = Date.now() - killedAt;
    expect(failoverMs).toBeGreaterThan(0); // reported by the bench; here only that it happened
    // Same port, same name, and routes follow.
    expect((await get(FRONT, routePort, '/r', { cookie: 'devtunnel=ann' })).body).toBe('ann /r');
  });

  test('the holder is rolled with SIGTERM: its client moves, and every request is answered by the tunnel', async () => {
    const ann = await developer('ann');
    const port = ann.info.port;
    const victim = await owner('ann');
    front.remove(victim.host);
    const results: Array<{ status: number; code?: string }> = [];
    let rolling = true;
    const traffic = (async () => {
      let i = 0;
      while (rolling) results.push(await get(FRONT, port, `/t${i++}`));
    })();
    expect(await victim.child.stop('SIGTERM')).toBe(0);
    const alive = HOSTS.filter((h) => h !== victim.host);
    await waitFor(async () => (await Promise.all(alive.map((h) => get(h, port, '/moved')))).every((r) => r.body === 'ann /moved'), 30_000, 'ann served by the other replicas');
    rolling = false;
    await traffic;
    expect(results.length).toBeGreaterThan(0);
    // The requests that arrived while it moved waited and followed it: none failed.
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
  });

  test('Redis goes away: held tunnels keep working, registration is a coded 503, all recovers by itself', async () => {
    const ann = await developer('ann');
    await redis.stop();
    for (const host of HOSTS) expect((await get(host, ann.info.port, '/still')).body).toBe('ann /still');
    const refused = await fetch(`http://${HOSTS[0]}:${control}/api/v1/tunnels`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: 'bob@laptop:1#k', name: 'bob' }),
    });
    expect([refused.status, refused.headers.get('x-devtunnel-error')]).toEqual([503, 'store_unavailable']);
    const ready = (await (await fetch(`http://${HOSTS[1]}:${control}/readyz`)).json()) as { store: string };
    expect(ready.store).toBe('down');
    const metrics = await (await fetch(`http://${HOSTS[2]}:${control}/metrics`)).text();
    expect(metrics).toMatch(/devtunnel_store_up 0/);

    await redis.start();
    // A client that registers while it is away gets in once it is back, on its own.
    const bobStarted = developer('bob');
    await waitFor(async () => ((await (await fetch(`http://${HOSTS[1]}:${control}/readyz`)).json()) as { store: string }).store === 'up', 20_000, 'store up again');
    const bob = await bobStarted;
    expect((await get(FRONT, bob.info.port, '/b')).body).toBe('bob /b');
    // Ann's reservation and claim are still there: every replica routes to her, bob got another port.
    expect(bob.info.port).not.toBe(ann.info.port);
    for (const host of HOSTS) expect((await get(host, ann.info.port, '/after')).body).toBe('ann /after');
  });

  test('a tunnel whose client went quiet is listed offline by every replica, and connected again on its next poll', async () => {
    const res = await fetch(`http://${HOSTS[0]}:${control}/api/v1/tunnels`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: 'quiet@laptop:1#k', name: 'quiet' }),
    });
    const { id, secret } = (await res.json()) as { id: string; secret: string };
    const states = async () =>
      Promise.all(
        HOSTS.map(async (host) => {
          const list = (await (await fetch(`http://${host}:${control}/api/v1/tunnels`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { tunnels: Array<{ name: string; state: string }> };
          return list.tunnels.find((t) => t.name === 'quiet')?.state;
        }),
      );
    // No poll after the registration: offline once the lease (1.5 s here) lapses, on every replica.
    await waitFor(async () => (await states()).every((s) => s === 'offline'), 10_000, 'offline on every replica');
    // Polls (each held until its 1 s timeout, one after another, as a client does) bring it back,
    // and every replica says so. Polling on keeps it connected while the test looks.
    let polling = true;
    const polls = (async () => {
      while (polling) {
        const res = await fetch(`http://${HOSTS[0]}:${control}/api/v1/tunnels/${id}/poll`, { headers: { authorization: `Bearer ${secret}` } }).catch(() => undefined);
        await res?.body?.cancel();
      }
    })();
    try {
      await waitFor(async () => (await states()).every((s) => s === 'connected'), 10_000, 'connected on every replica');
    } finally {
      polling = false;
      await polls;
    }
  });

  test('two replicas take one tunnel over at once: exactly one keeps it', async () => {
    const register = (host: string) =>
      fetch(`http://${host}:${control}/api/v1/tunnels`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ clientId: 'race@laptop:1#k', name: 'race', instance: '0123456789abcdef0123456789abcdef' }),
      }).then(async (r) => ({ host, status: r.status, body: (await r.json()) as { id: string; secret: string; port: number } }));
    const [a, b] = await Promise.all([register(HOSTS[0]!), register(HOSTS[1]!)]);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body.port).toBe(b.body.port);
    const alive = async (r: typeof a) => (await fetch(`http://${r.host}:${control}/api/v1/tunnels/${r.body.id}`, { headers: { authorization: `Bearer ${r.body.secret}` } })).status;
    await waitFor(async () => [await alive(a), await alive(b)].filter((s) => s === 200).length === 1, 10_000, 'exactly one claim left');
    // And it stays so.
    await new Promise((r) => setTimeout(r, 500));
    expect([await alive(a), await alive(b)].filter((s) => s === 200)).toHaveLength(1);
  });
});
