# Shared by slurm-up.sh and slurm-down.sh (sourced, not run).

# A pid is alive when /proc says so and it is no zombie (this init does not reap).
alive() {
    local pid
    [[ -f "$1" ]] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ -n "$pid" && -r /proc/$pid/stat ]] || return 1
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}
