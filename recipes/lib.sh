# Shared by the recipes' run.sh: source it after setting the option defaults, then
#   parse_options "$@"
#
# Kaldi's utils/parse_options.sh convention: `--name value` (or `--name=value`) sets the shell
# variable `name` (dashes read as underscores), which the recipe must already have set, so a
# misspelt option is an error rather than silently ignored; names are lower-case, so no option
# reaches PATH or the like. Everything after `--` goes to the array `overrides` (extra Hydra
# overrides for training).

parse_options() {
  overrides=()
  local _opt _val
  while [ $# -gt 0 ]; do
    case "$1" in
      --) shift; overrides=("$@"); return 0 ;;
      --*=*) _opt=${1%%=*}; _val=${1#*=}; shift ;;
      --*)
        _opt=$1
        [ $# -ge 2 ] || { echo "option $1 needs a value" >&2; exit 2; }
        _val=$2; shift 2 ;;
      *) echo "unknown argument $1 (options are --name value; Hydra overrides go after --)" >&2; exit 2 ;;
    esac
    _opt=${_opt#--}
    _opt=${_opt//-/_}
    if ! [[ $_opt =~ ^[a-z][a-z0-9_]*$ ]] || [ -z "${!_opt+set}" ] || [ "$_opt" = overrides ]; then
      echo "unknown option --$_opt" >&2
      exit 2
    fi
    printf -v "$_opt" '%s' "$_val"
  done
}

# Keep glibc from handing large buffers back to the OS after every step: page faults cost a
# lot on these VMs; measured 1.7-2.0 s -> 1.1 s per 32 x 3 s training step.
export MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=1073741824

timer() { date +%s; }

# True when data dir $1 is complete (its wav.scp is written last) and holds $2 utterances, so a
# dir of corrupted copies made for another --plda_copies is made again rather than reused.
has_utts() { [ -f "$1/wav.scp" ] && [ "$(wc -l < "$1/wav.scp")" -eq "$2" ]; }
