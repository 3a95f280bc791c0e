// Package bench measures the latency and throughput of network paths with same-run
// baselines. Every path is measured with the probe agent (hybridlab/probes), in-process or
// through a probes/remote Runner; repetitions are interleaved across paths (A B C A B C …)
// so that drift of the host hits every path alike; and each path's percentiles are reported
// as a ratio to the floor path — two network namespaces joined by a veth pair — measured in
// the same run. A fidelity check runs sockperf and iperf3 on the same path next to the probe.
//
// The package never logs; Run returns a JSON-serialisable Result.
package bench
