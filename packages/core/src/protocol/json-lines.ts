/**
 * Output of JSON lines, shared by the `devtunnel` CLI (`--json`) and the tunnel server's log:
 * lines gathered into few writes, and objects closed with their fields' own JSON.
 */

/**
 * A writer that gathers lines and writes them together, at most `delayMs` after the first one or
 * once `maxBytes` are waiting: one syscall (and one wake-up of whoever reads the log: a container
 * runtime, a terminal) for many request lines under load. `flush()` writes what is pending at once
 * (the CLIs call it on exit); the timer never keeps a process alive.
 */
export function createBatchedWriter(write: (text: string) => void, delayMs = 50, maxBytes = 64 * 1024): { write(line: string): void; flush(): void } {
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const text = pending;
    pending = '';
    write(text);
  };
  return {
    write(line) {
      pending += line;
      if (pending.length >= maxBytes) return flush();
      if (!timer) {
        timer = setTimeout(flush, delayMs);
        timer.unref();
      }
    },
    flush,
  };
}

/**
 * The end of a JSON object whose first members are written already: `,"a":1}` for `{ a: 1 }`, `}`
 * for no or no own fields. The fields' own JSON, so a line needs no copy of the object.
 */
export function closingFields(fields: object | undefined): string {
  if (fields === undefined) return '}';
  const json = JSON.stringify(fields);
  return json.length > 2 ? ',' + json.slice(1) : '}';
}
