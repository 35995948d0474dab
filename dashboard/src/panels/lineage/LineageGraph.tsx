import { type Edge, Handle, type Node, type NodeProps, Position, ReactFlow } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useMemo } from "react";
import type { LineageEdge, LineageNode } from "../../protocol";
import { describeNode, isChampion } from "./describe";
import { layoutLineage } from "./layout";

type FlowNode = Node<{ node: LineageNode }, "lineage">;

function LineageNodeView({ data, selected }: NodeProps<FlowNode>) {
  const { node } = data;
  const { title, detail } = describeNode(node);
  const champion = isChampion(node);
  const classes = ["lineage-node", `lineage-${node.type}`, champion ? "champion" : "", selected ? "selected" : ""];
  return (
    <div
      className={classes.join(" ").trim()}
      data-testid={`lineage-node-${node.id}`}
      data-node-type={node.type}
      data-status={typeof node.status === "string" ? node.status : undefined}
    >
      <Handle type="target" position={Position.Left} />
      <strong>
        {champion ? "★ " : ""}
        {title}
      </strong>
      <span>{detail}</span>
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

const NODE_TYPES = { lineage: LineageNodeView };
const FIT_VIEW = { maxZoom: 1 };

export function LineageGraph({ nodes, edges, selected, onSelect }: {
  nodes: readonly LineageNode[];
  edges: readonly LineageEdge[];
  selected: string | null;
  onSelect: (id: string) => void;
}) {
  const flow = useMemo(() => {
    const laid = layoutLineage(nodes, edges);
    const flowNodes: FlowNode[] = laid.placed.map(({ node, x, y }) => ({
      id: node.id,
      type: "lineage",
      position: { x, y },
      data: { node },
      selected: node.id === selected,
    }));
    const flowEdges: Edge[] = laid.edges.map((e) => ({
      id: `${e.source}->${e.target}:${e.kind}`,
      source: e.source,
      target: e.target,
      label: e.kind.replace("_", " "),
      className: `lineage-edge-${e.kind}`,
    }));
    return { nodes: flowNodes, edges: flowEdges };
  }, [nodes, edges, selected]);

  return (
    <div className="lineage-graph">
      <ReactFlow
        // Re-fit the view when the graph grows (a new version or snapshot).
        key={flow.nodes.length}
        nodes={flow.nodes}
        edges={flow.edges}
        nodeTypes={NODE_TYPES}
        onNodeClick={(_, node) => onSelect(node.id)}
        nodesDraggable={false}
        nodesConnectable={false}
        fitView
        fitViewOptions={FIT_VIEW}
        minZoom={0.2}
      />
    </div>
  );
}
