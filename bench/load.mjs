// One autocannon run in its own process, so the load generator's CPU is accounted apart from the
// bench script's. Usage: node load.mjs <url> <connections> <seconds> [headers JSON]; prints one
// JSON line (with `cpuUs`, the load generator's own CPU over the run). The optional last argument
// is a list of header objects: each connection sends them in turn, one request each, round-robin;
// autocannon builds every request of the list once, up front, so a list costs the load generator
// no more per request than one fixed request does.
import autocannon from 'autocannon';

const [url, connections, seconds, headers] = process.argv.slice(2);
const requests = headers ? JSON.parse(headers).map((h) => ({ headers: h })) : undefined;
const cpuBefore = process.cpuUsage();
autocannon({ url, connections: Number(connections), duration: Number(seconds), pipelining: 1, requests }, (error, r) => {
  if (error) throw error;
  const cpu = process.cpuUsage(cpuBefore);
  console.log(JSON.stringify({ cpuUs: cpu.user + cpu.system, rps: r.requests.average, total: r.requests.total, mean: r.latency.mean, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx }));
});
