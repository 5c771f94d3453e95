// Takes the README's screenshot (screenshot.png) of a running chat page with
// headless Chromium: three users in #lobby. Start `cargo xtask run` first.
//
//   cd examples/chat && npm ci && node screenshot.mjs [http://127.0.0.1:8081/]
import { chromium } from "playwright-core";

const url = process.argv[2] ?? "http://127.0.0.1:8081/";
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const open = async (user) => {
    const page = await browser.newPage({ viewport: { width: 900, height: 420 } });
    await page.goto(`${url}?user=${user}&room=lobby`);
    await page.waitForFunction(() => document.getElementById("state").dataset.state === "connected");
    return page;
  };
  const [alice, bob, mia] = [await open("alice"), await open("bob"), await open("mia")];
  const lines = [
    [alice, "morning! is the new build out?"],
    [bob, "yes: killed one instance, my tab moved to the other and missed nothing"],
    [mia, "and my token refreshed under me without a blip"],
    [alice, "nice. lunch at 12?"],
  ];
  for (const [page, text] of lines) {
    await page.fill("#text", text);
    await page.press("#text", "Enter");
    await page.waitForTimeout(200);
  }
  await alice.waitForFunction((n) => document.querySelectorAll("#messages li.message").length >= n, lines.length);
  await alice.screenshot({ path: new URL("screenshot.png", import.meta.url).pathname });
} finally {
  await browser.close();
}
