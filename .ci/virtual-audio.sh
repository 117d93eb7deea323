#!/usr/bin/env bash
# A real audio device with no sound card: PulseAudio + a null sink and its monitor.
# See docs/virtual-audio.md for the measurements behind every step.
#
#   .ci/virtual-audio.sh start    start (idempotent); prints the environment to use
#   .ci/virtual-audio.sh stop     stop what `start` started (idempotent)
#   .ci/virtual-audio.sh status   exit 0 if the server answers and the sink exists
#   .ci/virtual-audio.sh env      print `export ...` lines for clients (eval "$(... env)")
#
# Settings (environment):
#   STEPSOUND_SINK         sink name              (default stepsound_sink)
#   STEPSOUND_SINK_RATE    sink sample rate [Hz]  (default 44100; streams must use this rate)
#   STEPSOUND_SINK_CHANNELS                       (default 1)
#   XDG_RUNTIME_DIR        server/client rendezvous (default /tmp/xdg-runtime-$(id -u))
#
# Exits non-zero with a message on stderr if PulseAudio cannot start.
set -u

SINK=${STEPSOUND_SINK:-stepsound_sink}
RATE=${STEPSOUND_SINK_RATE:-44100}
CHANNELS=${STEPSOUND_SINK_CHANNELS:-1}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}
export PULSE_COOKIE="$XDG_RUNTIME_DIR/pulse-cookie"
export PULSE_SERVER="unix:$XDG_RUNTIME_DIR/pulse/native"
STATE="$XDG_RUNTIME_DIR/stepsound-virtual-audio"
KEEPALIVE_PID="$STATE/keepalive.pid"
LOG="$XDG_RUNTIME_DIR/pulseaudio.log"

die() { echo "virtual-audio: $*" >&2; exit 1; }

# wait_for SECONDS CMD...: retry CMD every 50 ms until it succeeds or time runs out.
wait_for() {
    local limit=$1; shift
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$end" ]; then return 1; fi
        sleep 0.05
    done
}

server_up() { pactl info >/dev/null 2>&1; }
sink_up() { pactl list short sinks 2>/dev/null | awk '{print $2}' | grep -qx "$SINK"; }
keepalive_up() { [ -f "$KEEPALIVE_PID" ] && kill -0 "$(cat "$KEEPALIVE_PID")" 2>/dev/null; }
keepalive_attached() { pactl list short source-outputs 2>/dev/null | grep -q .; }

print_env() {
    echo "export XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR"
    echo "export PULSE_SERVER=$PULSE_SERVER"
    echo "export PULSE_COOKIE=$PULSE_COOKIE"
    echo "export STEPSOUND_SINK=$SINK"
    echo "export STEPSOUND_SINK_RATE=$RATE"
}

start() {
    command -v pulseaudio >/dev/null || die "pulseaudio is not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
    command -v pactl >/dev/null || die "pactl is not installed (apt-get install pulseaudio-utils)"
    mkdir -p -m 700 "$XDG_RUNTIME_DIR" "$STATE" || die "cannot create $XDG_RUNTIME_DIR"
    if ! server_up; then
        # Root may run PulseAudio in user mode: it warns, then works.  HOME keeps its files out of ~.
        HOME="$XDG_RUNTIME_DIR" pulseaudio --daemonize=yes --exit-idle-time=-1 --disallow-exit=yes -n \
            --log-target=file:"$LOG" \
            --load="module-native-protocol-unix auth-anonymous=1" \
            --load="module-null-sink sink_name=$SINK rate=$RATE channels=$CHANNELS" \
            >/dev/null 2>&1
        wait_for 10 server_up || die "PulseAudio did not start within 10 s (log: $LOG: $(tail -n 3 "$LOG" 2>/dev/null | tr '\n' ' '))"
        touch "$STATE/started-server"
    fi
    if ! sink_up; then
        pactl load-module module-null-sink "sink_name=$SINK" "rate=$RATE" "channels=$CHANNELS" >/dev/null \
            || die "cannot load a null sink $SINK at $RATE Hz"
    fi
    pactl set-default-sink "$SINK" || die "cannot select $SINK as default sink"
    pactl set-default-source "$SINK.monitor" || die "cannot select $SINK.monitor as default source"
    if ! keepalive_up; then
        # Keep-alive reader: without it an idle null sink renders in 2 s blocks (pitfall 1).
        setsid parec -d "$SINK.monitor" --latency-msec=10 --raw >/dev/null 2>&1 </dev/null &
        echo $! >"$KEEPALIVE_PID"
        wait_for 5 keepalive_attached || die "keep-alive recorder did not attach to $SINK.monitor"
        # Restart the sink clock now that it has a reader.
        pactl suspend-sink "$SINK" 1 && pactl suspend-sink "$SINK" 0 || die "cannot suspend/resume $SINK"
    fi
    print_env
}

stop() {
    if [ -f "$KEEPALIVE_PID" ]; then
        kill "$(cat "$KEEPALIVE_PID")" 2>/dev/null
        rm -f "$KEEPALIVE_PID"
    fi
    if [ -f "$STATE/started-server" ]; then
        pulseaudio --kill >/dev/null 2>&1
        wait_for 5 bash -c '! pactl info' || true
        rm -f "$STATE/started-server"
    fi
    return 0
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) server_up && sink_up ;;
    env) print_env ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
