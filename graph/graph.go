// Package graph draws a lab's plan as a picture: the host with its gateway
// address and nft guard, the lab bridge as a hub, every VM and container
// with its name, role, address, MAC and DNS name, and the management
// network. A routed lab draws each segment (its bridge, subnet and nodes)
// as a cluster of its own, and the host as the router between them, joined
// to each segment's bridge by an edge labelled with that gateway. Graphviz
// (github.com/goccy/go-graphviz, compiled to WebAssembly and run by wazero,
// so no dot binary is needed) lays it out and renders it. `setup graph` is
// the command that calls it.
package graph

import (
	"fmt"
	"html"
	"sort"
	"strings"

	"hybridlab/topology"
)

// Options change what the picture shows.
type Options struct {
	// Status overlays live state: node name → up (true) or down (false).
	// Nodes missing from the map are drawn without a state. Nil draws the
	// plan alone.
	Status map[string]bool
}

// Colours per kind of object: fill, border.
var (
	colHost   = [2]string{"#f3f4f6", "#374151"}
	colBridge = [2]string{"#fef3c7", "#b45309"}
	colVM     = [2]string{"#dbeafe", "#1d4ed8"}
	colCtr    = [2]string{"#dcfce7", "#15803d"}
	colMgmt   = [2]string{"#ede9fe", "#6d28d9"}
	colUp     = "#15803d"
	colDown   = "#b91c1c"
)

