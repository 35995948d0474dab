import { fmtPercent, fmtSignificant } from "../format";
import type { ShadowEvidence } from "../protocol";

/**
 * What may make a shadow verdict doubtful: the gate's warnings, and the labelled share of
 * the paired requests by predicted class (when labels of one outcome arrive later, the
 * evidence over-represents the others). Nothing for evidence that has neither, such as a
 * run recorded before the gate kept them.
 */
export function ShadowNotes({ shadow }: { shadow: ShadowEvidence }) {
  const warnings = shadow.warnings ?? [];
  const share = shadow.label_share ?? null;
  if (warnings.length === 0 && share === null) return null;
  return (
    <div className="shadow-notes" data-testid="shadow-notes">
      {warnings.map((warning) => (
        <p key={warning} className="warning" data-testid="shadow-warning">
          {warning}
        </p>
      ))}
      {share && (
        <>
          <p className="muted">
            Labelled share by predicted class: {share.diverging ? "diverging" : "even"} (p = {fmtSignificant(share.pvalue)})
          </p>
          <ul className="label-share" data-testid="label-share" data-diverging={String(share.diverging)}>
            {Object.entries(share.shares).map(([predicted, labelled]) => (
              <li key={predicted} data-testid={`label-share-${predicted}`}>
                {predicted}: {fmtPercent(labelled)} labelled
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
