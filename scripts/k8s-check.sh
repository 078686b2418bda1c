#!/usr/bin/env bash
# Checks the Kubernetes manifests in k8s/ without a cluster:
#
#   1. renders every overlay (k8s/overlays/*) with `kubectl kustomize`;
#   2. validates every rendered object against the Kubernetes OpenAPI schemas
#      with kubernetes-validate (strict: unknown fields fail), for each version
#      in K8S_VERSIONS; a kind the schemas do not know fails too, except the
#      prometheus-operator kinds (ServiceMonitor, PrometheusRule), which get
#      the structural checks below instead;
#   3. checks what no schema knows: selectors match the pods, Ingress
#      backends and the ServiceMonitor's port name the Service's ports, the
#      shutdown timeline fits terminationGracePeriodSeconds, WS_MAX_CONNECTIONS
#      stays under the pods' open-files limit, no Secret in the repo carries
#      JWT_SECRET or a password, the security context is the restricted one;
#   4. runs `promtool check rules` on the PrometheusRule's groups and on every
#      Grafana dashboard query (as recording rules), and `promtool test rules`
#      on k8s/tests/alerts.test.yaml.
#
# Installs what is missing, once: kubernetes-validate (PyPI, pinned) into a
# venv under ~/.cache/showgate-k8s-check, and promtool, unpacked from Debian's
# `prometheus` package into the same cache (nothing is started or enabled).
# kubectl comes with the machine. Idempotent; prints what it checked; exits
# non-zero on any failure. CI runs it: `bash scripts/k8s-check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The oldest Kubernetes the manifests support (preStop `sleep` needs 1.30+)
# and the newest the pinned validator ships schemas for.
K8S_VERSIONS=${K8S_VERSIONS:-"1.31 1.37"}
KUBERNETES_VALIDATE_VERSION=1.37.0
# The open-files limit of the pods' process on our nodes (k8s/base/deployment.yaml).
NOFILE_LIMIT=20000

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/showgate-k8s-check
VENV=$CACHE/venv

