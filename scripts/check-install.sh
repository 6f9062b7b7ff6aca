#!/usr/bin/env bash
# Checks the documented production install on a clean copy of the committed tree, the same steps as
# deploy/docker/Dockerfile (there is no Docker engine here to build the image itself):
#   npm ci --omit=dev, npm run build, then `bugzot migrate` and `bugzot serve`, which must answer /readyz.
# Usage: scripts/check-install.sh   (from anywhere inside the repository)
set -euo pipefail

root="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
work="$(mktemp -d)"
server_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Only what is committed, as the Docker build context would hold it.
git -C "$root" archive --format=tar HEAD | tar -x -C "$work/"
cd "$work"
npm ci --omit=dev --no-audit --no-fund --prefer-offline >"$work/npm.log" 2>&1 || {
  cat "$work/npm.log" >&2
  exit 1
}
if [[ -d node_modules/typescript || -d node_modules/@biomejs ]]; then
  echo "check-install: development dependencies were installed" >&2
  exit 1
fi

npm run build >"$work/build.log" 2>&1 || {
  cat "$work/build.log" >&2
  exit 1
}

export DATA_DIR="$work/data" NODE_ENV=production LOG_LEVEL=warn BASE_URL=http://127.0.0.1
node bin/bugzot.js migrate
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
node bin/bugzot.js serve --host 127.0.0.1 --port "$port" --no-migrate 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 1 120); do
  if node -e "fetch('http://127.0.0.1:$port/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then
    echo "check-install: a clean production install serves (/readyz answered on port $port)"
    exit 0
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    break
  fi
  sleep 0.5
done
echo "check-install: the server did not become ready" >&2
cat "$work/serve.log" >&2
exit 1
