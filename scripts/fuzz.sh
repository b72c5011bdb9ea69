#!/usr/bin/env bash
# fuzz.sh runs every Fuzz target of the module, one after the other, for
# FUZZTIME each (default 20s), and ends with a table of executions per second.
#
#   FUZZTIME       how long each target runs (go test -fuzztime)
#   FUZZMINIMIZE   bound on minimizing a new input (go test -fuzzminimizetime;
#                  default 200x: 200 runs; Go's default of 60 s stalls targets
#                  whose inputs are kilobytes that cannot shrink)
#   FUZZPARALLEL   fuzzing workers per target (default 1)
#   FUZZKEEP=1     copy the inputs each target's run found (its corpus in
#                  $GOCACHE/fuzz) into the package's testdata/fuzz/<Target>,
#                  where plain `go test` replays them: review with git status
#                  and commit the ones worth keeping as regression seeds
#   FUZZTARGETS    a regexp: run only the targets whose "dir Name" matches
#
# A target that fails (a crasher, written to testdata/fuzz by go test) does
# not stop the others; the script then exits 1.
set -uo pipefail

GO=${GO:-go}
time=${FUZZTIME:-20s}
minimize=${FUZZMINIMIZE:-200x}
parallel=${FUZZPARALLEL:-1}
keep=${FUZZKEEP:-0}
only=${FUZZTARGETS:-.}

cd "$(dirname "$0")/.."
mod=$($GO list -m)
cache=$($GO env GOCACHE)/fuzz/$mod
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# seconds converts a Go duration as the fuzzer prints it (1m0s, 45s, 1h2m3s).
seconds() {
	awk -v d="$1" 'BEGIN {
		s = 0
		while (match(d, /^[0-9.]+[hms]/)) {
			n = substr(d, 1, RLENGTH - 1); u = substr(d, RLENGTH, 1)
			s += n * (u == "h" ? 3600 : u == "m" ? 60 : 1)
			d = substr(d, RLENGTH + 1)
		}
		print s
	}'
}

status=0
summary=()
for f in $(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '/\.cache/' | sort); do
	dir=$(dirname "$f")
	for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		grep -qE "$only" <<<"$dir $name" || continue
		echo "== $dir $name ($time)"
		$GO test -run='^$' -fuzz="^$name\$" -fuzztime="$time" -fuzzminimizetime="$minimize" \
			-parallel="$parallel" "$dir" >"$log" 2>&1
		rc=$?
		tail -n 4 "$log"
		if [ $rc -ne 0 ]; then
			status=1
			cat "$log"
		fi
		last=$(grep -E 'elapsed: .*execs: [0-9]+' "$log" | tail -n 1)
		execs=$(sed -E 's/.*execs: ([0-9]+).*/\1/' <<<"$last")
		secs=$(seconds "$(sed -E 's/.*elapsed: ([0-9hms.]+),.*/\1/' <<<"$last")")
		rate=$(awk -v n="${execs:-0}" -v s="${secs:-0}" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
		summary+=("$(printf '%-32s %-28s %12s execs %8s/s  rc=%d' "$dir" "$name" "${execs:-0}" "$rate" "$rc")")
		if [ "$keep" = 1 ] && [ -d "$cache/${dir#./}/$name" ]; then
			mkdir -p "$dir/testdata/fuzz/$name"
			cp -n "$cache/${dir#./}/$name"/* "$dir/testdata/fuzz/$name/"
		fi
	done
done
echo
echo "== executions per second (FUZZTIME=$time, -fuzzminimizetime=$minimize, -parallel=$parallel)"
printf '%s\n' "${summary[@]}"
exit $status
