import { render } from "preact";
import { AssetPage } from "./pages/Asset";
import { AssetsPage } from "./pages/Assets";
import { AutomationPage } from "./pages/Automation";
import { BackfillPage, BackfillsPage } from "./pages/Backfills";
import { DeploymentPage } from "./pages/Deployment";
import { JobPage, JobsPage } from "./pages/Jobs";
import { LaunchpadPage } from "./pages/Launchpad";
import { RunPage } from "./pages/Run";
import { RunsPage } from "./pages/Runs";
import { onLink, usePath } from "./router";
import "./styles.css";

const NAV: [string, string][] = [
  ["/assets", "Assets"],
  ["/jobs", "Jobs"],
  ["/runs", "Runs"],
  ["/automation", "Schedules & sensors"],
  ["/deployment", "Deployment"],
  ["/backfills", "Backfills"],
];

function route(pathname: string) {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  switch (parts[0] ?? "assets") {
    case "assets":
      return parts.length > 1 ? <AssetPage assetKey={parts.slice(1).join("/")} /> : <AssetsPage />;
    case "jobs":
      if (parts.length >= 4 && parts[3] === "launchpad") return <LaunchpadPage location={parts[1]} job={parts[2]} />;
      if (parts.length >= 3) return <JobPage location={parts[1]} job={parts[2]} />;
      return <JobsPage />;
    case "runs":
      return parts[1] ? <RunPage runId={parts[1]} /> : <RunsPage />;
    case "automation":
      return <AutomationPage />;
    case "deployment":
      return <DeploymentPage />;
    case "backfills":
      return parts[1] ? <BackfillPage backfillId={parts[1]} /> : <BackfillsPage />;
    default:
      return <div class="page error">No page at {pathname}.</div>;
  }
}

function App() {
  const path = usePath();
  const pathname = path.split("?")[0];
  const section = "/" + (pathname.split("/")[1] || "assets");
  return (
    <div class="app" onClick={onLink}>
      <nav class="nav">
        <a class="brand" href="/assets">dagloom</a>
        {NAV.map(([href, label]) => (
          <a class={section === href ? "active" : ""} href={href}>
            {label}
          </a>
        ))}
        <span class="spacer" />
        <a href="/graphql" target="_blank">GraphQL</a>
      </nav>
      <main key={path}>{route(pathname)}</main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
