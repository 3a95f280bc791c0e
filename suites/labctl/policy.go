package labctl

import "time"

// Timeouts of the policy suite.
const (
	// Silence is how long one policy probe (TCP connect, UDP echo, one ping) waits for an
	// answer before it counts the traffic as dropped. Every denied cell of a policy matrix
	// costs it once, so it stays short; an allowed cell answers in milliseconds.
	Silence = time.Second
	// PolicyConverge bounds the wait for the observed policy matrix to equal the one the
	// policy predicts after `setup up` applied it: a few full matrix runs, each bounded by
	// the denied cells' Silence.
	PolicyConverge = 2 * time.Minute
)
