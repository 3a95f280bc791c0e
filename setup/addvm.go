package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"hybridlab/provision"
	"hybridlab/topology"
)

// extraVMsFile holds VMs added to a lab with add-vm, on top of its lab.yaml.
func extraVMsFile(lab string) string {
	return filepath.Join(provision.StateDir(lab), "extra-vms.yaml")
}

func labName(lab *topology.Lab) string {
	if lab.Name == "" {
		return topology.DefaultName
	}
	return lab.Name
}

func loadExtraVMs(lab *topology.Lab) ([]topology.VM, error) {
	data, err := os.ReadFile(extraVMsFile(labName(lab)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read added VMs: %w", err)
	}
	var vms []topology.VM
	if err := yaml.UnmarshalStrict(data, &vms); err != nil {
		return nil, fmt.Errorf("%s: %w", extraVMsFile(labName(lab)), err)
	}
	return vms, nil
}

func newAddVMCmd(g *globals) *cobra.Command {
	var role, segment string
	var memory int
	cmd := &cobra.Command{
		Use:   "add-vm NAME",
		Short: "Add a VM to the lab's plan (then run up); used by make hybrid-base/hybrid-docker",
		Long: `add-vm records one more VM for the lab on top of its lab.yaml, in the lab's
state directory, after checking that the plan with it is valid. The next
'setup up' creates it; 'setup down' removes it and forgets the addition.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, err := topology.Load(g.labFile)
			if err != nil {
				return err
			}
			extra, err := loadExtraVMs(lab)
			if err != nil {
				return err
			}
			if p0, err := g.loadPlan(); err == nil {
				if n, taken := p0.Node(args[0]); taken {
					return fmt.Errorf("add vm %q: the lab has a %s of that name; pick another "+
						"name", args[0], n.Kind)
				}
			}
			extra = append(extra, topology.VM{Name: args[0], Role: role, Memory: memory,
				Segment: segment})
			lab.VMs = append(lab.VMs, extra...)
			p, err := topology.NewPlan(lab)
			if err != nil {
				return fmt.Errorf("add vm %q: %w", args[0], err)
			}
			data, err := yaml.Marshal(extra)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(provision.StateDir(p.Lab), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(extraVMsFile(p.Lab), data, 0o644); err != nil {
				return fmt.Errorf("record added vm: %w", err)
			}
			n, _ := p.Node(args[0])
			fmt.Fprintln(cmd.OutOrStdout(), g.withFile(fmt.Sprintf("added vm %s (role %s) on "+
				"segment %s at %s, mac %s; run 'go run ./setup up' to create it", n.Name, n.Role,
				p.SegmentOf(n).Name, n.IP, n.MAC)))
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", topology.RoleBase, "base, docker or observer")
	cmd.Flags().IntVar(&memory, "memory", 0, "memory in MiB (default 512)")
	cmd.Flags().StringVar(&segment, "segment", "",
		"segment the VM's lab NIC joins (default main; see segments: in lab.yaml)")
	return cmd
}
