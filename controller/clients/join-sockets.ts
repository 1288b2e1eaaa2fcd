import type { Socket } from 'node:net';

/** Carries bytes both ways between two sockets; an error or end on either closes both. */
export function joinSockets(a: Socket, b: Socket): void {
  a.pipe(b).pipe(a);
  const close = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close);
  b.on('error', close);
}
