import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { LineagePanel } from "../../src/panels/LineagePanel";
import type { Lineage, Version } from "../../src/protocol";
import { apply, delta, loadSnapshot } from "../helpers";

/** The lineage after promoting a v3 trained from v2. */
function promoted(lineage: Lineage): Lineage {
  const v2 = lineage.versions.find((v) => v.version === 2)!;
  const v3: Version = { ...v2, version: 3, status: "champion", parent_version: 2, sha256: "e".repeat(64) };
  const versions = [...lineage.versions.map((v) => (v.version === 2 ? { ...v, status: "archived" as const } : v)), v3];
  const nodes = [
    ...lineage.lineage.nodes.map((n) => (n.id === "model:demo:2" ? { ...n, status: "archived" } : n)),
    { id: "model:demo:3", type: "model" as const, ...v3 },
  ];
  const edges = [...lineage.lineage.edges, { source: "model:demo:2", target: "model:demo:3", kind: "parent" as const }];
  return { ...lineage, versions, lineage: { nodes, edges } };
}

describe("LineagePanel", () => {
  it("says there is no data before a snapshot", () => {
    render(<LineagePanel />);
    expect(screen.getByText("no data yet")).toBeTruthy();
  });

  it("draws every node, the champion marked", () => {
    const snap = loadSnapshot();
    render(<LineagePanel />);
    for (const node of snap.lineage.lineage.nodes) expect(screen.getByTestId(`lineage-node-${node.id}`)).toBeTruthy();
    expect(screen.getByTestId("lineage-version-count").dataset.count).toBe("2");
    const champion = screen.getByTestId("lineage-node-model:demo:2");
    expect(champion.dataset.status).toBe("champion");
    expect(champion.className).toContain("champion");
    expect(screen.getByTestId("lineage-node-model:demo:1").className).not.toContain("champion");
  });

  it("shows a clicked node's metadata", () => {
    loadSnapshot();
    render(<LineagePanel />);
    fireEvent.click(screen.getByTestId("lineage-node-model:demo:2"));
    const details = screen.getByTestId("lineage-details");
    expect(details.textContent).toContain("holdout_accuracy");
    expect(details.textContent).toContain("0.84");
    expect(details.textContent).toContain("n_estimators");
    expect(details.querySelector(`code[title="${"c".repeat(64)}"]`)).not.toBeNull();
  });

  it("adds the new champion when a promotion arrives", () => {
    const snap = loadSnapshot();
    render(<LineagePanel />);
    act(() => apply(delta("lineage", promoted(snap.lineage))));
    expect(screen.getByTestId("lineage-version-count").dataset.count).toBe("3");
    expect(screen.getByTestId("lineage-node-model:demo:3").dataset.status).toBe("champion");
    expect(screen.getByTestId("lineage-node-model:demo:2").dataset.status).toBe("archived");
  });
});
