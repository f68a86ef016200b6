import { Readable } from 'node:stream';
import { request } from 'undici';
import { bearer } from '../control/dispatcher';
import { discard } from '../http-call';
import { STREAM_PROOF_MS } from '../client/streams';
import { HEADER, paths } from '../protocol';
import { CALL_MS, failureText, type ServerContext } from './context';
import type { CheckResult } from './types';

/**
 * Whether the way to the server lets streams through, the way the client's streams need it
 * (client/streams.ts: a downstream proves itself when its first notice arrives, an upstream when
 * the server reads its first bytes). Measured on the server's probe (`/api/v1/doctor`), which
 * tells by content, not by timing:
 * - answers: the probe's first line comes at once, its second `holdMs` later. The first line
 *   read alone, with the answer still open, proves answers stream; both together mean a proxy
 *   held the answer until its end.
 * - uploads: the doctor sends a first line and keeps the upload open; the server says, at the
 *   first bytes it reads, whether the upload had ended by then. A proxy that buffers uploads
 *   hands over nothing until the doctor ends it (after {@link UPLOAD_WAIT_MS} without an answer).
 */

/** How long an upload stays open waiting for the server's word on its first bytes. */
const UPLOAD_WAIT_MS = 3_000;

interface Line {
  [key: string]: unknown;
}

/** Reads `body` up to its first line; resolves a turn later with every line that had come by then. */
function firstLines(body: Readable): Promise<{ lines: Line[]; at: number }> {
  return new Promise((resolve, reject) => {
    let text = '';
    let at = 0;
    const settle = () => {
      body.off('data', onData);
      resolve({ lines: text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line), at });
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (at || !text.includes('\n')) return;
      at = performance.now();
      // A turn later: bytes that came in the same read as the first line (a buffered answer
      // handed over whole) have been parsed by then.
      setImmediate(settle);
    };
    body.on('data', onData);
    body.once('end', () => (at ? undefined : reject(new Error('the answer ended without a line'))));
    body.once('error', (e) => (at ? undefined : reject(e)));
  });
}

type Probe = { missing: true } | { missing?: false; streams: boolean; ms: number; detail: Line };

/** The answer probe: does the first line arrive alone? */
async function probeAnswers(ctx: ServerContext): Promise<Probe> {
  const started = performance.now();
  const res = await request(ctx.endpoint.url(paths.doctor), {
    dispatcher: ctx.endpoint.dispatcher,
    method: 'GET',
    headers: { authorization: bearer(ctx.token!) },
    headersTimeout: CALL_MS,
    bodyTimeout: CALL_MS,
  });
  try {
    if (res.statusCode === 404 && res.headers[HEADER.error] === 'not_found') return { missing: true };
    if (res.statusCode !== 200) throw new Error(`the probe answered ${res.statusCode}`);
    const { lines, at } = await firstLines(res.body);
    return { streams: lines.length === 1, ms: Math.round(at - started), detail: lines[0]! };
  } finally {
    discard(res.body);
  }
}

/** The upload probe: does the server read the first bytes of an upload that has not ended? */
async function probeUploads(ctx: ServerContext): Promise<Probe> {
  const started = performance.now();
  const upload = new Readable({ read() {} });
  upload.push('1\n');
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    upload.push('2\n');
    upload.push(null);
  };
  const timer = setTimeout(end, UPLOAD_WAIT_MS);
  try {
    const res = await request(ctx.endpoint.url(paths.doctor), {
      dispatcher: ctx.endpoint.dispatcher,
      method: 'POST',
      headers: { authorization: bearer(ctx.token!), 'content-type': 'application/octet-stream' },
      body: upload,
      headersTimeout: CALL_MS,
      bodyTimeout: CALL_MS,
    });
    try {
      if (res.statusCode === 404 && res.headers[HEADER.error] === 'not_found') return { missing: true };
      if (res.statusCode !== 200) throw new Error(`the probe answered ${res.statusCode}`);
      const { lines, at } = await firstLines(res.body);
      end();
      const first = lines[0]!;
      return { streams: first.complete === false, ms: Math.round(at - started), detail: first };
    } finally {
      discard(res.body);
    }
  } finally {
    clearTimeout(timer);
    end();
  }
}

export async function checkStreams(ctx: ServerContext, features: string[] | undefined): Promise<CheckResult> {
  const title = 'Streams';
  if (features && !features.includes('stream')) {
    return { id: 'streams', title, status: 'pass', summary: `The server offers no streams (features: ${features.join(', ') || 'none'}): the client uses long polls, which every proxy passes.` };
  }
  let answers: Probe;
  let uploads: Probe;
  try {
    answers = await probeAnswers(ctx);
    // Held answers: the client never opens its upstream (it follows a working downstream).
    uploads = answers.missing || !answers.streams ? answers : await probeUploads(ctx);
  } catch (error) {
    return { id: 'streams', title, status: 'warn', summary: `The stream probe failed: ${failureText(error).text}.`, fix: 'Not measured. The client tries its streams itself and falls back to long polls if they do not pass.' };
  }
  if (answers.missing || uploads.missing) {
    return { id: 'streams', title, status: 'skip', summary: 'This server has no probe (/api/v1/doctor: it is older than this client). The client tries its streams itself and falls back to long polls if they do not pass.' };
  }
  const data = { answersStream: answers.streams, uploadsStream: answers.streams ? uploads.streams : null, answerFirstLineMs: answers.ms, holdMs: answers.detail.holdMs ?? null, uploadAnswerMs: answers.streams ? uploads.ms : null };
  const held = typeof answers.detail.holdMs === 'number' ? `${answers.detail.holdMs / 1000} s` : 'seconds';
  if (!answers.streams) {
    return {
      id: 'streams',
      title,
      status: 'warn',
      summary: `Something on the way holds streamed answers back: the probe's two lines, sent ${held} apart, arrived together after ${answers.ms} ms. The client finds the same within ${STREAM_PROOF_MS / 1000} s and works on long polls instead (uploads were not probed: it opens no upstream then): every request still arrives, with a round trip more per request or burst.`,
      fix: 'Turn response buffering off for the control API in the proxy or ingress in front of the server (ingress-nginx: nginx.ingress.kubernetes.io/proxy-buffering: "off", which the generated manifests set); or accept the slower long polls.',
      data,
    };
  }
  if (!uploads.streams) {
    return {
      id: 'streams',
      title,
      status: 'warn',
      summary: `Answers stream (the probe's first line came alone after ${answers.ms} ms), but something on the way holds uploads back until they end: the server read the probe's upload only whole. The client finds the same and sends each answer as an upload of its own instead of on its upstream: it works, with a request more per answer.`,
      fix: 'Turn request buffering off for the control API in the proxy or ingress in front of the server (ingress-nginx: nginx.ingress.kubernetes.io/proxy-request-buffering: "off", which the generated manifests set).',
      data,
    };
  }
  return { id: 'streams', title, status: 'pass', summary: `Answers and uploads stream: an answer's first line came alone after ${answers.ms} ms, and the server read an upload's first bytes before its end. The client will carry requests on its two streams, with no poll or upload per request.`, data };
}
