import { useState } from "react";
import { fmtNumber } from "../../format";
import type { FeatureDrift } from "../../protocol";
import { STATISTICS, type Statistic } from "./DriftCharts";

const VALUE: Record<Statistic, (f: FeatureDrift) => number | null> = {
  psi: (f) => f.psi,
  js: (f) => f.js_distance,
  ks: (f) => f.ks_statistic,
};

interface Sort {
  by: Statistic;
  descending: boolean;
}

/** Sorted by one statistic; a missing value (e.g. KS of a categorical feature) sorts last. */
export function sortFeatures(features: readonly FeatureDrift[], { by, descending }: Sort): FeatureDrift[] {
  const value = VALUE[by];
  return [...features].sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va === null || vb === null) return va === vb ? 0 : va === null ? 1 : -1;
    return descending ? vb - va : va - vb;
  });
}

/** Features of the latest report; click a statistic to sort by it, a row to choose it. */
export function FeatureTable({ features, selected, onSelect }: {
  features: readonly FeatureDrift[];
  selected: string | null;
  onSelect: (name: string) => void;
}) {
  const [sort, setSort] = useState<Sort>({ by: "psi", descending: true });
  const sortBy = (by: Statistic) => setSort((s) => ({ by, descending: s.by === by ? !s.descending : true }));

  return (
    <table className="table feature-table" data-testid="feature-table">
      <thead>
        <tr>
          <th>Feature</th>
          <th>Kind</th>
          {STATISTICS.map(({ key }) => (
            <th key={key} className="sortable" data-testid={`sort-${key}`} aria-sort={sort.by === key ? (sort.descending ? "descending" : "ascending") : "none"} onClick={() => sortBy(key)}>
              {key.toUpperCase()} {sort.by === key ? (sort.descending ? "▼" : "▲") : ""}
            </th>
          ))}
          <th>p-value</th>
          <th>Missing</th>
          <th>Drifted</th>
        </tr>
      </thead>
      <tbody>
        {sortFeatures(features, sort).map((f) => (
          <tr
            key={f.name}
            data-testid={`feature-row-${f.name}`}
            data-drifted={String(f.drifted)}
            className={[f.drifted ? "drifted" : "", f.name === selected ? "selected" : ""].join(" ").trim()}
            onClick={() => onSelect(f.name)}
          >
            <td>{f.name}</td>
            <td>{f.kind}</td>
            <td>{fmtNumber(f.psi, 3)}</td>
            <td>{fmtNumber(f.js_distance, 3)}</td>
            <td>{fmtNumber(f.ks_statistic, 3)}</td>
            <td>{(f.ks_pvalue ?? f.chi2_pvalue)?.toExponential(1) ?? "—"}</td>
            <td>{f.missing}</td>
            <td>{f.drifted ? "yes" : "no"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
