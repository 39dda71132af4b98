// Loads the billing widget in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) and checks what a CSM sees: the MRR, a failed invoice highlighted, the
// alerts, the chart, keyboard access to payment attempts, and that nothing but our own
// stylesheet is fetched. Saves a screenshot. Prints one JSON line with what it found.
//
// Usage: node widget.mjs <page-url> <expected-mrr-text> <screenshot-path>
import { chromium } from "playwright-core";

const [url, expectedMrr, screenshot] = process.argv.slice(2);
if (!url || !expectedMrr || !screenshot) {
  console.error("usage: node widget.mjs <page-url> <expected-mrr-text> <screenshot-path>");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  const requested = [];
  page.on("request", (r) => requested.push(new URL(r.url()).pathname));
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  const response = await page.goto(url, { waitUntil: "load" });
  check(response.status() === 200, `status ${response.status()}`);

  const mrr = (await page.getByTestId("mrr").innerText()).trim();
  check(mrr.includes(expectedMrr), `MRR shows ${JSON.stringify(mrr)}, want ${expectedMrr}`);
  const status = (await page.getByTestId("subscription-status").innerText()).trim();
  const failedRows = page.locator('[data-testid="invoice-row"][data-failed="true"]');
  const failedCount = await failedRows.count();
  check(failedCount >= 1, "no failed invoice highlighted");
  let failedBackground = "";
  if (failedCount > 0) {
    failedBackground = await failedRows.first().evaluate((row) => getComputedStyle(row).backgroundColor);
    const plain = await page.locator('[data-testid="invoice-row"][data-failed="false"]').first()
      .evaluate((row) => getComputedStyle(row).backgroundColor).catch(() => "");
    check(failedBackground !== plain && failedBackground !== "rgba(0, 0, 0, 0)",
      `failed row not highlighted (${failedBackground} vs ${plain})`);
  }
  const alerts = await page.locator(".alerts li").count();
  const bars = await page.locator("svg.chart rect.bar").count();
  check(bars >= 1, "no MRR chart bars");

  // Keyboard: Tab reaches the first "payment attempts" disclosure, Enter opens it.
  let opened = false;
  for (let i = 0; i < 40 && !opened; i++) {
    await page.keyboard.press("Tab");
    const onSummary = await page.evaluate(() => document.activeElement?.tagName === "SUMMARY");
    if (onSummary) {
      await page.keyboard.press("Enter");
      opened = await page.evaluate(() => document.activeElement?.parentElement?.open === true);
    }
  }
  check(opened, "payment attempts not reachable and openable by keyboard");
  const foreign = requested.filter((p) => !(p.startsWith("/ui/")));
  check(foreign.length === 0, `fetched outside the widget: ${foreign.join(", ")}`);
  check(consoleErrors.length === 0, `console errors: ${consoleErrors.join(" | ")}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ mrr, status, failedCount, failedBackground, alerts, bars, opened, requested, failures }));
} finally {
  await browser.close();
}
process.exit(failures.length === 0 ? 0 : 1);
