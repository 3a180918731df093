# Measured direct-kernel boot for Katana on AMD SEV-SNP.
# `make` lists the targets. Outputs go to out/ (ignored by git); downloaded
# kernels and other caches go to .cache/ (ignored by git).

SHELL       := /bin/bash
# README installs Go at /usr/local/go, but a fresh root shell on Debian does
# not have /usr/local/go/bin on PATH. Append it (a go already on PATH still
# wins) and export it, so the .ci scripts and tests that exec go find it too.
# Without a PATH (env -i) the shell would search its default: append to that.
export PATH := $(or $(PATH),/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin):/usr/local/go/bin
# go keeps its module and build caches under $HOME; a stripped environment
# (env -i, some CI runners) has no HOME: take it from the passwd database.
ifeq ($(HOME),)
export HOME := $(shell getent passwd "$$(id -u)" | cut -d: -f6)
endif
GO          ?= go
OUT         ?= out
CACHE       ?= .cache
# $(call sq,TEXT) is TEXT single-quoted for the shell, a quote in it
# included (a checkout at /home/o'brien/snpboot).
sq = '$(subst ','\'',$(1))'
# A fixed abbreviation (not core.abbrev's) and safe.directory (a checkout
# another user owns) so that the version, recorded in manifests, is the
# same wherever this commit is built; no tag (--exclude='*'): a clone
# without tags (shallow, --no-tags) would name the commit where one with
# them names its release tag.
# Only `make VERSION=...` sets it: a VERSION left in the environment by
# something else would not silently name the build.
# --dirty looks at tracked files only, but go builds every .go and .s file
# in a package's folder, tracked or not (ignored ones too): such a file
# also marks the version dirty. Not those go never builds: test files,
# testdata and vendor folders (-mod=readonly, below), names that start
# with "." or "_" (an editor's .#main.go), folders whose name starts with
# "." (.cache).
ifneq ($(origin VERSION),command line)
GIT_HERE    := git -c safe.directory=$(call sq,$(CURDIR))
VERSION     := $(shell v=$$($(GIT_HERE) describe --always --abbrev=12 --dirty --exclude='*' 2>/dev/null) || v=dev; \
  case $$v in (dev|*-dirty) ;; (*) test -z "$$($(GIT_HERE) ls-files --others -- ':(glob)**/*.go' ':(glob)**/*.s' ':(glob)**/*.syso' \
    ':(exclude,glob)**/*_test.go' ':(exclude,glob)**/testdata/**' ':(exclude,glob)**/vendor/**' ':(exclude,glob)**/.*/**' \
    ':(exclude,glob)**/[._]*.go' ':(exclude,glob)**/[._]*.s' ':(exclude,glob)**/[._]*.syso' 2>/dev/null | head -1)" || v=$$v-dirty ;; esac; echo $$v)
endif
SHARED      ?= $(abspath ../shared)
export SHARED_DIR := $(SHARED)

