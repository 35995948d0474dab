import { shorten } from "../../format";
import type { LineageNode } from "../../protocol";

function text(node: LineageNode, key: string): string | null {
  const value = node[key];
  return typeof value === "string" || typeof value === "number" ? String(value) : null;
}

export function isChampion(node: LineageNode): boolean {
  return node.type === "model" && node.status === "champion";
}

/** Two short lines naming a lineage node in the graph. */
export function describeNode(node: LineageNode): { title: string; detail: string } {
  switch (node.type) {
    case "model":
      return { title: `model v${text(node, "version") ?? "?"}`, detail: text(node, "status") ?? "" };
    case "dataset": {
      const rows = text(node, "rows");
      return { title: rows ? `dataset · ${rows} rows` : "dataset", detail: shorten(text(node, "dataset_id") ?? node.id, 26) };
    }
    case "run":
      return { title: "run", detail: shorten(text(node, "run_id") ?? node.id, 22) };
    case "drift_event":
      return { title: "drift event", detail: shorten(node.id, 22) };
    default:
      return { title: String(node.type), detail: shorten(node.id, 22) };
  }
}
