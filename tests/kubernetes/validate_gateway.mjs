// Validate Gateway API objects (JSON array on stdin) against the schemas of the Gateway API CRDs as
// compiled by @kubernetes-models/gateway-api (kubernetes-validate bundles only core Kubernetes kinds).
// Prints one JSON line per object: {"kind", "name", "ok", "error"}; exit 1 if any failed.
import { HTTPRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";

const models = { "gateway.networking.k8s.io/v1/HTTPRoute": HTTPRoute };
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
let failed = false;
for (const obj of JSON.parse(Buffer.concat(chunks).toString("utf8"))) {
  const Model = models[`${obj.apiVersion}/${obj.kind}`];
  const result = { kind: obj.kind, name: obj.metadata?.name, ok: true, error: null };
  try {
    if (!Model) throw new Error(`no Gateway API schema for ${obj.apiVersion} ${obj.kind}`);
    new Model(obj).validate();
  } catch (e) {
    Object.assign(result, { ok: false, error: String(e.message ?? e) });
    failed = true;
  }
  console.log(JSON.stringify(result));
}
process.exit(failed ? 1 : 0);
