// Command ferretdb-sqlite runs FerretDB v1 with its SQLite backend as the local
// MongoDB-protocol server for development and tests.
//
// It embeds the public github.com/FerretDB/FerretDB/ferretdb package instead of
// `go install`ing cmd/ferretdb, because the module zip on the Go proxy lacks
// build/version/version.txt and that binary panics at start (FerretDB issue #2982).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data-dir", "", "directory holding the SQLite files (created if missing)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	// WAL with synchronous=NORMAL: a commit no longer waits for fsync; a killed process loses
	// nothing committed (only a machine crash can lose the last commits). Use "full" to fsync
	// every commit.
	synchronous := flag.String("synchronous", "normal", "SQLite synchronous setting: normal or full")
	// TLS instead of plain TCP (the tests of the services' MONGODB_TLS settings use it)
	listenTLS := flag.String("listen-tls", "", "TLS address to listen on instead of --listen-addr")
	tlsCert := flag.String("tls-cert-file", "", "server certificate (PEM) for --listen-tls")
	tlsKey := flag.String("tls-key-file", "", "server key (PEM) for --listen-tls")
	tlsCA := flag.String("tls-ca-file", "", "CA (PEM) whose client certificates are required, if set")
	flag.Parse()

	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "ferretdb-sqlite: --data-dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-sqlite: cannot create %s: %v\n", *dataDir, err)
		os.Exit(1)
	}

	if *synchronous != "normal" && *synchronous != "full" {
		fmt.Fprintln(os.Stderr, "ferretdb-sqlite: --synchronous must be normal or full")
		os.Exit(2)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-sqlite: bad --log-level: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	listener := ferretdb.ListenerConfig{TCP: *listenAddr}
	if *listenTLS != "" {
		listener = ferretdb.ListenerConfig{TLS: *listenTLS, TLSCertFile: *tlsCert, TLSKeyFile: *tlsKey, TLSCAFile: *tlsCA}
	}
	db, err := ferretdb.New(&ferretdb.Config{
		Listener: listener,
		Logger:   logger,
		Handler:  "sqlite",
		// the SQLite handler wants a directory URI ending in a slash
		SQLiteURL: "file:" + *dataDir + "/?_pragma=synchronous(" + *synchronous + ")",
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-sqlite: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	logger.Warn("ferretdb-sqlite listening", "addr", *listenAddr, "data", *dataDir)
	if err := db.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-sqlite: %v\n", err)
		os.Exit(1)
	}
}
