// What choosing who serves a route's request costs by itself: the server's own selection code
// (packages/server/src/routes/selection.ts, transpiled as it is), then the member lookup and its
// state, as tunnel-port/steps.ts does them, over 1,000 members. The bench's routes section sets it
// against the server's CPU per request of the same requests, measured in the same run: a share
// of a request, not a timing, so a busy machine moves both sides alike.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The server's selection module, transpiled into the repository (so that its imports resolve). */
async function loadSelection() {
  const source = readFileSync(join(root, 'packages/server/src/routes/selection.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  const dir = join(root, '.artifacts', 'bench-selection');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `selection-${process.pid}.mjs`);
  writeFileSync(file, outputText);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * Nanoseconds per request of the selection for each kind of header set (`{ kind: headers[] }`,
 * the bench's own), the fastest of `repeats` passes of `iterations` requests each: the cost of
 * the code, not of whatever else ran at that moment.
 */
export async function selectionCost(kinds, members, { iterations = 200_000, repeats = 7 } = {}) {
  const { selectedName } = await loadSelection();
  const state = () => 'offline';
  const byName = new Map(members.map((name) => [name, { name, state }]));
  const select = (req) => {
    const name = selectedName(req);
    const member = name === undefined ? undefined : byName.get(name);
    return member !== undefined && member.state() === 'connected';
  };
  const out = {};
  for (const [kind, headerSets] of Object.entries(kinds)) {
    // Node's IncomingMessage headers: lower-case names, one object per request.
    const reqs = headerSets.map((h) => ({ headers: Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v])) }));
    let best = Infinity;
    let live = 0;
    for (let r = 0; r < repeats; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) if (select(reqs[i % reqs.length])) live++;
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / iterations);
    }
    if (live !== 0) throw new Error(`selection: ${kind} selected a live member`);
    out[kind] = best;
  }
  return out;
}
