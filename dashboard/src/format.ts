// Display helpers: every one shows "—" for a value that is not there, never a made-up 0.

const DASH = "—";

function present(value: number | null | undefined): value is number {
  return value !== null && value !== undefined && Number.isFinite(value);
}

export function fmtNumber(value: number | null | undefined, digits = 2): string {
  return present(value) ? value.toFixed(digits) : DASH;
}

export function fmtPercent(share: number | null | undefined, digits = 1): string {
  return present(share) ? `${(share * 100).toFixed(digits)} %` : DASH;
}

export function fmtTime(epochSeconds: number | null | undefined): string {
  return present(epochSeconds) ? new Date(epochSeconds * 1000).toLocaleTimeString() : DASH;
}

export function fmtDateTime(epochSeconds: number | null | undefined): string {
  return present(epochSeconds) ? new Date(epochSeconds * 1000).toLocaleString() : DASH;
}

export function fmtDuration(seconds: number | null | undefined): string {
  if (!present(seconds)) return DASH;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

/** A short form of a hash or long id, the full value belonging in a title attribute. */
export function shorten(text: string, keep = 12): string {
  return text.length > keep + 1 ? `${text.slice(0, keep)}…` : text;
}

/** A number to `digits` significant digits (a p-value: 0.0012, 3.4e-9). */
export function fmtSignificant(value: number | null | undefined, digits = 2): string {
  return present(value) ? value.toPrecision(digits) : DASH;
}
