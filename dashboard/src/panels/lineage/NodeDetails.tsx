import { shorten } from "../../format";
import type { LineageNode } from "../../protocol";

const HASH = /^[0-9a-f]{40,}$/i;

function Value({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <>—</>;
  if (typeof value === "string") return HASH.test(value) ? <code title={value}>{shorten(value)}</code> : <>{value}</>;
  if (typeof value !== "object") return <>{String(value)}</>;
  const entries = Object.entries(value);
  if (entries.length === 0) return <>—</>;
  return <Fields entries={entries} />;
}

function Fields({ entries }: { entries: [string, unknown][] }) {
  return (
    <dl className="fields">
      {entries.map(([key, value]) => (
        <div key={key}>
          <dt>{key}</dt>
          <dd>
            <Value value={value} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

/** Every field the server sent for a node: metrics, params, hashes, trigger… */
export function NodeDetails({ node }: { node: LineageNode }) {
  return (
    <aside className="node-details" data-testid="lineage-details">
      <h3>{node.id}</h3>
      <Fields entries={Object.entries(node).filter(([key]) => key !== "id")} />
    </aside>
  );
}
