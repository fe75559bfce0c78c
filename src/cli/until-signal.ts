// How a long-running command (serve, worker) ends: on SIGINT or SIGTERM it closes gracefully
// and exits 0 (1 when closing failed); a second signal exits at once. Anything left holding the
// event loop afterwards (a stray socket, a driver's timer) must not keep a stopped process alive.

export function runUntilSignal(command: string, close: () => Promise<void>): Promise<number> {
  const code = new Promise<number>((done) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        process.stderr.write(`dispatch ${command}: ${signal} again, exiting now\n`);
        process.exit(130);
      }
      signalled = true;
      process.stdout.write(`dispatch ${command}: ${signal}: shutting down\n`);
      close().then(
        () => done(0),
        (err: unknown) => {
          process.stderr.write(`dispatch ${command}: shutdown failed: ${(err as Error).message}\n`);
          done(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  return code.then((c) => {
    setTimeout(() => process.exit(c), 3000).unref();
    return c;
  });
}
