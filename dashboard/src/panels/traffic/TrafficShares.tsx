import { seriesColor } from "../../components/TimeSeriesChart";
import { fmtNumber, fmtPercent } from "../../format";
import type { Shares, Traffic } from "../../protocol";

export const SLOTS: (keyof Shares)[] = ["champion", "candidate", "shadow"];

/** The split now, coloured as in the history chart. The shadow share is the fraction of requests also mirrored to the candidate. */
export function TrafficShares({ traffic }: { traffic: Traffic }) {
  return (
    <div className="shares" data-testid="traffic-shares">
      <p>
        mode <strong data-testid="traffic-mode">{traffic.mode}</strong> · weight {fmtNumber(traffic.weight)} · shadow fraction{" "}
        {fmtNumber(traffic.shadow_fraction)}
      </p>
      {SLOTS.map((slot, i) => {
        const share = traffic.shares[slot];
        return (
          <div className="share" key={slot}>
            <span className="share-label">{slot}</span>
            <span className="share-bar">
              <span className="share-fill" style={{ width: `${Math.min(1, Math.max(0, share)) * 100}%`, background: seriesColor(i) }} />
            </span>
            <span className="share-value" data-testid={`traffic-share-${slot}`} data-value={share}>
              {fmtPercent(share)}
            </span>
          </div>
        );
      })}
    </div>
  );
}
