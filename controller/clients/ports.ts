import net from 'node:net';

/**
 * Host ports for the local ingress mode. A port is free when no live app of this controller
 * holds it (the store's lease says) and nothing on the host listens on it (a bind test says).
 */

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '0.0.0.0', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export async function pickFreePort(range: readonly [number, number], taken: ReadonlySet<number>): Promise<number> {
  const [lo, hi] = range;
  const size = hi - lo + 1;
  // Start at a random offset so concurrent controllers and quick reruns rarely race for one port.
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const port = lo + ((start + i) % size);
    if (taken.has(port)) continue;
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port left in the ingress range ${lo}-${hi}`);
}
