import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { joinSockets } from './join-sockets.js';

/**
 * The first process inside the sandbox (sandbox.ts). The sandbox has a network namespace of its
 * own, with only loopback: this listens on 127.0.0.1:<port> there — the port of the app's URL —
 * and carries each connection over the Unix socket cc-ci bound in, to the app under test and
 * nowhere else. Then it starts the repository's program (behind setpriv, which drops the
 * relay's user and capabilities) and ends with its exit status.
 *
 *   node sandbox-relay.js <port> <socket> <cmd> [args…]
 */

const [portText, socket, cmd, ...args] = process.argv.slice(2);
const port = Number(portText);
if (!Number.isInteger(port) || port < 1 || port > 65535 || !socket || !cmd) {
  process.stderr.write('usage: sandbox-relay <port> <socket> <cmd> [args...]\n');
  process.exit(2);
}

const server = createServer((client) => joinSockets(client, connect(socket)));

server.on('error', (e) => {
  process.stderr.write(`cc-ci sandbox: cannot listen on 127.0.0.1:${port}: ${e.message}\n`);
  process.exit(125);
});

server.listen(port, '127.0.0.1', () => {
  // The command drops what the relay may hold (its own user, the low-port capability): sandbox.ts.
  const child = spawn(cmd, args, { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  child.on('error', (e) => {
    process.stderr.write(`cc-ci sandbox: cannot start ${cmd}: ${e.message}\n`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => {
    server.close();
    process.exit(code ?? (signal ? 128 + 15 : 1));
  });
});
