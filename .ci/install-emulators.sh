#!/usr/bin/env bash
# Installs the test servers that are not Go modules, into a cache directory
# outside the repository:
#   fauxqs 1.9.x (npm): SNS + SQS emulator for internal/respond/notify and
#     the s3 source's event notifications;
#   kinesalite 3.3.x (npm): Kinesis emulator for the kinesis source, in its
#     own prefix ($dir/kinesalite) so that neither install prunes the other;
#   dynalite 3.x (npm): DynamoDB emulator for internal/store/dynamo and
#     the Lambda handler, in its own prefix ($dir/dynalite).
# kinesalite and dynalite listen where the test tells it (127.0.0.1). fauxqs binds
# 0.0.0.0 whatever it is told; this script patches it to bind
# 127.0.0.1 only, and the tests refuse to start an unpatched copy.
#
# The directory is $FLOWGUARD_EMULATORS, or ${XDG_CACHE_HOME:-~/.cache}/flowguard/emulators;
# the tests look in the same place. Safe to run again: it does nothing when
# the patched copy is already there.
set -euo pipefail

dir="${FLOWGUARD_EMULATORS:-${XDG_CACHE_HOME:-$HOME/.cache}/flowguard/emulators}"
version="1.9.x"
kinesalite_version="3.3.x"
dynalite_version="3.x"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-emulators: node and npm are needed (apt-get install nodejs npm)" >&2
  exit 1
fi

app="$dir/node_modules/fauxqs/dist/app.js"
if [ ! -f "$app" ]; then
  mkdir -p "$dir"
  echo "install-emulators: npm install fauxqs@$version into $dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "fauxqs@$version"
fi

# Bind to the loopback interface only.
if grep -q 'host: "0.0.0.0"' "$app"; then
  sed -i 's/host: "0.0.0.0"/host: "127.0.0.1"/' "$app"
fi
if grep -q '0\.0\.0\.0' "$app"; then
  echo "install-emulators: $app still mentions 0.0.0.0 after patching; refusing" >&2
  exit 1
fi
kin="$dir/kinesalite/node_modules/kinesalite/index.js"
if [ ! -f "$kin" ]; then
  mkdir -p "$dir/kinesalite"
  echo "install-emulators: npm install kinesalite@$kinesalite_version into $dir/kinesalite"
  npm install --prefix "$dir/kinesalite" --no-audit --no-fund --no-save --loglevel=error "kinesalite@$kinesalite_version"
fi
dyn="$dir/dynalite/node_modules/dynalite/index.js"
if [ ! -f "$dyn" ]; then
  mkdir -p "$dir/dynalite"
  echo "install-emulators: npm install dynalite@$dynalite_version into $dir/dynalite"
  npm install --prefix "$dir/dynalite" --no-audit --no-fund --no-save --loglevel=error "dynalite@$dynalite_version"
fi
echo "install-emulators: dynalite $(node -p "require('$dir/dynalite/node_modules/dynalite/package.json').version") ready in $dir/dynalite"
echo "install-emulators: kinesalite $(node -p "require('$dir/kinesalite/node_modules/kinesalite/package.json').version") ready in $dir/kinesalite"
echo "install-emulators: fauxqs $(node -p "require('$dir/node_modules/fauxqs/package.json').version") ready in $dir"
