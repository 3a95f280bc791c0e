package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"hybridlab/provision"
	"hybridlab/reports"
	"hybridlab/topology"
)

func newReportCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write the lab report (index.html) from this run's JUnit, latency and bring-up files",
		Long: `report gathers what the last test run left in the output directory and writes
index.html, which answers four questions with that evidence: can VMs and
containers share one bridge reliably (the feasibility specs), how address
conflicts are avoided (the plan's ledger, checked against the live lab when
it is up), what each path costs (latency.json), and what isolates what
(policy-matrix.json, when the policy suite wrote one). It also merges every
JUnit file there into junit-all.xml and draws topology.svg.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			in := reports.IndexInput{Lab: p.Lab, Ledger: p.Ledger()}
			merged := filepath.Join(out, "junit-all.xml")
			if err := reports.MergeJUnit(merged, out); err == nil {
				in.JUnit = merged
			} else if !errors.Is(err, reports.ErrNoJUnit) {
				return err
			}
			in.Latency = ifExists(filepath.Join(out, "latency.json"))
			in.Bringup = copyIfExists(filepath.Join(provision.StateDir(p.Lab), "bringup.json"),
				filepath.Join(out, "bringup.json"))
			// The live check compares a running lab; after `down` there is
			// nothing to compare, and the page says no check was made.
			if st := provision.Status(cmd.Context(), p); os.Geteuid() == 0 && st.Bridge != nil {
				checked, problems := st.LedgerProblems()
				in.LedgerCheck = &reports.LedgerCheck{OK: len(problems) == 0, Checked: checked,
					Problems: problems}
			}
			if data, err := os.ReadFile(filepath.Join(out, "policy-matrix.json")); err == nil {
				var m reports.PolicyMatrix
				if err := json.Unmarshal(data, &m); err != nil {
					return fmt.Errorf("read policy-matrix.json: %w", err)
				}
				in.Policies = &m
			}
			if err := writeGraph(cmd, p, filepath.Join(out, "topology.svg")); err == nil {
				in.Links = append(in.Links, reports.Link{Title: "Topology", Href: "topology.svg"})
			}
			if err := reports.WriteIndex(out, in); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", filepath.Join(out, "index.html"))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "reports/out", "the run's output directory")
	return cmd
}

func ifExists(path string) string {
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

func copyIfExists(src, dst string) string {
	in, err := os.Open(src)
	if err != nil {
		return ""
	}
	defer in.Close()
	f, err := os.Create(dst)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := io.Copy(f, in); err != nil {
		return ""
	}
	return dst
}

func writeGraph(cmd *cobra.Command, p *topology.Plan, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return renderGraph(cmd.Context(), p, "svg", nil, f)
}
