# hybridlab — every target a user or CI runs. `make help` lists them.
SHELL := /bin/bash
GO ?= go
GINKGO := $(GO) tool ginkgo
SETUP := $(GO) run ./setup
OUT := reports/out
ROOT := $(shell [ "$$(id -u)" = 0 ] && echo yes)
# Suites of `make test`: everything except the performance suite.
TEST_LABELS ?= !perf
UNIT_PKGS = $$($(GO) list ./... | grep -v /suites/)
NAME ?=
KEEP ?=

.PHONY: help test unit suites e2e lab down status plan doctor graph check box latency latency-floor \
	create-hybrid-network hybrid-base hybrid-docker bench bench-updown deps

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

test: ## as root: install deps, start daemons, unit + kernel tests, every lab suite; else unit only
ifeq ($(ROOT),yes)
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory suites
else
	@$(MAKE) --no-print-directory unit
	@echo "make test: not root, so the kernel tests and lab suites (bridge, nftables, Docker, VMs) were skipped"
endif

# TMPDIR is the checkout's own (writable by its owner only, enterable by
# dnsmasq's user for the DNS tests): go-graphviz (package graph) caches
# compiled code under $$TMPDIR/go-graphviz, which must not be a shared /tmp.
# -p 1: the root tests of provision/containers and provision/dnsmasq both
# use the test lab hlc (10.0.5.1 with a dnsmasq); run side by side, one can
# find the other's listener ("Address already in use").
unit: ## go vet + package tests (-short: VM boots are left to the suites; kernel tests need root)
	@mkdir -p .cache/tmp && chmod 755 .cache/tmp
	$(GO) vet ./...
	TMPDIR=$(CURDIR)/.cache/tmp $(GO) test -p 1 -short -count=1 $(UNIT_PKGS)

deps: ## install missing Debian packages and start dockerd/libvirtd (root)
	$(SETUP) deps --vms --bench

# The provisioner suite brings the default lab up and down itself, so it runs
# first; the other suites then share one lab (HYBRIDLAB_REUSE=1), which is
# taken down at the end whatever they found.
suites: ## Ginkgo suites (root) minus perf; JUnit and index.html in reports/out
	@mkdir -p $(OUT)
	$(GINKGO) --label-filter='$(TEST_LABELS)' --timeout=30m \
		--junit-report=provision.xml --output-dir=$(OUT) ./suites/provision
	$(SETUP) up
	HYBRIDLAB_REUSE=1 $(GINKGO) -r --keep-going --label-filter='$(TEST_LABELS)' --timeout=60m \
		--skip-package=provision,latency --junit-report=suites.xml --output-dir=$(OUT) ./suites; \
	rc=$$?; $(SETUP) report -o $(OUT); $(SETUP) down; exit $$rc

e2e: ## deps, box, lab up, every suite incl. latency, index.html in reports/out, down (KEEP=1 keeps it)
	@mkdir -p $(OUT)
	$(SETUP) deps --vms --bench
	$(GINKGO) --junit-report=provision.xml --output-dir=$(OUT) ./suites/provision
	$(SETUP) box
	$(SETUP) up
	HYBRIDLAB_REUSE=1 $(GINKGO) -r --keep-going --timeout=120m --skip-package=provision \
		--junit-report=suites.xml --output-dir=$(OUT) ./suites; rc=$$?; \
	$(SETUP) report -o $(OUT); if [ -z "$(KEEP)" ]; then $(SETUP) down; fi; exit $$rc

lab: ## go run ./setup up (the default lab, VMs included)
	$(SETUP) up

create-hybrid-network: ## just the bridge, DNS/DHCP, guard and containers (no VMs)
	$(SETUP) up --vms=false

hybrid-base: ## add a base VM to the running lab: make hybrid-base NAME=web2
	@test -n "$(NAME)" || { echo "usage: make hybrid-base NAME=<vm name>"; exit 2; }
	$(SETUP) add-vm $(NAME) --role base
	$(SETUP) up

hybrid-docker: ## add a docker-role VM to the running lab: make hybrid-docker NAME=dock2
	@test -n "$(NAME)" || { echo "usage: make hybrid-docker NAME=<vm name>"; exit 2; }
	$(SETUP) add-vm $(NAME) --role docker
	$(SETUP) up

check: ## connectivity matrix of the running lab (ICMP/TCP/UDP between every pair)
	$(SETUP) check

down: ## remove the lab
	$(SETUP) down

status: ## show the running lab
	$(SETUP) status

plan: ## print the IP plan of the lab (no root)
	$(SETUP) plan

doctor: ## find what breaks hybrid networks on this host
	$(SETUP) doctor

graph: ## draw the lab to reports/out/topology.svg
	@mkdir -p $(OUT)
	$(SETUP) graph --format svg -o $(OUT)/topology.svg

box: ## build the offline Vagrant box (cached)
	$(SETUP) box

latency: ## the latency suite alone (ginkgo -focus=latency): reports/out/latency.{json,html}
	@mkdir -p $(OUT)
	$(GINKGO) --focus=latency --junit-report=latency-junit.xml --output-dir=$(OUT) ./suites/latency
	$(SETUP) report -o $(OUT)

latency-floor: ## loopback and veth floor only, no lab (root): reports/out/latency.{json,html}
	@mkdir -p bin $(OUT)
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/probe ./probes/cmd/probe
	$(GO) run ./bench/cmd/latency -probe bin/probe -o $(OUT)

bench: ## Go benchmarks (probe hot loop, histograms, plan, bench statistics)
	$(GO) test -run='^$$' -bench=. -benchmem ./probes/... ./topology/... ./bench/...

bench-updown: ## time up/down of the network half over RUNS runs (default 5); add VMS=1 for VMs
	$(GO) run ./bench/cmd/updown -runs $${RUNS:-5} $(if $(VMS),-vms)
