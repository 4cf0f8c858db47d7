// Runs bindery's pure browser helpers on cases given as JSON on stdin; prints results as JSON.
// Used by test_js.py so Python and JS are held to the same cases.
import { readFileSync } from "node:fs";
import { redirectUrl } from "../../bindery/web/static/redirect.js";
import { badgeSnippets, formSpec, launchUrl } from "../../bindery/web/static/spec.js";

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = {
  redirect: cases.redirect.map(([url, urlpath, token]) => redirectUrl(url, urlpath, token)),
  spec: cases.spec.map(([provider, repo, ref]) => formSpec(provider, repo, ref)),
  launch: cases.launch.map((args) => launchUrl(...args)),
  badges: cases.badges.map(([pub, url]) => badgeSnippets(pub, url)),
};
process.stdout.write(JSON.stringify(out));