# Guest binaries are part of the launch measurement: static, no paths, no
# VCS stamps, no build id, and the toolchain go.mod names, whatever Go is
# installed (a newer one fetches go1.26.8 from the module proxy). GOFLAGS,
# GOEXPERIMENT and GOFIPS140 from the environment would change the bytes
# (a -tags, a -gcflags), and so would settings saved with `go env -w`,
# which go reads when a variable is empty: GOENV=off ignores that file,
# and the three are set. The toolchain's $GOROOT/go.env is read then too
# (GOENV=off does not skip it): `guest` refuses one that sets GOFLAGS or
# GOEXPERIMENT. A go.work in any folder above the checkout (or
# GOWORK) would add its replace and godebug lines: GOWORK=off. A vendor
# folder beside go.mod (`go mod vendor`; untracked, so the version stays
# clean) would switch go to -mod=vendor, which builds other bytes (no
# module sums in the build info) from sources go.sum does not check:
# -mod=readonly builds from the modules go.sum pins, vendor folder or not.
GOTOOLCHAIN_PIN := $(shell sed -n 's/^toolchain //p' go.mod)
# The tests run on the same toolchain as the builds (a test compares the
# Go version of binaries it builds with its own), whatever go.env says; a
# GOTOOLCHAIN in the environment still wins (the builds pin theirs).
GOTOOLCHAIN ?= $(GOTOOLCHAIN_PIN)
export GOTOOLCHAIN
GO_CLEAN_ENV := GOENV=off GOWORK=off GOTOOLCHAIN=$(GOTOOLCHAIN_PIN) GOFLAGS= GOEXPERIMENT= GOFIPS140=off CGO_ENABLED=0 GOAMD64=v1
GUEST_ENV   := $(GO_CLEAN_ENV) GOOS=linux GOARCH=amd64
HOST_ENV    := $(GO_CLEAN_ENV)
GUEST_FLAGS := -trimpath -buildvcs=false -mod=readonly -ldflags='-s -w -buildid='
HOST_FLAGS  := -trimpath -buildvcs=false -mod=readonly -ldflags='-s -w -buildid= -X main.version=$(VERSION)'

.DEFAULT_GOAL := help
.PHONY: help deps build guest test demo bench fuzz ci kernel kernel-source qemu-snp clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install the Debian packages the tests and the demo need (as root; skips what is there)
	./.ci/deps.sh

build: guest ## build static, reproducible out/guestinit, out/hostbuild and out/standin-katana
	$(GUEST_ENV) $(GO) build $(GUEST_FLAGS) -o $(OUT)/standin-katana ./hostbuild/testdata/standin-katana
	$(HOST_ENV) $(GO) build $(HOST_FLAGS) -o $(OUT)/hostbuild ./hostbuild

guest: ## build out/guestinit alone (the init the launch measurement covers)
	@mkdir -p $(OUT)
	@# An empty GOFLAGS or GOEXPERIMENT falls back to the toolchain's own
	@# $$GOROOT/go.env, which GOENV=off does not skip: refuse one that sets them.
	@set=$$($(GUEST_ENV) $(GO) env GOFLAGS GOEXPERIMENT | tr -d '\n'); \
	if [ -n "$$set" ]; then echo "make: the Go toolchain's go.env ($$($(GUEST_ENV) $(GO) env GOROOT)/go.env) sets GOFLAGS or GOEXPERIMENT ($$set), which would change the guest init's bytes and the launch measurement: remove them from that file" >&2; exit 1; fi
	$(GUEST_ENV) $(GO) build $(GUEST_FLAGS) -o $(OUT)/guestinit ./guestinit

kernel: ## fetch and unpack the Debian kernel package into .cache/kernel (boot tests, demo)
	./qemu/fetch-kernel.sh $(CACHE)/kernel

kernel-source: kernel ## fetch the kernel's Linux source (its command line parsers) into .cache/kernel-source for shared/bootcfg's differential test
	./qemu/fetch-kernel-source.sh $(CACHE)/kernel-source $(CACHE)/kernel

qemu-snp: ## fetch QEMU >= 9.1 from bookworm-backports into .cache/qemu-snp, not installed (checks the SEV-SNP command lines)
	./qemu/fetch-qemu-snp.sh $(CACHE)/qemu-snp

QEMU_SNP = $(abspath $(CACHE)/qemu-snp)/usr/bin/qemu-system-x86_64
LIBVIRT_SCHEMAS = $(abspath $(CACHE)/qemu-snp)/usr/share/libvirt/schemas

