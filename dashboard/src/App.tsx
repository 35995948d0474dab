import { Suspense, lazy, useState } from "react";
import { Connection } from "./components/Connection";
import { NoData } from "./components/NoData";
import { PanelBoundary } from "./components/PanelBoundary";
import { DriftPanel } from "./panels/DriftPanel";
import { OverviewPanel } from "./panels/OverviewPanel";
import { RetrainingPanel } from "./panels/RetrainingPanel";
import { TrafficPanel } from "./panels/TrafficPanel";
import { useDashboard } from "./store";
import type { SocketClass } from "./useReconnectingSocket";

// React Flow and dagre are the bulk of the bundle: loaded when the Lineage tab first opens.
// A failed load (the server went away) is not remembered, so "Try again" fetches it again.
function lazyLineage() {
  return lazy(() =>
    import("./panels/LineagePanel").then(
      (m) => ({ default: m.LineagePanel }),
      (error: unknown) => {
        LazyLineage = lazyLineage();
        throw error;
      },
    ),
  );
}
let LazyLineage = lazyLineage();

function LineagePanel() {
  return <LazyLineage />;
}

const TABS = {
  overview: { label: "Overview", Panel: OverviewPanel },
  drift: { label: "Drift", Panel: DriftPanel },
  retraining: { label: "Retraining", Panel: RetrainingPanel },
  lineage: { label: "Lineage", Panel: LineagePanel },
  traffic: { label: "Traffic", Panel: TrafficPanel },
} as const;
type TabId = keyof typeof TABS;

function isTab(id: string): id is TabId {
  return Object.hasOwn(TABS, id);
}

function tabFromHash(): TabId {
  const id = window.location.hash.slice(1);
  return isTab(id) ? id : "overview";
}

/** ws(s)://<this host>/ws: the page and its socket always come from the same server. */
export function socketUrl(location: Location = window.location): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

export function App({ url = socketUrl(), socketClass }: { url?: string; socketClass?: SocketClass }) {
  const [tab, setTab] = useState<TabId>(tabFromHash);
  const model = useDashboard((s) => s.model);
  const { Panel } = TABS[tab];
  const open = (id: TabId) => {
    setTab(id);
    window.history.replaceState(null, "", `#${id}`);
  };

  return (
    <div className="app">
      <header className="top">
        <h1>
          driftloop <span className="model">{model ?? ""}</span>
        </h1>
        <nav className="tabs" role="tablist">
          {Object.entries(TABS).map(([id, { label }]) => (
            <button
              key={id}
              role="tab"
              aria-selected={id === tab}
              data-testid={`tab-${id}`}
              onClick={() => isTab(id) && open(id)}
            >
              {label}
            </button>
          ))}
        </nav>
        <Connection url={url} socketClass={socketClass} />
      </header>
      <main data-testid={`panel-${tab}`}>
        <PanelBoundary key={tab} name={TABS[tab].label}>
          <Suspense fallback={<NoData what="loading…" />}>
            <Panel />
          </Suspense>
        </PanelBoundary>
      </main>
    </div>
  );
}
