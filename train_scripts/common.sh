# Sourced by every train script: the helpers they share. A bad flag fails with one line on stderr and exit status 2,
# before anything starts.

die() { echo "$(basename "$0"): $*" >&2; exit 2; }
need_value() { [ "$#" -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
# A flag the script does not take. The scripts spell their flags with dashes; the frameworks' flags (with
# underscores) go after `--`. Use: unknown_flag FLAG "TRL flags go after --"
unknown_flag() {
  case "$1" in
    --*_*) die "unknown flag '$1': this script spells its flags with dashes (${1//_/-}); $2" ;;
    *) die "unknown flag '$1' (see --help; $2)" ;;
  esac
}

# The run's settings from the paper's tables (openrlhf_cfpo/recipes.py of this checkout), as shell assignments; a bad
# flag is the recipe module's one error line and exit status 2. Use: settings="$(recipe_settings ...)" || exit $?
recipe_settings() {
  PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}" \
    "$python" -m openrlhf_cfpo.recipes --prog "$(basename "$0")" "$@"
}

# The preflight before anything starts (openrlhf-cfpo doctor: driver, GPUs and their memory, packages, NCCL, free
# disk for the checkpoints kept), for the recipe's plan; the script stops with its status if it finds a problem.
# Not with --dry-run, --skip-doctor or OPENRLHF_CFPO_SKIP_DOCTOR=1. Use: run_doctor RUN_DIR (after the settings)
run_doctor() {
  if [ "$dry_run" = 1 ] || [ "$skip_doctor" = 1 ] || [ "${OPENRLHF_CFPO_SKIP_DOCTOR:-0}" = 1 ]; then return 0; fi
  local status=0
  "$python" -m openrlhf_cfpo.doctor --recipe "$recipe" --nodes "$nodes" --gpus-per-node "$gpus" \
    --gpu-memory-gib "$gpu_memory_gib" --disk-gib "$disk_gib" --output-dir "$1" --needs "$needs" || status=$?
  [ "$status" = 0 ] || exit "$status"
}

# --help: the calling script's header comment (its usage), without the script itself.
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

# Prints a command shell-quoted on one line.
print_command() { printf '%q ' "$@" | sed 's/ $//'; echo; }
