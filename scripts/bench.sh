#!/usr/bin/env bash
# Runs Tandem's benchmarks and writes docs/benchmarks.md and the chart
# docs/benchmarks.png: the Go benchmarks of the media path, and the latency
# harness (the real tandem binary in its own process, Go WebRTC viewers over
# loopback, beside Chrome's own floor and a JPEG-over-WebSocket baseline).
# Numbers are what one run on this machine saw; the machine and the command
# are written too. About 27 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp)
profile=$(mktemp)
go build -o bin/tandem ./cmd/tandem
{
	go test -run '^$' -bench . -benchtime 100x ./pkg/media/
	go test -run '^$' -bench . -benchtime 500x ./pkg/mask/
	go test -run '^$' -bench 'Detect' -benchtime 5x ./browserpool/
	go test -run '^$' -bench 'CapturePause' -benchtime 2x ./browserpool/
	# 100 clicks per role, for the floor and for the baseline, per page
	TANDEM_BENCH_BIN="$PWD/bin/tandem" go test -timeout 40m -run '^$' -bench 'ClickToVisible' -benchtime 100x ./cmd/tandem/
	TANDEM_BENCH_BIN="$PWD/bin/tandem" go test -timeout 20m -run '^$' -bench 'SessionStart' -benchtime 10x ./cmd/tandem/
	TANDEM_BENCH_BIN="$PWD/bin/tandem" go test -timeout 20m -run '^$' -bench 'SupportBandwidth' -benchtime 3x ./cmd/tandem/
	TANDEM_BENCH_BIN="$PWD/bin/tandem" go test -timeout 20m -run '^$' -bench 'Pointer' -benchtime 3x ./cmd/tandem/
	TANDEM_BENCH_BIN="$PWD/bin/tandem" TANDEM_BENCH_PROFILE="$profile" go test -timeout 20m -run '^$' -bench 'SessionCPU' -benchtime 3x ./cmd/tandem/
	TANDEM_BENCH_BIN="$PWD/bin/tandem" go test -timeout 20m -run '^$' -bench 'MaskScrolling' -benchtime 3x ./cmd/tandem/
	TANDEM_BENCH_BIN="$PWD/bin/tandem" go test -timeout 30m -run '^$' -bench 'Density' -benchtime 1x ./cmd/tandem/
} 2>/dev/null | tee "$out"
go run ./scripts/benchplot -in "$out" -out docs/benchmarks.png

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
	cat docs/benchmarks.head.md
	echo
	echo "## Latest run"
	echo
	echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "- machine: $(nproc) cores ($cpu), $(free -g | awk '/^Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME")"
	echo "- $(go version), $(/usr/lib/chromium/chromium-headless-shell --version 2>/dev/null | head -1)"
	echo "- command: \`go tool task bench\`"
	echo
	echo '![Click to visible (p50, p95) of the floor, Tandem and the baseline; bandwidth of Tandem against the baseline](benchmarks.png)'
	echo
	echo '```'
	grep -E '^(Benchmark|goos|goarch|cpu)' "$out"
	echo '```'
	echo
	echo "## Where tandem's CPU goes"
	echo
	echo "A 10 s CPU profile of the tandem process during \`BenchmarkSessionCPU\` (one"
	echo "session on the animated 720p page, a customer and an agent watching),"
	echo "from \`--pprof-addr\`: \`go tool pprof -top -cum -nodecount 25\`, cumulative time first."
	echo
	echo '```'
	go tool pprof -top -cum -nodecount 25 bin/tandem "$profile" 2>/dev/null | sed -n '/^Duration\|flat/,$p'
	echo '```'
} > docs/benchmarks.md
rm -f "$out" "$profile"
echo "wrote docs/benchmarks.md"
