import { request } from 'undici';
import { bearer } from '../control/dispatcher';
import { paths } from '../protocol';
import { call, CALL_MS, failureText, type ServerContext } from './context';
import type { CheckResult } from './types';

/**
 * Round-trip time and throughput to the server, as the client's calls see them (same pool, same
 * proxy). Round trip: `GET /healthz` five times on the connection the earlier checks opened, each
 * timed from the request to the end of its answer, the median. Throughput (with an accepted
 * token and a server that has the probe): 1 MiB down (`GET /api/v1/doctor?bytes=…`) and 1 MiB up
 * (`POST /api/v1/doctor`), up to three times each while a direction has taken under
 * {@link DIRECTION_BUDGET_MS}, each timed from the request to the end of its answer (so one round
 * trip is included), the median. Never a failure: a slow way works, slowly.
 */

const ROUND_TRIPS = 5;
const SAMPLE_BYTES = 1024 * 1024;
const SAMPLES = 3;
const DIRECTION_BUDGET_MS = 3_000;
/** Worth a warning: a page of 100 modules needs several round trips through the tunnel. */
const SLOW_RTT_MS = 250;
const SLOW_MBITS = 2;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const mbits = (bytes: number, ms: number) => (bytes * 8) / (ms * 1000);
const round1 = (n: number) => Math.round(n * 10) / 10;

/** One timed transfer: the request until the end of its answer, the answer read and dropped. */
async function transfer(ctx: ServerContext, direction: 'down' | 'up'): Promise<number> {
  const started = performance.now();
  const res = await request(ctx.endpoint.url(direction === 'down' ? `${paths.doctor}?bytes=${SAMPLE_BYTES}` : paths.doctor), {
    dispatcher: ctx.endpoint.dispatcher,
    method: direction === 'down' ? 'GET' : 'POST',
    headers: { authorization: bearer(ctx.token!), 'content-type': 'application/octet-stream' },
    body: direction === 'up' ? Buffer.alloc(SAMPLE_BYTES, 'devtunnel ') : undefined,
    headersTimeout: CALL_MS,
    bodyTimeout: CALL_MS,
  });
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Buffer).length;
  if (res.statusCode !== 200 || (direction === 'down' && bytes !== SAMPLE_BYTES)) throw new Error(`the probe answered ${res.statusCode}`);
  return performance.now() - started;
}

async function throughput(ctx: ServerContext, direction: 'down' | 'up'): Promise<number[]> {
  const times: number[] = [];
  const started = performance.now();
  while (times.length < SAMPLES && (times.length === 0 || performance.now() - started < DIRECTION_BUDGET_MS)) times.push(await transfer(ctx, direction));
  return times;
}

/** `probe`: whether the token was accepted and the server has `/api/v1/doctor` (else round trips only). */
export async function checkSpeed(ctx: ServerContext, probe: boolean): Promise<CheckResult> {
  const title = 'Speed';
  const rtts: number[] = [];
  try {
    for (let i = 0; i < ROUND_TRIPS; i++) rtts.push((await call(ctx, '/healthz')).ms);
  } catch (error) {
    return { id: 'speed', title, status: 'warn', summary: `Round trips to the server failed: ${failureText(error).text}.`, fix: 'The connection is unstable: run the doctor again.' };
  }
  const rtt = Math.round(median(rtts));
  const data: Record<string, unknown> = { rttMs: rtt, rttSamplesMs: rtts.map(Math.round) };
  const parts = [`round trip ${rtt} ms (median of ${ROUND_TRIPS} × GET /healthz)`];
  const slow: string[] = [];
  if (rtt > SLOW_RTT_MS) slow.push(`a round trip of ${rtt} ms makes every request through the tunnel slower by about twice that`);
  if (probe) {
    try {
      for (const direction of ['down', 'up'] as const) {
        const times = await throughput(ctx, direction);
        const rate = round1(mbits(SAMPLE_BYTES, median(times)));
        data[direction === 'down' ? 'downloadMbits' : 'uploadMbits'] = rate;
        data[direction === 'down' ? 'downloadSamplesMs' : 'uploadSamplesMs'] = times.map(Math.round);
        parts.push(`${direction === 'down' ? 'download' : 'upload'} ${rate} Mbit/s (median of ${times.length} × 1 MiB, a round trip included)`);
        if (rate < SLOW_MBITS) slow.push(`${direction === 'down' ? 'requests with bodies come down' : 'pages go up'} at ${rate} Mbit/s`);
      }
    } catch (error) {
      parts.push(`throughput not measured (${failureText(error).text})`);
    }
  } else {
    parts.push('throughput not measured (it needs an accepted token and a server with /api/v1/doctor)');
  }
  const text = `${parts.join('; ')}.`;
  const summary = text.charAt(0).toUpperCase() + text.slice(1);
  if (slow.length) return { id: 'speed', title, status: 'warn', summary, fix: `The tunnel works, slowly: ${slow.join('; ')}. A closer server, or a network without the detour (VPN, proxy), would help.`, data };
  return { id: 'speed', title, status: 'pass', summary, data };
}
