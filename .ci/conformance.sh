#!/usr/bin/env bash
# MCP conformance: runs the official suite's server scenarios (@modelcontextprotocol/conformance,
# pinned below) against `runwarden serve` backed by a throwaway local MLflow server, and compares
# the failing scenarios with test/conformance/expected-failures.yaml (each entry says why).
#
# - Installs the pinned suite and Node 22 (the suite needs Node >= 22; runwarden itself runs on the
#   project's Node) into .data/conformance/tools (git-ignored) when missing; MLflow comes from
#   .venv (`npm run setup` creates it; run here when missing).
# - Starts MLflow (src/stack/services.ts startMlflowServer) and `runwarden serve` from source on
#   free ports, runs the suite, prints per-scenario results and a summary line, stops both.
# - Exits non-zero only on unexpected failures (a failing scenario not in the baseline), on a
#   malformed baseline (an entry without a reason, or naming no scenario of the suite), or when the
#   suite or the servers could not run. A baseline entry that now passes is reported as stale
#   (remove it) but does not fail the run.
#
# Usage: npm run conformance [-- --scenario NAME | --suite active|all|pending]; the suite's default
# is `active` (its pending scenarios are still in flux). Results (checks.json per scenario) and
# logs: .data/conformance/results/, .data/conformance/logs/
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"

CONFORMANCE_VERSION='0.1.16'
NODE22_VERSION='22.23.3'
SCRATCH="$ROOT/.data/conformance"
TOOLS="$SCRATCH/tools"
RESULTS="$SCRATCH/results"
LOGS="$SCRATCH/logs"
BASELINE="$ROOT/test/conformance/expected-failures.yaml"
NODE22="$TOOLS/node_modules/node/bin/node"
SUITE="$TOOLS/node_modules/@modelcontextprotocol/conformance/dist/index.js"

SCENARIO=''
SUITE_NAME='active'
while [ $# -gt 0 ]; do
  case "$1" in
    --scenario) SCENARIO="${2:?--scenario needs a name}"; shift 2 ;;
    --scenario=*) SCENARIO="${1#*=}"; shift ;;
    --suite) SUITE_NAME="${2:?--suite needs active, all or pending}"; shift 2 ;;
    --suite=*) SUITE_NAME="${1#*=}"; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "conformance: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'conformance: %s\n' "$*" >&2; }
