// Epoch seconds → ISO 8601 text (UTC, to the millisecond), as rows, views and pushes carry
// times. One batch formats the same instant many times over (every row and view of a change
// shares its `now`), so the last answer is kept: Date#toISOString showed in the engine's profile.

let lastMs = Number.NaN;
let lastText = '';

export function isoTime(epochS: number): string {
  const ms = Math.round(epochS * 1000);
  if (ms !== lastMs) {
    lastText = new Date(ms).toISOString(); // throws on a non-finite time, as before
    lastMs = ms;
  }
  return lastText;
}
