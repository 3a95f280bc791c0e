// Package reports writes the lab's evidence as files a person opens in a browser:
// latency.json and latency.html (WriteLatency), the run's index page answering the lab's four
// questions (WriteIndex), and one JUnit file merged from the suites' reports (MergeJUnit).
// Plots are SVG, drawn with gonum.org/v1/plot and embedded inline, so every page is a single
// self-contained file. Writers create their directory and never log.
package reports
