import { fmtNumber } from "../../format";
import type { Shadow } from "../../protocol";

const WIDTH = 600;
const PAD = 30;
const AXIS_Y = 50;

/** The shadow score delta's confidence interval on one axis, against 0 and `min_delta`. */
export function ShadowInterval({ shadow }: { shadow: Shadow }) {
  const { lower, upper, mean_delta: mean } = shadow;
  if (lower === null || upper === null || mean === null) {
    // No labelled pair yet (n = 0): there is no interval to draw.
    return (
      <figure className="shadow-interval" data-testid="shadow-interval" data-verdict={shadow.verdict}>
        <figcaption>
          Shadow: candidate v{shadow.candidate_version} − champion, n = {shadow.n}: no paired labels yet · verdict{" "}
          <strong className={`verdict-${shadow.verdict}`}>{shadow.verdict}</strong>
        </figcaption>
      </figure>
    );
  }
  const lo = Math.min(lower, shadow.min_delta, 0);
  const hi = Math.max(upper, shadow.min_delta, 0);
  const span = hi - lo || 1;
  const margin = span * 0.1;
  const at = (v: number) => PAD + ((v - (lo - margin)) / (span + 2 * margin)) * (WIDTH - 2 * PAD);

  return (
    <figure className="shadow-interval" data-testid="shadow-interval" data-verdict={shadow.verdict}>
      <figcaption>
        Shadow: candidate v{shadow.candidate_version} − champion, n = {shadow.n}, mean Δ {fmtNumber(mean, 3)} in [
        {fmtNumber(lower, 3)}, {fmtNumber(upper, 3)}] at α = {shadow.alpha} · needs &gt; {shadow.min_delta} ·
        verdict <strong className={`verdict-${shadow.verdict}`}>{shadow.verdict}</strong>
      </figcaption>
      <svg width={WIDTH} height={100} role="img" aria-label="shadow delta interval">
        <line className="axis" x1={PAD} x2={WIDTH - PAD} y1={AXIS_Y} y2={AXIS_Y} />
        <line className="zero" x1={at(0)} x2={at(0)} y1={20} y2={80} />
        <text x={at(0)} y={92} textAnchor="middle" className="tick">0</text>
        <line className="min-delta" x1={at(shadow.min_delta)} x2={at(shadow.min_delta)} y1={15} y2={80} />
        <text x={at(shadow.min_delta)} y={12} textAnchor="middle" className="tick">min Δ {shadow.min_delta}</text>
        <line className="interval" x1={at(lower)} x2={at(upper)} y1={AXIS_Y} y2={AXIS_Y} />
        <circle className="mean" cx={at(mean)} cy={AXIS_Y} r={5} />
      </svg>
    </figure>
  );
}
