// Command probe is the hybridlab measurement agent: a static binary run inside containers, VMs
// and network namespaces so that every path is measured the same way. Results are JSON on
// stdout; errors go to stderr with a non-zero exit (2 for usage errors).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"hybridlab/probes"
)

// version is set at build time with -ldflags '-X main.version=…'.
var version = "dev"

const usageText = `probe — hybridlab measurement agent (JSON results on stdout)

Usage: probe COMMAND [flags]

Commands:
  serve    run TCP echo, UDP echo, TCP sink and HTTP servers until SIGTERM/SIGINT
  rr       request-response latency against a serve echo (HDR histogram percentiles)
  tput     TCP throughput against a serve sink
  dns      one DNS query over UDP against one server
  connect  TCP connect, or UDP send and await echo, with a timeout
  get      HTTP GET of a URL, by this node's own resolver
  version  print the build version

Run 'probe COMMAND --help' for a command's flags.
Exit codes: 0 success (connect and dns also when the target did not answer: the JSON says),
1 the measurement could not run, 2 usage error.
`

// exitUsage marks errors that are the caller's mistake.
type exitUsage struct{ err error }

func (e exitUsage) Error() string { return e.err.Error() }

type command func(ctx context.Context, args []string, stdout io.Writer) error

var commands = map[string]command{
	"serve":   runServe,
	"rr":      runRR,
	"tput":    runTput,
	"dns":     runDNS,
	"connect": runConnect,
	"get":     runGet,
	"version": runVersion,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "probe: unknown command %q\n\n%s", args[0], usageText)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd(ctx, args[1:], stdout)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(exitUsage)):
		fmt.Fprintf(stderr, "probe %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "probe %s: %v\n", args[0], err)
		return 1
	}
}

// parseFlags parses args into fs. --help prints the usage to stdout and returns flag.ErrHelp;
// bad flags and positional arguments are usage errors.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, intro string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "%s\n\nFlags:\n", strings.TrimSpace(intro))
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return flag.ErrHelp
	}
	if err != nil {
		return exitUsage{err}
	}
	if fs.NArg() > 0 {
		return exitUsage{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

func runVersion(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	intro := "Usage: probe version\n\nPrints the build as JSON."
	if err := parseFlags(fs, args, stdout, intro); err != nil {
		return err
	}
	return writeJSON(stdout, probes.BuildInfo(version))
}
