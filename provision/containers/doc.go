// Package containers puts a lab's Docker side in place: the agent image, the
// Docker network bound to the lab bridge, and one container per plan node.
// It talks to dockerd through the Engine API (github.com/docker/docker/client
// with API version negotiation; Debian 12's engine speaks API 1.41).
//
// Every object it creates carries the plan's labels (io.hybridlab.lab=LAB)
// and, for containers, io.hybridlab.node and io.hybridlab.role, so Remove
// deletes exactly what the Ensure functions made. The agent image is shared
// by every lab and carries no lab label; Remove leaves it.
//
// # What Docker 20.10 does to a bridge it did not create
//
// Measured on Debian 12 (docker.io 20.10.24, kernel 6.18) with a bridge made
// beforehand by `ip link add BR address MAC mtu M type bridge`, its gateway
// address and STP off, then `docker network create -o
// com.docker.network.bridge.name=BR …`, `docker run --network …`, `docker
// rm`, `docker network rm`:
//
//   - create adopts the bridge: same ifindex, MAC, MTU, addresses and STP
//     state; Docker only adds its iptables rules. Among them is FORWARD
//     `-i BR -o BR -j ACCEPT`, which carries VM<->container frames when
//     br_netfilter sends bridged traffic through a FORWARD chain with policy
//     DROP; with enable_icc=false Docker writes `-j DROP` there instead, so
//     EnsureNetwork keeps ICC on.
//   - a container start adds a veth port; with the bridge's MAC set
//     explicitly and the network's MTU option equal to the bridge MTU, the
//     bridge's MAC, MTU and addresses stay as they were.
//   - `docker network rm` removes Docker's rules for the bridge and leaves a
//     bridge it did not create in place, with its addresses; it deletes a
//     bridge it created itself.
//
// Docker versions differ here (older ones dropped the address or deleted the
// bridge), so EnsureNetwork and Remove compare a snapshot of the bridge
// taken before and after and report any change (ErrBridgeChanged), and
// EnsureNetwork refuses to run when the bridge is missing, which would make
// Docker create, and later delete, a bridge of its own.
package containers
