// Package templates holds the files hybridlab renders for a lab:
// Vagrantfile.hybrid-base is the VM Vagrantfile, and a role's
// Vagrantfile.hybrid-ROLE redefines its "role" block.
package templates

import "embed"

// FS holds every template, by file name.
//
//go:embed Vagrantfile.*
var FS embed.FS
