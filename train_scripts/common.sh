# Sourced by the train scripts. Everything a run is (the flags, the paper's settings, the framework command, the
# preflight, the launch) is Python's: openrlhf_cfpo/recipe_commands.py, with the settings from
# openrlhf_cfpo/recipes.py. The checkout goes first on PYTHONPATH so that its recipes are the ones read; the command
# started gets the caller's PYTHONPATH back. Use: run_recipe RECIPE "$@"
run_recipe() {
  local checkout
  checkout="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  PYTHONPATH="$checkout${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m openrlhf_cfpo.recipes "$1" \
    --prog "$(basename "$0")" "${@:2}"
}
