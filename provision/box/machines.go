package box

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// machineIndex is Vagrant's record of the machines it made, in
// VAGRANT_HOME/data/machine-index/index.
type machineIndex struct {
	Machines map[string]struct {
		Name      string `json:"name"`
		Path      string `json:"vagrantfile_path"`
		ExtraData struct {
			Box struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"box"`
		} `json:"extra_data"`
	} `json:"machines"`
}

// vagrantMachines maps each version of box name to the machines Vagrant's
// index under home lists as made from it, like `vagrant global-status`.
// An entry whose Vagrantfile directory is gone is stale and left out; a
// missing index has no machines.
func vagrantMachines(home, name string) (map[string][]string, error) {
	path := filepath.Join(home, "data", "machine-index", "index")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read vagrant machine index: %w", err)
	}
	return parseMachines(data, name)
}

func parseMachines(data []byte, name string) (map[string][]string, error) {
	var idx machineIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("parse vagrant machine index: %w", err)
	}
	out := map[string][]string{}
	for _, m := range idx.Machines {
		box := m.ExtraData.Box
		if box.Name != name || box.Version == "" {
			continue
		}
		if _, err := os.Stat(m.Path); m.Path != "" && err != nil {
			continue
		}
		out[box.Version] = append(out[box.Version], m.Name)
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out, nil
}
