/**
 * A TCP port free on 127.0.0.1 right now, for servers a test starts.
 *
 * Ports come from below the kernel's ephemeral range (32768+ by default), so an outgoing
 * connection made between this call and the server's bind cannot take the port, and a port
 * is never handed out twice in one process (bind(0) may return the same one again once it
 * is closed, which once gave two MariaDB servers the same port).
 */
import net from 'node:net';

const LOW = 20_000;
const HIGH = 32_000;
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free TCP port on 127.0.0.1 between ${LOW} and ${HIGH}`);
}
