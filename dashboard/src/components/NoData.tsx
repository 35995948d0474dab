export function NoData({ what = "no data yet" }: { what?: string }) {
  return <p className="no-data">{what}</p>;
}
