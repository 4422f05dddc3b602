#!/usr/bin/env bash
# The exhaustive tier, one pytest run per group of files.
#
# Numba never frees what a process has compiled (the overloads fwdjit registers keep every
# dispatcher alive), so a pytest-xdist worker grows by about 10 MB per compiled test: the whole
# tier in one run reached 10+ GB per worker and exhausted a 24 GB machine. One run per group
# starts fresh workers, keeping each under about 7 GB. The fuzzer runs alone: it starts its own
# two worker processes.
#
#   bash tests/exhaustive.sh            # all groups
#   bash tests/exhaustive.sh ops corpus # some of them (ops corpus numpy rest fuzz)
#
# FWDJIT_TIER_DEADLINE (seconds since the epoch; .ci/run sets it) starts no group after that time:
# a group not run is named, with the command that runs it, and the script exits with status 0,
# since CI's own time limit is what it protects. Run locally, every group runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export NUMBA_OPT="${NUMBA_OPT-0}"
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(corpus numpy ops rest fuzz)
not_run=()
for g in "${groups[@]}"; do
    if [ -n "${FWDJIT_TIER_DEADLINE-}" ] && [ "$(date +%s)" -gt "$FWDJIT_TIER_DEADLINE" ]; then
        not_run+=("$g")
        continue
    fi
    case "$g" in
        ops)    files=(tests/ops) ;;
        corpus) files=(tests/test_corpus.py tests/test_vector.py) ;;
        numpy)  files=(tests/test_numpy_impl.py) ;;
        rest)   files=(tests fwdjit --ignore=tests/ops --ignore=tests/test_corpus.py
                       --ignore=tests/test_vector.py --ignore=tests/test_numpy_impl.py
                       --ignore=tests/test_fuzz.py) ;;   # everything else, new files included
        fuzz)   files=(tests/test_fuzz.py -n 0) ;;
        *) echo "unknown group $g (ops corpus numpy rest fuzz)" >&2; exit 2 ;;
    esac
    echo "== exhaustive tier, group $g: ${files[*]}"
    start=$SECONDS
    python -m pytest -q -m exhaustive --durations=5 "${files[@]}"
    echo "== group $g: $((SECONDS - start)) s"
done
if [ ${#not_run[@]} -gt 0 ]; then
    echo "== NOT RUN (CI's time budget spent): ${not_run[*]}; run them with: bash tests/exhaustive.sh ${not_run[*]}"
fi
