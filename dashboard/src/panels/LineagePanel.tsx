import { useState } from "react";
import { NoData } from "../components/NoData";
import { useDashboard } from "../store";
import { NodeDetails } from "./lineage/NodeDetails";
import { LineageGraph } from "./lineage/LineageGraph";

export function LineagePanel() {
  const lineage = useDashboard((s) => s.lineage);
  const [selected, setSelected] = useState<string | null>(null);
  if (lineage === null) return <NoData />;
  const { nodes, edges } = lineage.lineage;
  const node = nodes.find((n) => n.id === selected);
  const champion = lineage.versions.find((v) => v.status === "champion");

  return (
    <section className="panel">
      <p className="muted">
        <span data-testid="lineage-version-count" data-count={lineage.versions.length}>
          {lineage.versions.length} model version{lineage.versions.length === 1 ? "" : "s"}
        </span>{" "}
        · champion {champion ? `v${champion.version}` : "none"} · click a node for its metadata
      </p>
      <div className="split">
        {nodes.length === 0 ? <NoData what="no versions yet" /> : <LineageGraph nodes={nodes} edges={edges} selected={selected} onSelect={setSelected} />}
        {node && <NodeDetails node={node} />}
      </div>
    </section>
  );
}
