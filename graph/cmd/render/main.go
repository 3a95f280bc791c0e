// Command render draws a lab for `setup graph` and `setup report`: it reads
// {"plan": …, "status": {node: running}} as JSON on stdin and writes the
// picture in --format to stdout.
//
// It is a program of its own so that the setup binary, which runs as root,
// never loads go-graphviz: that library compiles native code into a cache
// under $TMPDIR when its package is initialised, before main could choose
// a safe place. setup runs this program with TMPDIR pointing at a private
// directory of the user's.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"hybridlab/graph"
	"hybridlab/topology"
)

type input struct {
	Plan   *topology.Plan  `json:"plan"`
	Status map[string]bool `json:"status,omitempty"`
}

func main() {
	format := flag.String("format", graph.FormatSVG, "dot, svg or html")
	flag.Parse()
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil || in.Plan == nil {
		fmt.Fprintf(os.Stderr, "render: read plan from stdin: %v\n", err)
		os.Exit(2)
	}
	err := graph.Render(context.Background(), in.Plan, *format, os.Stdout,
		graph.Options{Status: in.Status})
	if err != nil {
		fmt.Fprintf(os.Stderr, "render: %v\n", err)
		os.Exit(1)
	}
}
