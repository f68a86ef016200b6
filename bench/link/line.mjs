// The emulated line (emulator.mjs) in a process of its own, driven over IPC, so that its timers
// do not wait behind the load generator's or anyone else's work. Start it with child_process.fork;
// send { id, op, ...args }, get { id, result } or { id, error } back:
//   { op: 'open', name, port }      → { port }   a leg to 127.0.0.1:port
//   { op: 'configure', settings }   → null       LineSettings of emulator.mjs
//   { op: 'bytes' } → { [leg]: { up, down, connections } };  { op: 'resetBytes' } → null
//   { op: 'close' }                 → null, then the process exits
import { createLine } from './emulator.mjs';

const line = createLine();
const ops = {
  open: async ({ name, port }) => ({ port: (await line.open(port, name)).port }),
  configure: ({ settings }) => (line.configure(settings), null),
  bytes: () => line.bytes(),
  resetBytes: () => (line.resetBytes(), null),
  close: async () => {
    await line.close();
    setImmediate(() => process.exit(0));
    return null;
  },
};

process.on('message', async ({ id, op, ...args }) => {
  try {
    if (!(op in ops)) throw new Error(`line: unknown op ${op}`);
    process.send({ id, result: await ops[op](args) });
  } catch (error) {
    process.send({ id, error: String(error?.message ?? error) });
  }
});
// The parent gone (a crash, Ctrl+C): nothing to carry any more.
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
