// A bar chart in plain SVG (a chart library would outweigh the whole app), with the numbers
// also in a table for screen readers and for reading exact values.
export interface Bar {
  label: string;
  value: number;
  text: string;
}

export function BarChart({ title, bars }: { title: string; bars: Bar[] }) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const width = Math.max(320, bars.length * 48);
  const height = 200;
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      {bars.length === 0 ? (
        <p>No sales in this period.</p>
      ) : (
        <>
          <svg viewBox={`0 0 ${width} ${height + 40}`} role="img" aria-label={title}>
            {bars.map((bar, i) => {
              const h = (bar.value / max) * height;
              const x = i * 48 + 8;
              return (
                <g key={bar.label}>
                  <rect x={x} y={height - h} width={32} height={h} className="bar">
                    <title>{`${bar.label}: ${bar.text}`}</title>
                  </rect>
                  <text x={x + 16} y={height + 16} textAnchor="middle" className="axis">
                    {bar.label.slice(-5)}
                  </text>
                </g>
              );
            })}
          </svg>
          <table className="compact">
            <thead>
              <tr>
                <th scope="col">Period</th>
                <th scope="col">Sales</th>
              </tr>
            </thead>
            <tbody>
              {bars.map((bar) => (
                <tr key={bar.label}>
                  <td>{bar.label}</td>
                  <td>{bar.text}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </figure>
  );
}
