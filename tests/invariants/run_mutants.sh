#!/usr/bin/env bash
# Applies each mutants/*.patch to a temporary copy of the contracts and the invariant suite, runs the
# invariant it names (first line "invariant: <name>") at the usual size (foundry.toml), compiling only that
# invariant's test file and what it imports, and fails unless every mutant is caught.
# The working tree is never modified. Usage: tests/invariants/run_mutants.sh [mutants/NN_*.patch ...]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
FORGE="${FORGE:-$ROOT/node_modules/@foundry-rs/forge-linux-amd64/bin/forge}"
patches=("$@")
[ ${#patches[@]} -eq 0 ] && patches=("$ROOT"/mutants/*.patch)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
survivors=0
for patch in "${patches[@]}"; do
  name="$(basename "$patch" .patch)"
  invariant="$(sed -n 's/^invariant: //p' "$patch" | head -1)"
  suite="$(grep -l "function $invariant()" "$ROOT"/tests/invariants/*.t.sol | head -1)"
  [ -n "$suite" ] || { echo "ERROR     $name: no test file defines $invariant"; survivors=$((survivors + 1)); continue; }
  copy="$WORK/$name"
  mkdir -p "$copy/tests"
  cp -r "$ROOT/contracts" "$ROOT/tools" "$ROOT/foundry.toml" "$copy/"
  cp -r "$ROOT/tests/invariants" "$copy/tests/"
  ln -s "$ROOT/node_modules" "$copy/node_modules"
  (cd "$copy" && patch -s -p1 < "$patch")
  log="$WORK/$name.log"
  if (cd "$copy" && "$FORGE" test --match-path "tests/invariants/$(basename "$suite")" --match-test "$invariant" >"$log" 2>&1); then
    echo "SURVIVED  $name ($invariant held on the broken contract)"
    survivors=$((survivors + 1))
  elif grep -q "\[FAIL" "$log"; then
    echo "caught    $name by $invariant: $(grep -m1 -o '\[FAIL[^]]*\]' "$log")"
  else
    echo "ERROR     $name: the campaign did not run"; tail -20 "$log"; survivors=$((survivors + 1))
  fi
done
if [ "$survivors" -ne 0 ]; then
  echo "$survivors mutant(s) not caught"; exit 1
fi
echo "all ${#patches[@]} mutants caught"