test: deps build kernel kernel-source ## run every test: unit, fuzz seeds, parity vectors, QEMU boot tests
	@./qemu/fetch-qemu-snp.sh $(CACHE)/qemu-snp >/dev/null || echo "make test: no QEMU >= 9.1 fetched (see above): the tests that need one (TestSNPArgvAcceptedByQEMU, TestBootNewerQEMU, TestDoctorRealQEMU, a TestRunStartErrors case) use \$$SNPBOOT_QEMU_SNP if set, else skip"
	$(GO) vet ./...
	SNPBOOT_QEMU_SNP=$${SNPBOOT_QEMU_SNP:-$$(test -x $(call sq,$(QEMU_SNP)) && echo $(call sq,$(QEMU_SNP)))} SNPBOOT_QEMU_SNP_DATA=$${SNPBOOT_QEMU_SNP_DATA:-$(call sq,$(abspath $(CACHE)/qemu-snp)/usr/share/qemu)} \
	SNPBOOT_LIBVIRT_SCHEMAS=$${SNPBOOT_LIBVIRT_SCHEMAS:-$$(test -e $(call sq,$(LIBVIRT_SCHEMAS)/domain.rng) && echo $(call sq,$(LIBVIRT_SCHEMAS)))} \
	KERNEL_SOURCE=$${KERNEL_SOURCE:-$(call sq,$(abspath $(CACHE)/kernel-source))} KERNEL_DIR=$(call sq,$(abspath $(CACHE)/kernel)) OUT_DIR=$(call sq,$(abspath $(OUT))) $(GO) test -count=1 -timeout 40m ./...
	@# PID 1 is concurrent (agent, supervisor, power, log queue, boot passes), and so are the QEMU runner and the host's packers and fetchers: those packages again under the race detector (~5 min; the hostbuild command package alone would add ~15).
	KERNEL_SOURCE=$${KERNEL_SOURCE:-$(call sq,$(abspath $(CACHE)/kernel-source))} KERNEL_DIR=$(call sq,$(abspath $(CACHE)/kernel)) CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./guestinit/... ./shared/... ./qemu/ ./initrd-layout/ ./hostbuild/internal/...
	@# go test prints no skip reasons for passing packages: name the hardware tier's, and the QEMU 9.1 check's.
	@if [ "$${SNPBOOT_SNP:-}" != 1 ]; then $(GO) test -count=1 -run '^TestSNPHardware$$' -v ./qemu/boottest | grep -E -- '--- SKIP|snp_test.go:' || true; fi
	@if [ ! -x $(call sq,$(QEMU_SNP)) ] && [ -z "$${SNPBOOT_QEMU_SNP:-}" ]; then SNPBOOT_QEMU_SNP= $(GO) test -count=1 -run '^TestSNPArgvAcceptedByQEMU$$' -v ./qemu | grep -E -- '--- SKIP|snpsyntax_test.go:' || true; \
	  SNPBOOT_QEMU_SNP= $(GO) test -count=1 -run '^TestDoctorRealQEMU$$' -v ./hostbuild | grep -E -- '--- SKIP|doctor_test.go:' || true; \
	  SNPBOOT_QEMU_SNP= KERNEL_DIR=$(call sq,$(abspath $(CACHE)/kernel)) OUT_DIR=$(call sq,$(abspath $(OUT))) $(GO) test -count=1 -run '^TestBootNewerQEMU$$' -v ./qemu/boottest | grep -E -- '--- SKIP|boot_test.go:' || true; fi

fuzz: ## run every fuzz target for a short smoke run (FUZZTIME, default 10s each)
	@KERNEL_SOURCE=$${KERNEL_SOURCE:-$$(test -f $(call sq,$(CACHE)/kernel-source/VERSION) && echo $(call sq,$(abspath $(CACHE)/kernel-source)))} ./.ci/fuzz.sh $${FUZZTIME:-10s}

bench: deps build kernel ## run the benchmarks side by side with their baselines (results: out/bench.md)
	@./.ci/bench.sh $(OUT)/bench.md

demo: deps build kernel ## build, pack the stand-in Katana, boot it under QEMU TCG and talk to it
	@./.ci/demo.sh

ci: test fuzz ## what CI runs: the tests, then the fuzz smoke run

clean: ## remove build outputs (keeps the kernel cache)
	rm -rf $(OUT)
