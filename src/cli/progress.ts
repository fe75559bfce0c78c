// A one-line progress bar on stderr, drawn only when stderr is a terminal (so logs, pipes
// and CI stay clean) and redrawn at most every 100 ms.

export interface Progress {
  /** Fraction done in [0, 1], with an optional label. */
  update(fraction: number, label?: string): void;
  /** Clears the line. */
  done(): void;
}

const NOOP: Progress = { update: () => {}, done: () => {} };

export function progressBar(
  title: string,
  stream: NodeJS.WriteStream = process.stderr,
  now: () => number = () => performance.now(),
): Progress {
  if (!stream.isTTY) return NOOP;
  let last = -Infinity;
  let drawn = false;
  return {
    update(fraction, label = '') {
      const t = now();
      if (t - last < 100 && fraction < 1) return;
      last = t;
      const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
      const cols = Math.max(20, (stream.columns ?? 80) - title.length - label.length - 12);
      const width = Math.min(40, cols);
      const full = Math.round(f * width);
      const bar = `${'█'.repeat(full)}${'░'.repeat(width - full)}`;
      stream.write(`\r${title} ${bar} ${String(Math.floor(f * 100)).padStart(3)}% ${label}\x1b[K`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
