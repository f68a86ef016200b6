// One autocannon run in its own process, so the load generator's CPU is accounted apart from the
// bench script's. Usage: node load.mjs <url> <connections> <seconds>; prints one JSON line.
import autocannon from 'autocannon';

const [url, connections, seconds] = process.argv.slice(2);
autocannon({ url, connections: Number(connections), duration: Number(seconds), pipelining: 1 }, (error, r) => {
  if (error) throw error;
  console.log(JSON.stringify({ rps: r.requests.average, total: r.requests.total, mean: r.latency.mean, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx }));
});
