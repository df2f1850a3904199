# Sourced by qwen25_math_trl.sh and qwen25_math_verl.sh: the checks both recipes make before anything starts,
# each failing with one line on stderr and exit status 2.

die() { echo "$(basename "$0"): $*" >&2; exit 2; }
need_value() { [ "$#" -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
check_positive_int() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer (got '$2')"; }

# The paper's Qwen2.5 sizes (arXiv 2601.22801, section 4.1); each has its own system prompt (appendix B.1).
check_model_size() {
  case "$1" in
    1.5B|3B|7B) ;;
    *) die "--model-size must be 1.5B, 3B or 7B (got '$1')" ;;
  esac
}

# Table 3: learning rate 3e-6 for 1.5B and 3B, 1e-6 for 7B.
learning_rate_for() { if [ "$1" = 7B ]; then echo 1e-6; else echo 3e-6; fi; }

# lower-case tag of a Qwen2.5 model for run names: qwen2.5-3b, qwen2.5-7b-instruct
model_tag() { local size; size="$(echo "$1" | tr '[:upper:]' '[:lower:]')"; echo "qwen2.5-${size}${2:+-instruct}"; }

# Prints the command (shell-quoted, one line) and, unless --dry-run, runs it.
print_command() { printf '%q ' "$@" | sed 's/ $//'; echo; }
