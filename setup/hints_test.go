package main

import "testing"

func TestWithFile(t *testing.T) {
	tests := []struct{ file, in, want string }{
		{"", "run 'go run ./setup up' again", "run 'go run ./setup up' again"},
		{"/tmp/lab.yaml", "run 'go run ./setup up' again, or 'go run ./setup down'",
			"run 'go run ./setup up -f /tmp/lab.yaml' again, or 'go run ./setup down -f /tmp/lab.yaml'"},
		{"/tmp/my lab.yaml", "`go run ./setup doctor` names which",
			"`go run ./setup doctor -f '/tmp/my lab.yaml'` names which"},
		{"/tmp/l.yaml", "docker rm -f x && go run ./setup up",
			"docker rm -f x && go run ./setup up -f /tmp/l.yaml"},
		{"/tmp/l.yaml", "run 'setup down' and 'setup up' to recreate it",
			"run 'setup down -f /tmp/l.yaml' and 'setup up -f /tmp/l.yaml' to recreate it"},
		{"/tmp/l.yaml", "setup upgrade is not a command", "setup upgrade is not a command"},
		{"/tmp/l.yaml", "if lab x is not running: go run ./setup down -f <its lab file>",
			"if lab x is not running: go run ./setup down -f <its lab file>"},
	}
	for _, tt := range tests {
		g := &globals{labFile: tt.file}
		if got := g.withFile(tt.in); got != tt.want {
			t.Errorf("withFile(%q) with file %q = %q, want %q", tt.in, tt.file, got, tt.want)
		}
	}
}
