import { fmtPercent } from "../../format";
import type { FeatureDrift } from "../../protocol";

const SLOT = 64;
const BAR = 24;
const PLOT_HEIGHT = 160;
const TOP = 12;
const LABEL_SPACE = 64;

/** Counts as shares of their total; all zero when the total is. */
export function toShares(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (total > 0 ? c / total : 0));
}

/** Reference vs live shares per PSI/JS bin, as side-by-side bars. */
export function FeatureHistogram({ feature }: { feature: FeatureDrift }) {
  const reference = toShares(feature.reference_histogram);
  const current = toShares(feature.current_histogram);
  const top = Math.max(...reference, ...current, 1e-9);
  const width = Math.max(feature.bins.length * SLOT, 240);
  const barHeight = (share: number) => (share / top) * PLOT_HEIGHT;

  return (
    <figure className="histogram" data-testid="feature-histogram" data-feature={feature.name}>
      <figcaption>
        {feature.name}: <span className="swatch swatch-reference" /> reference vs <span className="swatch swatch-current" /> live
        (share of values per bin)
      </figcaption>
      <svg width={width} height={TOP + PLOT_HEIGHT + LABEL_SPACE} role="img" aria-label={`histogram of ${feature.name}`}>
        <line x1={0} x2={width} y1={TOP + PLOT_HEIGHT} y2={TOP + PLOT_HEIGHT} className="axis" />
        {feature.bins.map((label, i) => {
          const x = i * SLOT + (SLOT - 2 * BAR) / 2;
          const ref = reference[i] ?? 0;
          const cur = current[i] ?? 0;
          return (
            <g key={`${i}-${label}`} data-testid="histogram-bin">
              <rect className="bar-reference" x={x} y={TOP + PLOT_HEIGHT - barHeight(ref)} width={BAR} height={barHeight(ref)}>
                <title>{`${label} reference: ${fmtPercent(ref)} (${feature.reference_histogram[i] ?? 0})`}</title>
              </rect>
              <rect className="bar-current" x={x + BAR} y={TOP + PLOT_HEIGHT - barHeight(cur)} width={BAR} height={barHeight(cur)}>
                <title>{`${label} live: ${fmtPercent(cur)} (${feature.current_histogram[i] ?? 0})`}</title>
              </rect>
              <text className="bin-label" transform={`translate(${i * SLOT + SLOT / 2}, ${TOP + PLOT_HEIGHT + 12}) rotate(30)`}>
                {label}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