log() { echo "k8s-check: $*"; }
die() { echo "k8s-check: FAILED: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- tools -------------------------------------------------------------------
command -v kubectl >/dev/null || die "kubectl (with its built-in kustomize) is not installed"
kubectl_version=$(kubectl version --client 2>/dev/null | tr '\n' ' ')
log "kubectl: $kubectl_version"

venv_ok() {
  "$VENV/bin/python" - "$KUBERNETES_VALIDATE_VERSION" >/dev/null 2>&1 <<'PY'
import sys, yaml, kubernetes_validate.version as v
sys.exit(v.__version__ != sys.argv[1])
PY
}
if ! venv_ok; then
  log "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $VENV"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 keeps venv (ensurepip) in a package of its own.
    rm -rf "$VENV"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" PyYAML
  venv_ok || die "kubernetes-validate did not install into $VENV"
fi
log "kubernetes-validate: $("$VENV/bin/kubernetes-validate" --version)"

# promtool: the one on PATH, else the one unpacked earlier, else unpack it from
# Debian's package. Unpacking (rather than `apt-get install prometheus`) runs no
# maintainer script, so no Prometheus server gets enabled on a developer's box.
PROMTOOL=$(command -v promtool || true)
if [ -z "$PROMTOOL" ]; then
  PROMTOOL=$CACHE/prometheus/usr/bin/promtool
  if [ ! -x "$PROMTOOL" ]; then
    log "unpacking promtool from Debian's prometheus package into $CACHE/prometheus"
    mkdir -p "$CACHE/deb"
    rm -f "$CACHE"/deb/prometheus_*.deb
    if ! (cd "$CACHE/deb" && apt-get download prometheus >/dev/null 2>&1); then
      as_root apt-get update -qq
      (cd "$CACHE/deb" && apt-get download prometheus >/dev/null)
    fi
    rm -rf "$CACHE/prometheus"
    dpkg-deb -x "$CACHE"/deb/prometheus_*.deb "$CACHE/prometheus"
    rm -f "$CACHE"/deb/prometheus_*.deb
  fi
  [ -x "$PROMTOOL" ] || die "promtool is not available"
fi
log "promtool: $("$PROMTOOL" --version 2>&1 | head -n 1)"

# --- render and check each overlay ---------------------------------------------
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

overlays=()
for dir in k8s/overlays/*/; do overlays+=("$(basename "$dir")"); done
[ ${#overlays[@]} -gt 0 ] || die "no overlays under k8s/overlays"

versions=()
for v in $K8S_VERSIONS; do versions+=(-k "$v"); done

objects=0
rule_overlays=0
for name in "${overlays[@]}"; do
  out=$WORK/$name
  mkdir -p "$out"
  log "[$name] kubectl kustomize k8s/overlays/$name"
  kubectl kustomize "k8s/overlays/$name" >"$out/rendered.yaml" || die "[$name] kustomize could not render the overlay"

  # Splits the render: core.yaml for the schema validator; the PrometheusRule's
  # groups as a plain rules file; the dashboards' queries as recording rules.
  # Runs the cross-object checks. Prints one line per object.
  "$VENV/bin/python" - "$out" "$name" "$NOFILE_LIMIT" <<'PY' || die "[$name] structural checks failed (above)"
import base64, json, re, sys, urllib.parse
import yaml

out, overlay, nofile = sys.argv[1], sys.argv[2], int(sys.argv[3])
docs = [d for d in yaml.safe_load_all(open(f"{out}/rendered.yaml")) if d]
errors = []

def err(msg):
    errors.append(msg)
    print(f"k8s-check: [{overlay}] ERROR {msg}")

def key(d):
    return f"{d['kind']}/{d['metadata']['name']}"

def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

MONITORING = {"ServiceMonitor", "PrometheusRule"}
core = [d for d in docs if not d["apiVersion"].startswith("monitoring.coreos.com/")]
for d in docs:
    if d["apiVersion"].startswith("monitoring.coreos.com/") and (d["kind"] not in MONITORING or d["apiVersion"] != "monitoring.coreos.com/v1"):
        err(f"{d['apiVersion']} {key(d)}: not a kind this script knows how to check")
yaml.safe_dump_all(core, open(f"{out}/core.yaml", "w"), sort_keys=False)
open(f"{out}/count", "w").write(str(len(docs)))

by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind.get("ConfigMap", [])}
secrets = {d["metadata"]["name"]: d for d in by_kind.get("Secret", [])}
services = {d["metadata"]["name"]: d for d in by_kind.get("Service", [])}
workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])

# Secrets: nothing real may live in the repository.
for name, s in secrets.items():
    data = dict(s.get("stringData", {}))
    for k, v in s.get("data", {}).items():
        data[k] = base64.b64decode(v).decode()
    if "JWT_SECRET" in data:
        err(f"Secret/{name} carries JWT_SECRET: real secrets stay out of the repository")
    for k, v in data.items():
        if "://" in v and urllib.parse.urlsplit(v.split(",")[0]).password:
            err(f"Secret/{name} key {k} has a password in its URL")
    print(f"k8s-check: [{overlay}] ok secret {name}: keys {sorted(data)}, no JWT_SECRET, no passwords")

# Services select pods; Ingresses and the ServiceMonitor name real ports.
pod_labels = [(key(w), w["spec"]["template"]["metadata"].get("labels", {})) for w in workloads]
for name, s in services.items():
    sel = s["spec"].get("selector", {})
    if not any(matches(sel, labels) for _, labels in pod_labels):
        err(f"Service/{name} selects no pod template ({sel})")
for w in workloads:
    sel = w["spec"]["selector"]["matchLabels"]
    if not matches(sel, w["spec"]["template"]["metadata"].get("labels", {})):
        err(f"{key(w)}: selector does not match its own pod template")
    if w["kind"] == "StatefulSet" and w["spec"].get("serviceName") not in services:
        err(f"{key(w)}: serviceName {w['spec'].get('serviceName')} is not a Service here")
for p in by_kind.get("PodDisruptionBudget", []):
    if not any(matches(p["spec"]["selector"]["matchLabels"], labels) for _, labels in pod_labels):
        err(f"{key(p)} covers no pods")
for ing in by_kind.get("Ingress", []):
    for rule in ing["spec"].get("rules", []):
        for path in rule["http"]["paths"]:
            svc = path["backend"]["service"]
            ports = [p.get("name") for p in services.get(svc["name"], {}).get("spec", {}).get("ports", [])]
            if svc["port"].get("name") not in ports:
                err(f"{key(ing)} {path['path']}: backend {svc['name']}:{svc['port']} is not a port of a Service here")
for h in by_kind.get("HorizontalPodAutoscaler", []):
    ref = h["spec"]["scaleTargetRef"]
    target = [w for w in workloads if w["kind"] == ref["kind"] and w["metadata"]["name"] == ref["name"]]
    if not target:
        err(f"{key(h)} scales {ref['kind']}/{ref['name']}, which is not here")
    elif "replicas" in target[0]["spec"]:
        err(f"{key(h)}: {ref['kind']}/{ref['name']} sets replicas, which every apply would reset under the HPA")
    if not 1 <= h["spec"].get("minReplicas", 1) <= h["spec"]["maxReplicas"]:
        err(f"{key(h)}: minReplicas/maxReplicas out of order")

# The gateway itself.
gw = [w for w in by_kind.get("Deployment", []) if w["metadata"]["name"] == "showgate"]
if len(gw) != 1:
    err("no Deployment/showgate")
else:
    pod = gw[0]["spec"]["template"]["spec"]
    c = [c for c in pod["containers"] if c["name"] == "showgate"][0]
    env = {}
    for src in c.get("envFrom", []):
        if "configMapRef" in src:
            ref = src["configMapRef"]["name"]
            if ref not in configmaps:
                err(f"Deployment/showgate reads ConfigMap {ref}, which is not rendered")
            env.update(configmaps.get(ref, {}))
    secret_refs = [s["secretRef"]["name"] for s in c.get("envFrom", []) if "secretRef" in s]
    if not any(r.startswith("showgate-secrets") for r in secret_refs):
        err("Deployment/showgate does not read the Secret showgate-secrets")
    for k in ["BIND", "LOG_FORMAT", "RUST_LOG", "HOLD_TTL_SECONDS", "ORDER_TTL_SECONDS", "SEAT_STREAM_BATCH_MS",
              "WS_MAX_CONNECTIONS", "WS_PING_SECONDS", "SHUTDOWN_GRACE_SECONDS", "TRUSTED_PROXIES"]:
        if k not in env:
            err(f"the showgate ConfigMap lacks {k}")
    port = {p["name"]: p["containerPort"] for p in c.get("ports", [])}.get("http")
    if port is None or not env.get("BIND", "").endswith(f":{port}"):
        err(f"BIND {env.get('BIND')} does not listen on the container port named http ({port})")
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
        got = c.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") != "http":
            err(f"{probe} should GET {path} on port http, not {got}")
    sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = int(env.get("SHUTDOWN_GRACE_SECONDS", 20))
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    if not sleep:
        err("no preStop sleep: the ingress would still send requests to a draining pod")
    if tgps <= sleep + grace:
        err(f"terminationGracePeriodSeconds {tgps} must exceed preStop {sleep} s + SHUTDOWN_GRACE_SECONDS {grace} s")
    ws = int(env.get("WS_MAX_CONNECTIONS", 100000))
    if ws > nofile - 100:
        err(f"WS_MAX_CONNECTIONS {ws} leaves no room under the open-files limit {nofile}")
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    want = [
        (psc.get("runAsNonRoot") or csc.get("runAsNonRoot"), "runAsNonRoot"),
        (csc.get("readOnlyRootFilesystem"), "readOnlyRootFilesystem"),
        (csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false"),
        (csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities.drop [ALL]"),
        ((csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault"),
        (c.get("resources", {}).get("requests") and c.get("resources", {}).get("limits"), "resource requests and limits"),
    ]
    for ok, what in want:
        if not ok:
            err(f"Deployment/showgate lacks {what}")
    print(f"k8s-check: [{overlay}] ok deployment showgate: probes, preStop {sleep} s + grace {grace} s < {tgps} s, "
          f"WS_MAX_CONNECTIONS {ws} < nofile {nofile}, restricted security context")

# prometheus-operator objects: the shape the operator needs.
for sm in by_kind.get("ServiceMonitor", []):
    sel = sm["spec"].get("selector", {}).get("matchLabels", {})
    targets = [s for s in services.values() if matches(sel, s["metadata"].get("labels", {}))]
    if not targets:
        err(f"{key(sm)} selects no Service ({sel})")
    for ep in sm["spec"].get("endpoints", []):
        if not any(ep.get("port") in [p.get("name") for p in s["spec"]["ports"]] for s in targets):
            err(f"{key(sm)}: endpoint port {ep.get('port')} is not a named port of the selected Service")
        if not re.fullmatch(r"\d+[smh]", str(ep.get("interval", ""))):
            err(f"{key(sm)}: endpoint interval {ep.get('interval')} is not a duration")
    if not sm["spec"].get("endpoints"):
        err(f"{key(sm)} has no endpoints")
    print(f"k8s-check: [{overlay}] ok servicemonitor {sm['metadata']['name']}: selects {[key(s) for s in targets]}")

rules = by_kind.get("PrometheusRule", [])
if len(rules) > 1:
    err("more than one PrometheusRule; this script extracts one")
for pr in rules:
    groups = pr["spec"].get("groups") or []
    names = [g.get("name") for g in groups]
    if not groups or len(set(names)) != len(names):
        err(f"{key(pr)}: groups missing or names repeated")
    alerts = [r["alert"] for g in groups for r in g.get("rules", []) if "alert" in r]
    if len(set(alerts)) != len(alerts):
        err(f"{key(pr)}: an alert name is repeated")
    for g in groups:
        for r in g.get("rules", []):
            if ("alert" in r) == ("record" in r) or not r.get("expr"):
                err(f"{key(pr)} group {g.get('name')}: each rule needs expr and exactly one of alert/record")
            if "alert" in r and not r.get("labels", {}).get("severity"):
                err(f"{key(pr)}: alert {r['alert']} has no severity label")
    yaml.safe_dump({"groups": groups}, open(f"{out}/showgate-rules.yaml", "w"), sort_keys=False)
    print(f"k8s-check: [{overlay}] ok prometheusrule {pr['metadata']['name']}: {len(groups)} groups, {len(alerts)} alerts")

# Grafana dashboards: valid JSON, unique panel ids, every query PromQL.
# Template variables become sample values so promtool can parse the queries.
SUBST = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h",
         "$namespace": "showgate", "$show": ".*"}
records = []
for d in by_kind.get("ConfigMap", []):
    if d["metadata"].get("labels", {}).get("grafana_dashboard") != "1":
        continue
    for fname, text in d.get("data", {}).items():
        try:
            dash = json.loads(text)
        except ValueError as e:
            err(f"{key(d)} {fname}: not JSON ({e})")
            continue
        for field in ["uid", "title", "panels", "schemaVersion"]:
            if field not in dash:
                err(f"{key(d)} {fname}: no {field}")
        panels = dash.get("panels", [])
        ids = [p.get("id") for p in panels]
        if len(set(ids)) != len(ids):
            err(f"{key(d)} {fname}: panel ids repeat")
        n = 0
        for p in panels:
            if "gridPos" not in p:
                err(f"{key(d)} {fname}: panel {p.get('title')} has no gridPos")
            if p.get("type") == "row":
                continue
            if not p.get("targets"):
                err(f"{key(d)} {fname}: panel {p.get('title')} has no query")
            for t in p.get("targets", []):
                expr = t.get("expr", "")
                for var, val in SUBST.items():
                    expr = expr.replace(var, val)
                if "$" in expr or not expr.strip():
                    err(f"{key(d)} {fname}: panel {p.get('title')}: query uses an unknown variable or is empty: {t.get('expr')}")
                    continue
                records.append({"record": f"dashboard:panel_{p.get('id')}_{t.get('refId', 'A')}", "expr": expr})
                n += 1
        print(f"k8s-check: [{overlay}] ok grafana dashboard {dash.get('uid')} ({key(d)}): {len(panels)} panels, {n} queries")
if records:
    yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": records}]},
                   open(f"{out}/dashboard-queries.yaml", "w"), sort_keys=False)

sys.exit(1 if errors else 0)
PY

  # Schemas. kubernetes-validate only warns (exit 0) on a kind it has no schema
  # for, so a WARN line fails here: a typo in an apiVersion must not pass.
  log "[$name] kubernetes-validate --strict ${versions[*]} ($(grep -c '^kind:' "$out/core.yaml") objects; ServiceMonitor/PrometheusRule checked above)"
  set +e
  "$VENV/bin/kubernetes-validate" --strict "${versions[@]}" "$out/core.yaml" >"$out/validate.txt" 2>&1
  rc=$?
  set -e
  sed "s|$out/||; s|^|k8s-check: [$name]   |" "$out/validate.txt"
  [ "$rc" = 0 ] || die "[$name] kubernetes-validate found errors"
  if grep -q -v '^INFO ' "$out/validate.txt"; then
    die "[$name] kubernetes-validate could not check every object (see WARN above)"
  fi

  # Rules.
  if [ -f "$out/showgate-rules.yaml" ]; then
    log "[$name] promtool check rules (PrometheusRule)"
    "$PROMTOOL" check rules "$out/showgate-rules.yaml" 2>&1 | sed "/^$/d; s|^|k8s-check: [$name]   |" \
      || die "[$name] promtool check rules failed"
    log "[$name] promtool test rules k8s/tests/alerts.test.yaml"
    cp k8s/tests/alerts.test.yaml "$out/alerts.test.yaml"
    (cd "$out" && "$PROMTOOL" test rules alerts.test.yaml) 2>&1 | sed "/^$/d; s|^|k8s-check: [$name]   |" \
      || die "[$name] promtool test rules failed"
    rule_overlays=$((rule_overlays + 1))
  fi
  if [ -f "$out/dashboard-queries.yaml" ]; then
    log "[$name] promtool check rules (Grafana dashboard queries)"
    "$PROMTOOL" check rules "$out/dashboard-queries.yaml" 2>&1 | sed "/^$/d; s|^|k8s-check: [$name]   |" \
      || die "[$name] a dashboard query is not valid PromQL"
  fi
  objects=$((objects + $(cat "$out/count")))
done

[ "$rule_overlays" -gt 0 ] || die "no overlay renders a PrometheusRule, so the alert tests did not run"
log "OK: ${#overlays[@]} overlays (${overlays[*]}), $objects objects, Kubernetes $K8S_VERSIONS, alert rules tested in $rule_overlays"