// DOT returns the plan as a Graphviz graph in the DOT language. The output
// depends only on p and opts, so it can be compared with a golden file.
func DOT(p *topology.Plan, opts Options) (string, error) {
	if p == nil {
		return "", fmt.Errorf("draw lab: no plan")
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("graph %q {", "lab "+p.Lab)
	w(`  graph [rankdir=TB, fontname="Helvetica", fontsize=16, labelloc=t, nodesep=0.3,`)
	w(`         ranksep=0.7, pad=0.3, label=%s];`, quote(title(p)))
	w(`  node [fontname="Helvetica", fontsize=10, shape=plain];`)
	w(`  edge [color="#6b7280", fontname="Helvetica", fontsize=9];`)
	w(`  host [label=<%s>];`, hostLabel(p))
	if p.Routed() {
		for _, seg := range p.AllSegments() {
			writeSegment(w, p.View(seg.Name), opts)
		}
	} else {
		writeHub(w, p, opts)
	}
	w(`  mgmt [label=<%s>];`, mgmtLabel(p))
	for _, n := range p.VMs() {
		w(`  %s -- mgmt [style=dashed, color=%q];`, nodeID(n), colMgmt[1])
	}
	if len(p.VMs()) == 0 {
		w(`  host -- mgmt [style=dashed, color=%q];`, colMgmt[1])
	}
	writeLegend(w, opts, p.Routed())
	w("}")
	return b.String(), nil
}

// writeHub draws the one bridge of a lab without segments, with the VMs
// and containers around it.
func writeHub(w func(string, ...any), p *topology.Plan, opts Options) {
	w(`  bridge [label=<%s>];`, bridgeLabel(p))
	w(`  host -- bridge [label=%s, penwidth=2];`, quote(p.Bridge.Address.String()))
	writeNodes(w, "  ", "", "bridge", p, opts)
}

// writeSegment draws one segment of a routed lab (view is the plan as seen
// from it) as a cluster holding its bridge and nodes, and the host's link
// to its bridge.
func writeSegment(w func(string, ...any), view *topology.Plan, opts Options) {
	seg := view.Segments[0].Name
	br := quote("bridge/" + seg)
	w(`  subgraph cluster_segment_%s {`, dotID(seg))
	w(`    label=%s; style="rounded"; color=%q; fontsize=12;`,
		quote(fmt.Sprintf("segment %s (subnet %s)", seg, view.Subnet)), colBridge[1])
	w(`    %s [label=<%s>];`, br, bridgeLabel(view))
	writeNodes(w, "    ", dotID(seg)+"_", br, view, opts)
	w(`  }`)
	w(`  host -- %s [label=%s, penwidth=2];`, br, quote(view.Bridge.Address.String()))
}

// writeNodes draws the VM and container clusters of p and the edges from
// bridge (a DOT node ID) to each node.
func writeNodes(w func(string, ...any), indent, prefix, bridge string, p *topology.Plan,
	opts Options) {
	writeCluster(w, indent, prefix+"vms", clusterTitle("VMs", "dhcp_range "+p.DHCP.String()),
		p.VMs(), opts)
	writeCluster(w, indent, prefix+"containers", clusterTitle("containers",
		"docker network "+p.Docker.Network+", ip-range "+p.Docker.IPRange.String()),
		p.Containers(), opts)
	for _, n := range p.Nodes {
		w(`%s%s -- %s [color=%q];`, indent, bridge, nodeID(n), colours(n)[1])
	}
}

// dotID makes a segment name (a DNS label) usable in a DOT identifier.
func dotID(name string) string { return strings.ReplaceAll(name, "-", "_") }

func title(p *topology.Plan) string {
	var subnets []string
	for _, s := range p.Subnets() {
		subnets = append(subnets, s.String())
	}
	return fmt.Sprintf("hybridlab lab %q: %s, domain %s, MTU %d",
		p.Lab, strings.Join(subnets, " + "), p.Domain, p.MTU)
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func nodeID(n topology.Node) string { return quote(n.Kind + "/" + n.Name) }

func colours(n topology.Node) [2]string {
	if n.Kind == topology.KindVM {
		return colVM
	}
	return colCtr
}

func clusterTitle(what, detail string) string { return what + " (" + detail + ")" }

func writeCluster(w func(string, ...any), indent, id, label string, nodes []topology.Node,
	opts Options) {
	if len(nodes) == 0 {
		return
	}
	w(`%ssubgraph cluster_%s {`, indent, id)
	w(`%s  label=%s; style="rounded,dashed"; color="#9ca3af"; fontsize=11;`, indent,
		quote(label))
	for _, n := range nodes {
		w(`%s  %s [label=<%s>];`, indent, nodeID(n), nodeLabel(n, opts))
	}
	w(`%s}`, indent)
}

// table renders an HTML-like Graphviz label: a bold header row and
// key/value rows. Every value is escaped.
func table(col [2]string, border int, header string, rows [][2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<TABLE BGCOLOR="%s" COLOR="%s" BORDER="%d" CELLBORDER="0" `+
		`CELLSPACING="0" CELLPADDING="3" STYLE="ROUNDED">`, col[0], col[1], border)
	fmt.Fprintf(&b, `<TR><TD COLSPAN="2"><B>%s</B></TD></TR>`, header)
	for _, r := range rows {
		// Values are set in Courier: every monospace font has its metrics, so
		// the width Graphviz reserves holds whatever font the viewer picks.
		fmt.Fprintf(&b, `<TR><TD ALIGN="LEFT">%s</TD>`+
			`<TD ALIGN="LEFT"><FONT FACE="Courier">%s</FONT></TD></TR>`,
			html.EscapeString(r[0]), r[1])
	}
	b.WriteString(`</TABLE>`)
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }

func hostLabel(p *topology.Plan) string {
	if !p.Routed() {
		return table(colHost, 2, "host", [][2]string{
			{"gateway", esc(p.Gateway.String())},
			{"DNS, DHCP", esc("dnsmasq on " + p.Gateway.String())},
			{"nft guard", esc("table " + p.NFTable)},
		})
	}
	var rows [][2]string
	var gws []string
	for _, s := range p.AllSegments() {
		rows = append(rows, [2]string{"gateway " + s.Name, esc(s.Gateway.String())})
		gws = append(gws, s.Gateway.String())
	}
	rows = append(rows,
		[2]string{"routes", esc(fmt.Sprintf("between %d segments", len(gws)))},
		[2]string{"DNS, DHCP", esc("dnsmasq on " + strings.Join(gws, ", "))},
		[2]string{"nft guard", esc("table " + p.NFTable)})
	return table(colHost, 2, "host (router)", rows)
}

func bridgeLabel(p *topology.Plan) string {
	return table(colBridge, 2, "bridge "+esc(p.Bridge.Name), [][2]string{
		{"address", esc(p.Bridge.Address.String())},
		{"mac", esc(p.Bridge.MAC)},
		{"mtu", fmt.Sprint(p.Bridge.MTU)},
	})
}

func mgmtLabel(p *topology.Plan) string {
	m := p.Management
	return table(colMgmt, 1, "management network "+esc(m.Network), [][2]string{
		{"bridge", esc(m.Bridge)},
		{"subnet", esc(m.Subnet.String())},
		{"dhcp", esc(m.DHCP.String())},
		{"use", "Vagrant SSH, no forwarding"},
	})
}

func nodeLabel(n topology.Node, opts Options) string {
	col := colours(n)
	rows := [][2]string{
		{"ip", "<B>" + esc(n.IP.String()) + "</B>"},
		{"mac", esc(n.MAC)},
		{"dns", esc(n.DNS)},
	}
	if up, known := opts.Status[n.Name]; known {
		state, c := "down", colDown
		if up {
			state, c = "up", colUp
		}
		rows = append(rows, [2]string{"state", fmt.Sprintf(`<FONT COLOR="%s"><B>%s</B></FONT>`,
			c, state)})
		if !up {
			col[1] = colDown
		}
	}
	kind := n.Kind
	if n.Role != n.Kind {
		kind += " · " + n.Role
	}
	header := esc(n.Name) + `<BR/><FONT POINT-SIZE="9">` + esc(kind) + `</FONT>`
	return table(col, 2, header, rows)
}

func writeLegend(w func(string, ...any), opts Options, routed bool) {
	items := map[string][2]string{
		"1 host": colHost, "2 bridge": colBridge, "3 vm": colVM,
		"4 container": colCtr, "5 management": colMgmt,
	}
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(`<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="2" CELLPADDING="3">`)
	b.WriteString(`<TR><TD COLSPAN="2" BORDER="0"><B>legend</B></TD></TR>`)
	for _, k := range keys {
		c := items[k]
		fmt.Fprintf(&b, `<TR><TD BGCOLOR="%s" COLOR="%s" WIDTH="16"> </TD>`+
			`<TD BORDER="0" ALIGN="LEFT">%s</TD></TR>`, c[0], c[1], k[2:])
	}
	if opts.Status != nil {
		fmt.Fprintf(&b, `<TR><TD BORDER="0"><FONT COLOR="%s"><B>up</B></FONT></TD>`+
			`<TD BORDER="0"><FONT COLOR="%s"><B>down</B></FONT></TD></TR>`, colUp, colDown)
	}
	b.WriteString(`<TR><TD COLSPAN="2" BORDER="0" ALIGN="LEFT">dashed: management link</TD></TR>`)
	if routed {
		b.WriteString(`<TR><TD COLSPAN="2" BORDER="0" ALIGN="LEFT">` +
			`host–bridge: gateway, routed between segments</TD></TR>`)
	}
	b.WriteString(`</TABLE>`)
	w(`  legend [label=<%s>];`, b.String())
	w(`  { rank=same; host; legend; }`)
}
