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

.PHONY: help test unit suites e2e lab down status plan doctor graph check box latency \
	create-hybrid-network hybrid-base hybrid-docker bench bench-updown deps

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

test: ## unit tests; as root also installs deps, starts daemons, runs the lab suites
	@$(MAKE) --no-print-directory unit
ifeq ($(ROOT),yes)
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory suites
else
	@echo "make test: not root, so the root-level suites (bridge, nftables, Docker, VMs) were skipped"
endif

unit: ## go vet + unit tests (no root needed; kernel tests skip without root)
	$(GO) vet ./...
	$(GO) test -count=1 $(UNIT_PKGS)

deps: ## install missing Debian packages and start dockerd/libvirtd (root)
	$(SETUP) deps --vms

suites: ## Ginkgo suites (root): provisioner, feasibility, connectivity, DNS; JUnit in reports/out
	@mkdir -p $(OUT)
	$(GINKGO) -r --keep-going --label-filter='$(TEST_LABELS)' --timeout=80m \
		--junit-report=junit.xml --output-dir=$(OUT) ./suites

e2e: ## deps, box, lab up, every suite with JUnit in reports/out, lab down (KEEP=1 keeps it)
	@mkdir -p $(OUT)
	$(SETUP) deps --vms
	$(SETUP) box
	$(SETUP) up
	HYBRIDLAB_REUSE=1 $(GINKGO) -r --keep-going --timeout=120m \
		--junit-report=junit.xml --output-dir=$(OUT) ./suites; rc=$$?; \
	if [ -z "$(KEEP)" ]; then $(SETUP) down; fi; exit $$rc

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

latency: ## the latency suite alone (ginkgo -focus=latency)
	@mkdir -p $(OUT)
	$(GINKGO) -r --focus=latency --label-filter=perf --junit-report=latency-junit.xml \
		--output-dir=$(OUT) ./suites

bench: ## Go benchmarks (probe hot loop, plan)
	$(GO) test -run='^$$' -bench=. -benchmem ./probes/... ./topology/...

bench-updown: ## time up/down of the network half over RUNS runs (default 5); add VMS=1 for VMs
	$(GO) run ./bench/cmd/updown -runs $${RUNS:-5} $(if $(VMS),-vms)