die() { printf 'conformance: error: %s\n' "$*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------------------------
installed_version() { # $1 = package dir; prints its package.json version or nothing
  if [ -f "$1/package.json" ]; then node -p "require('$1/package.json').version" 2>/dev/null || true; fi
}
if [ "$(installed_version "$TOOLS/node_modules/@modelcontextprotocol/conformance")" != "$CONFORMANCE_VERSION" ] \
  || [ "$(installed_version "$TOOLS/node_modules/node")" != "$NODE22_VERSION" ] || [ ! -x "$NODE22" ]; then
  say "installing @modelcontextprotocol/conformance@${CONFORMANCE_VERSION} and node@${NODE22_VERSION} into ${TOOLS#"$ROOT"/}"
  mkdir -p "$TOOLS"
  [ -f "$TOOLS/package.json" ] || printf '{ "name": "runwarden-conformance-tools", "private": true }\n' >"$TOOLS/package.json"
  # The suite declares engines >= 22; it runs on node@22 below, so npm's engine warning is noise.
  (cd "$TOOLS" && npm install --no-audit --no-fund --loglevel=error --engine-strict=false \
    "@modelcontextprotocol/conformance@${CONFORMANCE_VERSION}" "node@${NODE22_VERSION}" >&2)
  [ -x "$NODE22" ] || die "node@${NODE22_VERSION} installed no binary at $NODE22 (its preinstall script must run)"
fi
[ -f "$SUITE" ] || die "the conformance suite is missing at $SUITE"

if [ ! -x .venv/bin/mlflow ] || [ ! -d node_modules ]; then
  say 'MLflow (.venv) or node_modules missing: running scripts/setup.sh'
  bash scripts/setup.sh
fi
[ -f "$BASELINE" ] || die "no baseline at ${BASELINE#"$ROOT"/}"

# --- services ---------------------------------------------------------------------------------
rm -rf "$RESULTS" "$LOGS"
mkdir -p "$RESULTS" "$LOGS"
MLFLOW_PID=''
SERVE_PID=''

stop_pid() { # $1 = pid: SIGTERM, up to 20 s, then SIGKILL
  local pid="$1"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  stop_pid "$SERVE_PID"
  stop_pid "$MLFLOW_PID" # its holder stops the MLflow process group and removes its temp dir
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Holds an MLflow server started by src/stack/services.ts: writes its URL to a file once it
# answers /health, stops it on SIGTERM/SIGINT.
MLFLOW_URL_FILE="$LOGS/mlflow.url"
say 'starting MLflow (10-40 s)'
node --import tsx --input-type=module -e "
  import { writeFileSync } from 'node:fs';
  import { startMlflowServer } from '$ROOT/src/stack/services.ts';
  const server = await startMlflowServer();
  writeFileSync(process.argv[1], server.url);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  setInterval(() => undefined, 1 << 30);
" "$MLFLOW_URL_FILE" >"$LOGS/mlflow-holder.log" 2>&1 &
MLFLOW_PID=$!

for _ in $(seq 1 1200); do # 120 s
  [ -s "$MLFLOW_URL_FILE" ] && break
  kill -0 "$MLFLOW_PID" 2>/dev/null || { cat "$LOGS/mlflow-holder.log" >&2; die 'MLflow did not start'; }
  sleep 0.1
done
[ -s "$MLFLOW_URL_FILE" ] || { cat "$LOGS/mlflow-holder.log" >&2; die 'MLflow did not start within 120 s'; }
MLFLOW_URL="$(cat "$MLFLOW_URL_FILE")"
say "MLflow at $MLFLOW_URL"

# `runwarden serve` on port 0 (the OS picks a free one); it prints the URL it listens on.
MLFLOW_TRACKING_URI="$MLFLOW_URL" RUNWARDEN_HTTP_HOST=127.0.0.1 RUNWARDEN_HTTP_PORT=0 \
  RUNWARDEN_LOG_LEVEL="${RUNWARDEN_LOG_LEVEL:-warn}" RUNWARDEN_DATA_DIR="$SCRATCH/runwarden-data" \
  node --import tsx src/cli/index.ts serve >"$LOGS/serve.log" 2>&1 &
SERVE_PID=$!
MCP_URL=''
for _ in $(seq 1 600); do # 60 s
  MCP_URL="$(grep -o 'MCP at http://[^ ]*/mcp' "$LOGS/serve.log" 2>/dev/null | head -n1 | cut -d' ' -f3 || true)"
  [ -n "$MCP_URL" ] && break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$LOGS/serve.log" >&2; die 'runwarden serve exited'; }
  sleep 0.1
done
[ -n "$MCP_URL" ] || { cat "$LOGS/serve.log" >&2; die 'runwarden serve did not start within 60 s'; }
HEALTH_URL="${MCP_URL%/mcp}/health"
curl -fsS --max-time 10 "$HEALTH_URL" >/dev/null || { cat "$LOGS/serve.log" >&2; die "$HEALTH_URL is not healthy"; }
say "runwarden serve at $MCP_URL"

# --- the suite --------------------------------------------------------------------------------
suite_args=(server --url "$MCP_URL" --output-dir "$RESULTS")
if [ -n "$SCENARIO" ]; then suite_args+=(--scenario "$SCENARIO"); else suite_args+=(--suite "$SUITE_NAME"); fi
say "running @modelcontextprotocol/conformance@${CONFORMANCE_VERSION} server scenarios (${SCENARIO:-suite $SUITE_NAME})"
set +e
(cd "$SCRATCH" && "$NODE22" "$SUITE" "${suite_args[@]}") 2>&1 | tee "$LOGS/suite.log"
suite_code=${PIPESTATUS[0]}
set -e
say "suite exited with code $suite_code (non-zero whenever any scenario fails; judged against the baseline below)"

# --- compare with the baseline ----------------------------------------------------------------
# Every server scenario this suite version has (any suite), to catch misspelt baseline entries.
KNOWN_SCENARIOS="$("$NODE22" "$SUITE" list --server | sed -n 's/^ *- \([^ ]*\).*/\1/p' | tr '\n' ' ')"
[ -n "$KNOWN_SCENARIOS" ] || die "could not list the suite's server scenarios"
# The baseline is the suite's own format (`server: [scenario, ...]`, usable with its
# --expected-failures flag); every entry must carry a reason as a comment on its line.
set +e
node --input-type=module -e "
  import { readdirSync, readFileSync, existsSync } from 'node:fs';
  import { join } from 'node:path';
  import { parseDocument, isSeq, isScalar } from 'yaml';
  const [resultsDir, baselinePath, known] = process.argv.slice(1);
  const knownScenarios = new Set(known.split(' ').filter(Boolean));
  const doc = parseDocument(readFileSync(baselinePath, 'utf8'));
  if (doc.errors.length) throw new Error('bad baseline: ' + doc.errors[0].message);
  const seq = doc.get('server', true);
  const expected = new Map();
  const problems = [];
  if (seq !== undefined && !isSeq(seq)) problems.push('server: must be a list of scenario names');
  for (const item of isSeq(seq) ? seq.items : []) {
    if (!isScalar(item)) { problems.push('server: entries must be scenario names'); continue; }
    const reason = (item.comment ?? '').trim();
    if (!reason) problems.push('baseline entry ' + item.value + ' has no reason (a comment on its line)');
    expected.set(String(item.value), reason);
  }
  // The suite writes <results>/server-<scenario>-<timestamp>/checks.json per scenario.
  const scenarios = [];
  for (const dir of readdirSync(resultsDir).sort()) {
    const file = join(resultsDir, dir, 'checks.json');
    if (!existsSync(file)) continue;
    const name = dir.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
    const checks = JSON.parse(readFileSync(file, 'utf8'));
    scenarios.push({ name, checks });
  }
  let passed = 0, failed = 0, warned = 0, expectedFailed = 0, unexpectedFailed = 0;
  const unexpected = [], expectedHit = [], stale = [];
  for (const { name, checks } of scenarios) {
    const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
    passed += checks.filter((c) => c.status === 'SUCCESS').length;
    failed += checks.filter((c) => c.status === 'FAILURE').length;
    warned += checks.filter((c) => c.status === 'WARNING').length;
    const isExpected = expected.has(name);
    if (bad.length && isExpected) { expectedHit.push(name); expectedFailed += bad.length; }
    else if (bad.length) { unexpected.push({ name, bad }); unexpectedFailed += bad.length; }
    else if (isExpected) stale.push(name);
  }
  for (const name of expected.keys()) if (!knownScenarios.has(name)) problems.push('baseline entry ' + name + ' is not a server scenario of this suite version (renamed or removed?)');
  if (!scenarios.length) problems.push('the suite wrote no results to ' + resultsDir);
  console.log('');
  console.log('=== runwarden conformance vs test/conformance/expected-failures.yaml ===');
  for (const name of expectedHit) console.log('  ~ expected failure  ' + name + ': ' + expected.get(name));
  for (const name of stale) console.log('  ! stale baseline    ' + name + ' now passes: remove it from the baseline');
  for (const { name, bad } of unexpected) {
    console.log('  x UNEXPECTED        ' + name);
    for (const c of bad) console.log('      - ' + c.status + ' ' + c.id + ': ' + (c.errorMessage ?? c.description ?? ''));
  }
  for (const p of problems) console.log('  x baseline problem: ' + p);
  console.log('');
  console.log('conformance summary: ' + scenarios.length + ' scenarios (' + (scenarios.length - expectedHit.length - unexpected.length) + ' clean, ' + expectedHit.length + ' expected failures, ' + unexpected.length + ' unexpected); checks ' + passed + ' passed, ' + failed + ' failed, ' + warned + ' warnings (' + expectedFailed + ' in expected-failure scenarios, ' + unexpectedFailed + ' unexpected)');
  process.exit(unexpected.length || problems.length ? 1 : 0);
" "$RESULTS" "$BASELINE" "$KNOWN_SCENARIOS"
verdict=$?
set -e
if [ "$verdict" -ne 0 ]; then
  say "FAILED: unexpected failures or baseline problems (results: ${RESULTS#"$ROOT"/}, logs: ${LOGS#"$ROOT"/})"
  exit 1
fi
say 'OK: every failure is an expected one'
