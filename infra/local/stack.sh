#!/usr/bin/env bash
# Local real infrastructure for development and tests: an Apache Kafka broker (KRaft, single
# node, jars from Maven Central) and FerretDB v1 on SQLite (built from the Go module proxy).
#
#   stack.sh install [kafka|ferretdb|TOOL|all]   download/build into $WENMING_CACHE (idempotent)
#   stack.sh tools <dir>                         install every TOOL, writing <dir>/<TOOL>.status and .log
#   stack.sh tool-path TOOL                      where TOOL is (or will be) installed
#   stack.sh start   [kafka|ferretdb|all]        start in the background, wait until usable
#   stack.sh stop    [kafka|ferretdb|all]        stop (SIGTERM, then SIGKILL after a grace period)
#   stack.sh kill    kafka|ferretdb              SIGKILL, for crash tests
#   stack.sh status                              what runs where
#   stack.sh env                                 print the connection settings as shell exports
#   stack.sh backup <dir>                        a consistent copy of the database, the broker and the keys
#   stack.sh restore <dir>                       that copy into a fresh data directory ($WENMING_DATA)
#
# TOOLs (the suite's command-line checkers, pinned): helm, grpcurl, ghz, protoc-gen-go from the
# Go module proxy, buf from the npm registry (Buf's own release binary), protoc and protobuf-java
# from Maven Central, promtool from Debian's `prometheus` package.
#
# Set MONGODB_URI or KAFKA_BOOTSTRAP_SERVERS to use servers of your own; the matching local
# component is then neither installed nor started.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/infra/local"
CACHE=${WENMING_CACHE:-$ROOT/.cache}
DATA=${WENMING_DATA:-$ROOT/.data}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
MONGO_PORT=${MONGO_PORT:-27017}
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/kafka/pom.xml")
FERRETDB_VERSION=$(sed -n 's:^require github.com/FerretDB/FerretDB \(v[0-9.]*\)$:\1:p' "$HERE/ferretdb/go.mod")

KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
# the binary's name carries a hash of what it is built from, so a changed patch rebuilds it
FERRETDB_BUILD=$(cat "$HERE/ferretdb/main.go" "$HERE/ferretdb/go.sum" "$HERE"/ferretdb/*.patch | sha256sum | cut -c1-10)
FERRETDB_BIN="$CACHE/bin/ferretdb-sqlite-$FERRETDB_VERSION-$FERRETDB_BUILD"
# name, Go package, version: built with `go install`, kept as $CACHE/bin/<name>-<version>
GO_TOOLS="protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go v1.36.12
grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl v1.9.4
ghz github.com/bojand/ghz/cmd/ghz v0.93.0
helm helm.sh/helm/v3/cmd/helm v3.21.4"
# name, npm package (the platform's own, which holds the binary), version: Buf publishes its release
# binaries there; building buf from source took ~170 CPU-seconds of a fresh machine's suite run
NPM_TOOLS="buf @bufbuild/buf-linux-$(uname -m | sed 's/x86_64/x64/') 1.75.0"
# name, Maven artifact (group:artifact:version[:type:classifier]): kept as $CACHE/bin/<name>-<version>.
# protoc is the release inside grpcio-tools (libprotoc 35.1 = 4.35.1): the contract is compiled
# for Java with the same compiler that `make protos` uses for Python.
MAVEN_TOOLS="protoc com.google.protobuf:protoc:4.35.1:exe:linux-$(uname -m | sed 's/aarch64/aarch_64/')
protobuf-java com.google.protobuf:protobuf-java:4.35.1"
# quickest first: the tests waiting for a tool start as soon as theirs is in
TOOLS="promtool $(printf '%s\n%s\n%s\n' "$MAVEN_TOOLS" "$NPM_TOOLS" "$GO_TOOLS" | cut -d' ' -f1 | tr '\n' ' ')"
RUN="$DATA/run"
LOGS="$DATA/logs"

export GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod} GOCACHE=${GOCACHE:-$CACHE/go/build}

log() { printf '[stack] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

external_kafka() { [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && [ "${KAFKA_BOOTSTRAP_SERVERS}" != "127.0.0.1:$KAFKA_PORT" ]; }
external_mongo() { [ -n "${MONGODB_URI:-}" ] && [ "${MONGODB_URI}" != "mongodb://127.0.0.1:$MONGO_PORT/" ]; }

install_kafka() {
  external_kafka && { log "KAFKA_BOOTSTRAP_SERVERS is set: not installing a local broker"; return; }
  [ -f "$KAFKA_LIBS/.complete" ] && return
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka broker jars"
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central (first time: ~1 min)"
  rm -rf "$KAFKA_LIBS" && mkdir -p "$KAFKA_LIBS"
  mkdir -p "$CACHE/logs"
  mvn -B -f "$HERE/kafka/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
    dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS" > "$CACHE/logs/kafka-fetch.log" 2>&1 \
    || { tail -50 "$CACHE/logs/kafka-fetch.log" >&2; die "fetching the Kafka jars failed"; }
  touch "$KAFKA_LIBS/.complete"
}

install_ferretdb() {
  external_mongo && { log "MONGODB_URI is set: not building FerretDB"; return; }
  [ -x "$FERRETDB_BIN" ] && return
  command -v go >/dev/null || die "Go is needed to build FerretDB"
  mkdir -p "$CACHE/bin" "$CACHE/logs" "$CACHE/src"
  # parallel test runs may all find the binary missing: one builds, the others wait for it
  exec 9>"$CACHE/src/ferretdb.lock"
  flock -w 900 9 || die "another FerretDB build held the lock for 15 minutes"
  [ -x "$FERRETDB_BIN" ] && { flock -u 9; return; }
  log "building FerretDB $FERRETDB_VERSION (SQLite backend, patched: $(cd "$HERE/ferretdb" && ls *.patch | tr '\n' ' ')) from the Go module proxy (first time: ~2-5 min)"
  local buildlog="$CACHE/logs/ferretdb-build.log" src="$CACHE/src/FerretDB@$FERRETDB_VERSION" work="$CACHE/src/ferretdb.work"
  {
    # FerretDB's own source with our patches (see infra/local/ferretdb/*.patch), used through a Go workspace
    (cd "$HERE/ferretdb" && go mod download github.com/FerretDB/FerretDB) &&
    rm -rf "$src" && cp -r "$(cd "$HERE/ferretdb" && go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)" "$src" &&
    chmod -R u+w "$src" &&
    for patch in "$HERE"/ferretdb/*.patch; do (cd "$src" && git apply --whitespace=nowarn "$patch") || exit 1; done &&
    printf 'go %s\n\nuse (\n\t%s\n\t%s\n)\n' "$(sed -n 's/^go //p' "$HERE/ferretdb/go.mod")" "$HERE/ferretdb" "$src" > "$work" &&
    (cd "$HERE/ferretdb" && GOWORK="$work" go build -trimpath -o "$FERRETDB_BIN.tmp" .)
  } > "$buildlog" 2>&1 || { cat "$buildlog" >&2; flock -u 9; die "building FerretDB failed"; }
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  flock -u 9
}

go_tool() { awk -v name="$1" '$1 == name { print $2, $3 }' <<<"$GO_TOOLS"; }
maven_tool() { awk -v name="$1" '$1 == name { print $2 }' <<<"$MAVEN_TOOLS"; }
npm_tool() { awk -v name="$1" '$1 == name { print $2, $3 }' <<<"$NPM_TOOLS"; }

tool_path() {
  local spec; spec=$(go_tool "$1")
  if [ -n "$spec" ]; then echo "$CACHE/bin/$1-${spec#* }"
  elif spec=$(npm_tool "$1") && [ -n "$spec" ]; then echo "$CACHE/bin/$1-v${spec#* }"
  elif spec=$(maven_tool "$1") && [ -n "$spec" ]; then echo "$CACHE/bin/$1-$(cut -d: -f3 <<<"$spec")"
  elif [ "$1" = promtool ]; then echo "$CACHE/bin/promtool"
  else die "unknown tool '$1' (one of: $TOOLS)"; fi
}

install_tool() { # install_tool <name>: parallel runs may all find it missing, one installs, the others wait
  local name=$1 bin; bin=$(tool_path "$name")
  [ -x "$bin" ] && return
  mkdir -p "$CACHE/bin" "$CACHE/logs" "$CACHE/src"
  exec 8>"$CACHE/src/$name.lock"
  flock -w 1200 8 || die "another install of $name held the lock for 20 minutes"
  [ -x "$bin" ] && { flock -u 8; return; }
  local work; work=$(mktemp -d "$CACHE/src/$name.XXXXXX")
  if [ "$name" = promtool ]; then install_promtool "$work"
  elif [ -n "$(maven_tool "$name")" ]; then install_maven_tool "$name" "$work"
  elif [ -n "$(npm_tool "$name")" ]; then install_npm_tool "$name" "$work"
  else install_go_tool "$name" "$work"; fi
  mv "$work/$name" "$bin"   # renamed into place: nobody runs a half-written binary
  rm -rf "$work"
  flock -u 8
}

install_go_tool() { # install_go_tool <name> <work dir>
  local package version; read -r package version <<<"$(go_tool "$1")"
  command -v go >/dev/null || die "Go is needed to build $1"
  log "building $1 $version from the Go module proxy (first time: ~1-5 min)"
  # checkers run for seconds in the suite: built without optimisation or inlining and without cgo,
  # which takes about a third less CPU on a fresh machine (helm alone ~210 -> ~130 CPU-s)
  CGO_ENABLED=0 GOBIN="$2" go install -gcflags='all=-N -l' "$package@$version" > "$CACHE/logs/$1-build.log" 2>&1 \
    || { cat "$CACHE/logs/$1-build.log" >&2; die "building $1 failed"; }
  [ "$(basename "$package")" = "$1" ] || mv "$2/$(basename "$package")" "$2/$1"
}

install_maven_tool() { # install_maven_tool <name> <work dir>
  local artifact; artifact=$(maven_tool "$1")
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch $1"
  log "fetching $artifact from Maven Central"
  mvn -B -q -Dmaven.repo.local="$CACHE/m2" dependency:copy -Dartifact="$artifact" -DoutputDirectory="$2" \
    -Dmdep.stripVersion=false > "$CACHE/logs/$1-fetch.log" 2>&1 \
    || { cat "$CACHE/logs/$1-fetch.log" >&2; die "fetching $1 failed"; }
  mv "$2"/*.* "$2/$1" && chmod +x "$2/$1"
}

install_npm_tool() { # install_npm_tool <name> <work dir>: the package's bin/<name>, nothing else kept
  local package version; read -r package version <<<"$(npm_tool "$1")"
  command -v npm >/dev/null || die "npm (Node.js 20+) is needed to fetch $1"
  log "fetching $package@$version from the npm registry"
  npm install --prefix "$2" --no-save --no-audit --no-fund --loglevel=error "$package@$version" \
    > "$CACHE/logs/$1-fetch.log" 2>&1 || { cat "$CACHE/logs/$1-fetch.log" >&2; die "fetching $1 failed"; }
  mv "$2/node_modules/$package/bin/$1" "$2/$1"
}

install_promtool() { # install_promtool <work dir>: Debian's package, unpacked, nothing installed system-wide
  log "fetching promtool (Debian's prometheus package)"
  (cd "$1" && apt-get download prometheus >/dev/null 2>&1) \
    || { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && (cd "$1" && apt-get download prometheus >/dev/null); } \
    || die "apt-get download prometheus failed: install Debian's 'prometheus' package or set PROMTOOL"
  dpkg-deb -x "$1"/prometheus_*.deb "$1/root"
  mv "$1/root/usr/bin/promtool" "$1/promtool"
}

install_tools() { # install_tools <status dir>: each tool in turn, its outcome in <dir>/<name>.status
  mkdir -p "$1"
  for name in $TOOLS; do
    ( install_tool "$name" ) > "$1/$name.log" 2>&1; echo $? > "$1/$name.status"
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for <what> <seconds> <command...>
  local what=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.3
  done
  log "$what is ready"
}

kafka_usable() { "$ROOT/.cache/venv/bin/python" "$HERE/probe.py" kafka "127.0.0.1:$KAFKA_PORT"; }
mongo_usable() { "$ROOT/.cache/venv/bin/python" "$HERE/probe.py" mongo "mongodb://127.0.0.1:$MONGO_PORT/"; }

start_kafka() {
  external_kafka && return
  install_kafka
  local pidfile="$RUN/kafka.pid" dir="$DATA/kafka"
  if pid_alive "$pidfile"; then log "Kafka already running (pid $(cat "$pidfile"))"; return; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process (set KAFKA_PORT)"
  mkdir -p "$dir/log" "$RUN" "$LOGS"
  sed -e "s|@PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@LOG_DIR@|$dir/log|g" "$HERE/kafka/server.properties" > "$dir/server.properties"
  if [ ! -f "$dir/log/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$dir/server.properties" >> "$LOGS/kafka.log" 2>&1 || die "formatting Kafka storage failed (see $LOGS/kafka.log)"
  fi
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (log: $LOGS/kafka.log)"
  nohup java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dslf4j.internal.verbosity=WARN -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" \
    >> "$LOGS/kafka.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  local patience=${KAFKA_START_SECONDS:-90}  # a restored log on a busy machine may need longer
  wait_for "Kafka" "$patience" kafka_usable || die "Kafka did not become usable in $patience s (see $LOGS/kafka.log)"
}

start_ferretdb() {
  external_mongo && return
  install_ferretdb
  local pidfile="$RUN/ferretdb.pid"
  if pid_alive "$pidfile"; then log "FerretDB already running (pid $(cat "$pidfile"))"; return; fi
  port_open "$MONGO_PORT" && die "port $MONGO_PORT is taken by another process (set MONGO_PORT)"
  mkdir -p "$DATA/ferretdb" "$RUN" "$LOGS"
  log "starting FerretDB $FERRETDB_VERSION on 127.0.0.1:$MONGO_PORT (log: $LOGS/ferretdb.log)"
  nohup "$FERRETDB_BIN" --listen-addr "127.0.0.1:$MONGO_PORT" --data-dir "$DATA/ferretdb" \
    >> "$LOGS/ferretdb.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  wait_for "FerretDB" 30 mongo_usable || die "FerretDB did not become usable in 30 s (see $LOGS/ferretdb.log)"
}

stop_one() { # stop_one <name> <signal>
  local pidfile="$RUN/$1.pid"
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  local pid; pid=$(cat "$pidfile")
  kill "-$2" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then log "$1 ignored SIG$2 for 10 s, killing"; kill -KILL "$pid"; sleep 0.2; fi
  rm -f "$pidfile"
  log "$1 stopped"
}

status() {
  for name in kafka ferretdb; do
    if pid_alive "$RUN/$name.pid"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

print_env() {
  echo "export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
  echo "export MONGODB_URI=${MONGODB_URI:-mongodb://127.0.0.1:$MONGO_PORT/}"
}

# A consistent pair: the broker stops first, then the database, and both are copied while stopped.
# Every event the broker holds came from a database state the copy contains (events are published
# from the outbox only after their write), and every committed consumer offset is at or behind the
# effects stored (offsets are committed after the effects), so after a restore the outbox publishes
# what was still pending and consumers re-apply at most a few events, which they recognise. The
# services keep running meanwhile: NOT_SERVING for the seconds the two are away.
backup() { # backup <dir>
  local dir=$1 was_kafka= was_ferretdb=
  [ -e "$dir" ] && die "backup: $dir exists; choose a new directory"
  external_kafka && die "backup: KAFKA_BOOTSTRAP_SERVERS points at a broker of your own; back it up with its own tools (docs/deploy.md)"
  external_mongo && die "backup: MONGODB_URI points at a database of your own; back it up with mongodump (docs/deploy.md)"
  [ -d "$DATA/ferretdb" ] && [ -d "$DATA/kafka/log" ] || die "backup: nothing to back up in $DATA"
  pid_alive "$RUN/kafka.pid" && was_kafka=1
  pid_alive "$RUN/ferretdb.pid" && was_ferretdb=1
  mkdir -p "$dir"
  stop_one kafka TERM
  stop_one ferretdb TERM
  local failed=
  { cp -a "$DATA/ferretdb" "$dir/ferretdb" && mkdir -p "$dir/kafka" && cp -a "$DATA/kafka/log" "$dir/kafka/log" &&
    { [ ! -d "$DATA/secrets" ] || cp -a "$DATA/secrets" "$dir/secrets"; }; } || failed=1
  [ -n "$was_ferretdb" ] && start_ferretdb
  [ -n "$was_kafka" ] && start_kafka
  [ -z "$failed" ] || die "backup: copying into $dir failed"
  (cd "$dir" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS)
  printf 'created=%s\nkafka=%s\nferretdb=%s\n' "$(date -u +%FT%TZ)" "$KAFKA_VERSION" "$FERRETDB_VERSION" > "$dir/BACKUP"
  log "backed up $DATA into $dir ($(du -sh "$dir" | cut -f1)); $dir/secrets holds the keys: keep it as safe as they are"
}

restore() { # restore <dir>
  local dir=$1
  [ -f "$dir/BACKUP" ] && [ -f "$dir/SHA256SUMS" ] || die "restore: $dir is not a backup made by 'stack.sh backup'"
  [ -e "$DATA/ferretdb" ] || [ -e "$DATA/kafka" ] && die "restore: $DATA already holds data; restore into a fresh WENMING_DATA"
  (cd "$dir" && sha256sum --quiet -c SHA256SUMS) || die "restore: $dir does not match its checksums"
  mkdir -p "$DATA/kafka"
  cp -a "$dir/ferretdb" "$DATA/ferretdb"
  cp -a "$dir/kafka/log" "$DATA/kafka/log"
  if [ -d "$dir/secrets" ] && [ ! -e "$DATA/secrets" ]; then cp -a "$dir/secrets" "$DATA/secrets"; fi
  log "restored $dir into $DATA; start it with: stack.sh start"
}

each() { # each <verb> <target>
  case "$2" in
    all) "$1_kafka"; "$1_ferretdb" ;;
    kafka|ferretdb) "$1_$2" ;;
    *) die "unknown component '$2' (kafka, ferretdb or all)" ;;
  esac
}

cmd=${1:-}; target=${2:-all}
case "$cmd" in
  install)
    case "$target" in
      all) install_kafka; install_ferretdb; for name in $TOOLS; do install_tool "$name"; done ;;
      kafka|ferretdb) "install_$target" ;;
      *) install_tool "$target" ;;
    esac ;;
  tools) [ -n "${2:-}" ] || die "usage: stack.sh tools <status dir>"; rm -f "$2"/*.status; install_tools "$2" ;;
  start) each start "$target" ;;
  stop) if [ "$target" = all ]; then stop_one kafka TERM; stop_one ferretdb TERM; else stop_one "$target" TERM; fi ;;
  kill) stop_one "$target" KILL ;;
  status) status ;;
  env) print_env ;;
  backup|restore) [ -n "${2:-}" ] || die "usage: stack.sh $cmd <dir>"; "$cmd" "$2" ;;
  tool-path) tool_path "$target" ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 2 ;;
esac
