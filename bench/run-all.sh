#!/usr/bin/env bash
# Runs every scenario of the benchmark matrix with `ferromq-bench compare` against ferromq,
# Mosquitto and RabbitMQ (MQTT plugin and AMQP), each already running. Usage:
#   FERROMQ_PID=.. MOSQUITTO_PID=.. RABBIT_PID=.. bench/run-all.sh [out-dir]
# Addresses default to the ports the README uses; override with FERROMQ_MQTT, FERROMQ_AMQP,
# MOSQUITTO_MQTT, RABBIT_MQTT, RABBIT_AMQP. ROUNDS (default 3) and DURATION (default 5s) set
# the length of each run; IDLE_CONNS (default 10000) the idle-connection count.
set -euo pipefail
out=${1:-bench-results}
mkdir -p "$out"
bin=${BENCH_BIN:-target/release/ferromq-bench}
rounds=${ROUNDS:-3}
dur=${DURATION:-5s}
fm=ferromq=${FERROMQ_MQTT:-127.0.0.1:2883},pid=$FERROMQ_PID
fa=ferromq=${FERROMQ_AMQP:-127.0.0.1:6672},pid=$FERROMQ_PID
mm=mosquitto=${MOSQUITTO_MQTT:-127.0.0.1:1883},pid=$MOSQUITTO_PID
rm=rabbitmq-mqtt=${RABBIT_MQTT:-127.0.0.1:1884},pid=$RABBIT_PID
ra=rabbitmq=${RABBIT_AMQP:-127.0.0.1:5672},pid=$RABBIT_PID

mqtt() { # name, then scenario options
  local name=$1; shift
  echo "== $name: mqtt $*" | tee "$out/$name.md"
  "$bin" compare --rounds "$rounds" --target "$fm" --target "$mm" --target "$rm" \
    mqtt --duration "$dur" "$@" | tee -a "$out/$name.md"
}
amqp() {
  local name=$1; shift
  echo "== $name: amqp $*" | tee "$out/$name.md"
  "$bin" compare --rounds "$rounds" --target "$fa" --target "$ra" \
    amqp --duration "$dur" "$@" | tee -a "$out/$name.md"
}

only=${ONLY:-}
want() { [[ -z "$only" || " $only " == *" $1 "* ]]; }

want mqtt-qos0-1to1 && mqtt mqtt-qos0-1to1 --qos 0
want mqtt-qos1-1to1 && mqtt mqtt-qos1-1to1 --qos 1
want mqtt-qos0-fanout && mqtt mqtt-qos0-fanout --qos 0 --subs 100
want mqtt-qos1-fanout && mqtt mqtt-qos1-fanout --qos 1 --subs 100
want mqtt-qos0-fanin && mqtt mqtt-qos0-fanin --qos 0 --pubs 100
want mqtt-qos1-fanin && mqtt mqtt-qos1-fanin --qos 1 --pubs 100
want mqtt-qos0-1to1-4k && mqtt mqtt-qos0-1to1-4k --qos 0 --size 4096
want mqtt-qos1-1to1-4k && mqtt mqtt-qos1-1to1-4k --qos 1 --size 4096
want mqtt-qos0-fanout-4k && mqtt mqtt-qos0-fanout-4k --qos 0 --subs 100 --size 4096
want mqtt-qos0-rate1000 && mqtt mqtt-qos0-rate1000 --qos 0 --rate 1000
want mqtt-qos1-rate1000 && mqtt mqtt-qos1-rate1000 --qos 1 --rate 1000
want amqp-transient && amqp amqp-transient --mode transient
want amqp-confirms && amqp amqp-confirms --mode confirms
want amqp-fanout && amqp amqp-fanout --mode fanout --queues 10
want amqp-rate1000 && amqp amqp-rate1000 --mode transient --rate 1000   # raw client (no lapin thread hops)
want amqp-rate1000-lapin && amqp amqp-rate1000-lapin --mode transient --rate 1000 --client lapin
if want mqtt-idle; then
  echo "== mqtt-idle: ${IDLE_CONNS:-10000} connections" | tee "$out/mqtt-idle.md"
  "$bin" compare --rounds "$rounds" --pause 3s --target "$fm" --target "$mm" --target "$rm" \
    mqtt-idle --conns "${IDLE_CONNS:-10000}" --duration 3s | tee -a "$out/mqtt-idle.md"
fi
